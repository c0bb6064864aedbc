"""SNS's delivery policy for AWS-managed endpoints (Lambda, SQS), pure.

https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html: an
immediate-retry phase of 3 attempts without delay, a pre-backoff phase of 2 attempts 1 s
apart, a backoff phase of 10 attempts with exponential backoff from 1 s to 20 s, and a
post-backoff phase of 100,000 attempts 20 s apart: 100,015 attempts over 23 days, with
jitter. The phases' counts add up to the total, so the first attempt is the first of the
immediate phase. The page gives neither the backoff curve nor the jitter; ours (README,
"Choices where AWS is ambiguous"): the ten backoff delays grow geometrically from 1 s to
20 s, and every delay after the immediate phase is drawn within ±10% of its value.
When the policy is exhausted SNS discards the message, or sends it to the subscription's
dead-letter queue (https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

IMMEDIATE_ATTEMPTS = 3
PRE_BACKOFF_ATTEMPTS = 2
PRE_BACKOFF_DELAY_S = 1.0
BACKOFF_ATTEMPTS = 10
BACKOFF_MIN_DELAY_S = 1.0
BACKOFF_MAX_DELAY_S = 20.0
POST_BACKOFF_ATTEMPTS = 100_000
POST_BACKOFF_DELAY_S = 20.0
TOTAL_ATTEMPTS = IMMEDIATE_ATTEMPTS + PRE_BACKOFF_ATTEMPTS + BACKOFF_ATTEMPTS + POST_BACKOFF_ATTEMPTS  # 100,015
JITTER = 0.1


def backoff_delay(step: int) -> float:
    """The `step`-th (0-9) delay of the backoff phase: 1 s ... 20 s, geometrically."""
    ratio = BACKOFF_MAX_DELAY_S / BACKOFF_MIN_DELAY_S
    return BACKOFF_MIN_DELAY_S * ratio ** (step / (BACKOFF_ATTEMPTS - 1))


def nominal_delay(failed_attempts: int) -> float | None:
    """The delay before the next attempt after `failed_attempts` failures, without jitter;
    None when the policy is exhausted."""
    if failed_attempts < 1:
        raise ValueError("a delay follows a failed attempt")
    if failed_attempts >= TOTAL_ATTEMPTS:
        return None
    if failed_attempts < IMMEDIATE_ATTEMPTS:
        return 0.0
    if failed_attempts < IMMEDIATE_ATTEMPTS + PRE_BACKOFF_ATTEMPTS:
        return PRE_BACKOFF_DELAY_S
    step = failed_attempts - IMMEDIATE_ATTEMPTS - PRE_BACKOFF_ATTEMPTS
    if step < BACKOFF_ATTEMPTS:
        return backoff_delay(step)
    return POST_BACKOFF_DELAY_S


@dataclass(frozen=True)
class DeliveryState:
    """A message on its way to one subscription."""

    first_attempt_at: float
    attempts: int = 0  # attempts made (and failed) so far


@dataclass(frozen=True)
class RetryAt:
    state: DeliveryState
    when: float


@dataclass(frozen=True)
class Exhausted:
    state: DeliveryState


def after_failure(state: DeliveryState, now: float, rng: random.Random) -> RetryAt | Exhausted:
    """One more attempt failed: when to try again, or give up."""
    failed = replace(state, attempts=state.attempts + 1)
    delay = nominal_delay(failed.attempts)
    if delay is None:
        return Exhausted(failed)
    if delay > 0:
        delay *= rng.uniform(1 - JITTER, 1 + JITTER)
    return RetryAt(failed, now + delay)
