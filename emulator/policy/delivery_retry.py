"""When a failed delivery is tried again, and when it is given up (pure, time passed in).

A delivery is a record sent to a destination: an async invocation's record or dead letter
(emulator/service/async_queue.py), and a Kinesis mapping's on-failure record
(sources/kinesis_poller.py). AWS documents that a failed delivery emits
DestinationDeliveryFailures / DeadLetterErrors
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html), not
whether it is retried. Our choice (README, "Asynchronous invocation"): retry so that a
passing fault (a queue created a moment late, a backend restart) loses no record. Delays
double from 1 s to at most 5 min, as the async throttle backoff does, with "equal jitter"
(each delay drawn between half and all of its step, so retries spread out yet keep backing
off: emulator/policy/backoff.py), until what the record is about expires (the event's
MaximumEventAgeInSeconds, the stream records' age limit), and at least
DELIVERY_MIN_WINDOW_S after the first attempt, so that the record of something that failed
for its age gets retries too; the last retry happens at that deadline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from emulator.policy.backoff import doubling_step, equal_jitter

DELIVERY_BACKOFF_MIN_S = 1
DELIVERY_BACKOFF_MAX_S = 300
# The shortest MaximumEventAgeInSeconds
# (https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html).
DELIVERY_MIN_WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What the caller remembers about one pending delivery between its attempts."""

    deadline: float  # time of the last attempt a failed delivery may have
    attempts: int = 0  # delivery attempts made so far


@dataclass(frozen=True, slots=True)
class Delivered:
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class RetryDeliveryAt:
    when: float
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class DeliveryDropped:
    """Failed at its deadline: the record is lost (counted and logged by the caller)."""

    state: DeliveryState


DeliveryDecision = Delivered | RetryDeliveryAt | DeliveryDropped


def new_delivery_state(expires_at: float, now: float) -> DeliveryState:
    """A delivery first attempted at `now` of a record about something that expires at
    `expires_at` (the same timeline)."""
    return DeliveryState(deadline=max(expires_at, now + DELIVERY_MIN_WINDOW_S))


def delivery_backoff(failures: int, rng: random.Random | None = None) -> float:
    """Delay after the `failures`-th failed delivery attempt (1-based): 1, 2, 4, ... 300 s.

    With `rng`, "equal jitter": a uniform draw between half the step and the step.
    """
    step = doubling_step(failures - 1, DELIVERY_BACKOFF_MIN_S, DELIVERY_BACKOFF_MAX_S)
    if rng is None:
        return step
    return equal_jitter(step, rng)


def decide_delivery(
    state: DeliveryState, delivered: bool, now: float, rng: random.Random | None = None
) -> DeliveryDecision:
    """Fold the delivery attempt that ended at `now` into `state` and decide what follows."""
    state = replace(state, attempts=state.attempts + 1)
    if delivered:
        return Delivered(state)
    if now >= state.deadline:
        return DeliveryDropped(state)
    return RetryDeliveryAt(min(now + delivery_backoff(state.attempts, rng), state.deadline), state)
