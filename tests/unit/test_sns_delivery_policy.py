"""SNS's delivery policy for AWS-managed endpoints, pure
(https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html)."""

from __future__ import annotations

import random

import pytest

from emulator.policy.sns_delivery import (
    JITTER,
    TOTAL_ATTEMPTS,
    DeliveryState,
    Exhausted,
    RetryAt,
    after_failure,
    backoff_delay,
    nominal_delay,
)


def test_phases_add_up_to_100015_attempts_over_23_days() -> None:
    delays = [nominal_delay(n) for n in range(1, TOTAL_ATTEMPTS)]
    assert TOTAL_ATTEMPTS == 100_015
    assert delays[:2] == [0.0, 0.0]  # 3 immediate attempts
    assert delays[2:4] == [1.0, 1.0]  # 2 pre-backoff attempts 1 s apart
    backoff = delays[4:14]  # 10 attempts backing off from 1 s to 20 s
    assert backoff[0] == pytest.approx(1.0) and backoff[-1] == pytest.approx(20.0)
    assert all(a < b for a, b in zip(backoff, backoff[1:]))
    assert set(delays[14:]) == {20.0} and len(delays[14:]) == 100_000  # then 100,000 attempts 20 s apart
    total_s = sum(delays)
    assert 23 * 86_400 < total_s < 24 * 86_400
    assert nominal_delay(TOTAL_ATTEMPTS) is None


def test_backoff_is_geometric() -> None:
    assert [round(backoff_delay(i), 2) for i in range(10)] == [1.0, 1.39, 1.95, 2.71, 3.79, 5.28, 7.37, 10.28, 14.34, 20.0]


def test_after_failure_jitters_delays_but_not_the_immediate_phase() -> None:
    rng = random.Random(7)
    state = DeliveryState(first_attempt_at=100.0)
    first = after_failure(state, 100.0, rng)
    assert isinstance(first, RetryAt) and first.when == 100.0 and first.state.attempts == 1
    state = DeliveryState(first_attempt_at=100.0, attempts=3)
    later = after_failure(state, 200.0, rng)
    assert isinstance(later, RetryAt) and later.state.attempts == 4
    assert 200.0 + 1.0 * (1 - JITTER) <= later.when <= 200.0 + 1.0 * (1 + JITTER)


def test_the_last_attempt_exhausts_the_policy() -> None:
    state = DeliveryState(first_attempt_at=0.0, attempts=TOTAL_ATTEMPTS - 1)
    decision = after_failure(state, 1e9, random.Random(1))
    assert isinstance(decision, Exhausted) and decision.state.attempts == TOTAL_ATTEMPTS
    with pytest.raises(ValueError):
        nominal_delay(0)
