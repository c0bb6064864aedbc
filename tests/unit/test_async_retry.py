"""emulator.policy.async_retry: the async retry schedule, exact numbers in virtual time."""

from __future__ import annotations

import random

import pytest

from emulator.policy.async_retry import (
    DEFAULT_MAX_EVENT_AGE_S,
    DEFAULT_MAX_RETRY_ATTEMPTS,
    Decision,
    Deliver,
    DestinationCondition,
    EventInvokeConfigError,
    EventState,
    Fail,
    Outcome,
    RetryAt,
    decide,
    expired,
    new_delivery,
    throttle_backoff,
    validate_event_invoke_config,
)
from emulator.policy.delivery_retry import (
    DELIVERY_MIN_WINDOW_S,
    Delivered,
    DeliveryDropped,
    DeliveryState,
    RetryDeliveryAt,
    decide_delivery,
    delivery_backoff,
)


def run(outcomes: list[Outcome], *, start: float = 0.0, **limits) -> tuple[list[float], Decision]:
    """Drive one event: each attempt happens at the time the previous decision set.

    Returns the attempt times and the final decision.
    """
    state = EventState(received_at=start)
    now, times = start, []
    for outcome in outcomes:
        times.append(now)
        decision = decide(state, outcome, now, **limits)
        if not isinstance(decision, RetryAt):
            return times, decision
        now, state = decision.when, decision.state
    raise AssertionError(f"still retrying after {outcomes}")


def test_defaults_are_the_aws_values() -> None:
    assert DEFAULT_MAX_RETRY_ATTEMPTS == 2
    assert DEFAULT_MAX_EVENT_AGE_S == 21_600


def test_function_errors_retry_after_60_then_120_then_fail() -> None:
    times, decision = run([Outcome.FUNCTION_ERROR] * 3)
    assert times == [0.0, 60.0, 180.0]
    assert decision == Fail(DestinationCondition.RETRIES_EXHAUSTED, EventState(0.0, 3, 0))
    assert decision.condition == "RetriesExhausted"


@pytest.mark.parametrize(("max_retries", "expected_times"), [(0, [0.0]), (1, [0.0, 60.0])])
def test_fewer_retries_when_configured(max_retries: int, expected_times: list[float]) -> None:
    times, decision = run([Outcome.FUNCTION_ERROR] * 3, max_retry_attempts=max_retries)
    assert times == expected_times
    assert isinstance(decision, Fail)
    assert decision.condition is DestinationCondition.RETRIES_EXHAUSTED
    assert decision.state.function_attempts == max_retries + 1


def test_success_after_a_retry_delivers_with_the_attempt_count() -> None:
    times, decision = run([Outcome.FUNCTION_ERROR, Outcome.SUCCESS])
    assert times == [0.0, 60.0]
    assert decision == Deliver(EventState(0.0, function_attempts=2))
    assert decision.condition == "Success"


def test_throttle_backoff_doubles_to_300_then_stays() -> None:
    assert [throttle_backoff(n) for n in range(12)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0, 300.0,
    ]
    assert throttle_backoff(10_000) == 300.0


def test_throttles_retry_until_the_event_is_too_old() -> None:
    times, decision = run([Outcome.THROTTLED] * 100, max_event_age_s=1_500)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert times[-1] == 1_411.0  # the next attempt, at 1,711 s, would be past 1,500 s
    assert decision == Fail(DestinationCondition.EVENT_AGE_EXCEEDED, EventState(0.0, 0, 12))


def test_throttles_do_not_use_up_retry_attempts() -> None:
    outcomes = [Outcome.THROTTLED] * 5 + [Outcome.FUNCTION_ERROR] * 3
    times, decision = run(outcomes, max_retry_attempts=2)
    assert times[5:] == [31.0, 91.0, 211.0]
    assert isinstance(decision, Fail)
    assert decision.condition is DestinationCondition.RETRIES_EXHAUSTED
    assert (decision.state.function_attempts, decision.state.throttle_retries) == (3, 5)


def test_system_errors_back_off_like_throttles() -> None:
    times, _ = run([Outcome.SYSTEM_ERROR] * 4 + [Outcome.SUCCESS])
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0]


def test_function_error_retry_past_max_age_is_event_age_exceeded() -> None:
    times, decision = run([Outcome.FUNCTION_ERROR] * 3, max_event_age_s=100)
    assert times == [0.0, 60.0]  # 60 + 120 = 180 > 100
    assert isinstance(decision, Fail)
    assert decision.condition is DestinationCondition.EVENT_AGE_EXCEEDED
    assert decision.state.function_attempts == 2


def test_retry_exactly_at_max_age_is_still_allowed() -> None:
    times, decision = run([Outcome.FUNCTION_ERROR, Outcome.SUCCESS], max_event_age_s=60)
    assert times == [0.0, 60.0]
    assert isinstance(decision, Deliver)


def test_reserved_zero_fails_at_once_without_retries() -> None:
    state = EventState(received_at=5.0)
    assert decide(state, Outcome.RESERVED_ZERO, 5.0) == Fail(
        DestinationCondition.RETRIES_EXHAUSTED, state
    )


def test_age_counts_from_receipt_not_from_first_attempt() -> None:
    state = EventState(received_at=1_000.0)
    decision = decide(state, Outcome.FUNCTION_ERROR, 1_030.0, max_event_age_s=60)
    assert isinstance(decision, Fail)
    assert decision.condition is DestinationCondition.EVENT_AGE_EXCEEDED


def test_expired() -> None:
    state = EventState(received_at=100.0)
    assert not expired(state, 100.0 + 21_600)
    assert expired(state, 100.0 + 21_600.001)
    assert expired(state, 161.0, max_event_age_s=60)


def test_jitter_is_seeded_and_bounded() -> None:
    rng_a, rng_b = random.Random(7), random.Random(7)
    delays_a = [throttle_backoff(n, rng_a) for n in range(12)]
    delays_b = [throttle_backoff(n, rng_b) for n in range(12)]
    assert delays_a == delays_b
    for n, delay in enumerate(delays_a):
        assert 1.0 <= delay <= throttle_backoff(n)
    # The first backoff leaves no room for jitter: the floor and the ceiling are both 1 s.
    decision = decide(EventState(0.0), Outcome.THROTTLED, 0.0, rng=random.Random(1))
    assert isinstance(decision, RetryAt) and decision.when == 1.0


def test_decide_does_not_mutate_the_state() -> None:
    state = EventState(received_at=0.0)
    decide(state, Outcome.FUNCTION_ERROR, 0.0)
    assert state == EventState(0.0, 0, 0)


@pytest.mark.parametrize(
    ("retries", "age"), [(0, 60), (2, 21_600), (None, None), (1, None), (None, 3600)]
)
def test_valid_event_invoke_config(retries: int | None, age: int | None) -> None:
    validate_event_invoke_config(retries, age)


@pytest.mark.parametrize(
    ("retries", "age", "message"),
    [
        (3, None, "Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: "
         "Member must have value less than or equal to 2"),
        (-1, None, "'maximumRetryAttempts' failed to satisfy constraint: "
         "Member must have value greater than or equal to 0"),
        (None, 59, "Value '59' at 'maximumEventAgeInSeconds' failed to satisfy constraint: "
         "Member must have value greater than or equal to 60"),
        (None, 21_601, "less than or equal to 21600"),
        (True, None, "must be an integer between 0 and 2"),
    ],
)
def test_invalid_event_invoke_config(retries, age, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_event_invoke_config(retries, age)
    assert message in str(caught.value)
    assert str(caught.value).startswith("1 validation error detected: ")
    assert isinstance(caught.value, EventInvokeConfigError)
    assert caught.value.code == "ValidationException"


def test_both_invalid_are_reported_together() -> None:
    with pytest.raises(EventInvokeConfigError, match=r"^2 validation errors detected: .*; "):
        validate_event_invoke_config(5, 10)


# -- delivery of records and dead letters --------------------------------------------------
def deliver(state: DeliveryState, results: list[bool], start: float, rng: random.Random | None = None):
    """Drive one delivery: each attempt at the time the previous decision set."""
    now, times = start, []
    for delivered in results:
        times.append(now)
        decision = decide_delivery(state, delivered, now, rng)
        if not isinstance(decision, RetryDeliveryAt):
            return times, decision
        now, state = decision.when, decision.state
    raise AssertionError(f"still retrying after {results}")


def test_delivery_backoff_doubles_from_1_s_to_5_min() -> None:
    assert [delivery_backoff(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert delivery_backoff(10_000) == 300


def test_delivery_jitter_stays_between_half_and_all_of_the_step() -> None:
    rng = random.Random(3)
    for n in range(1, 40):
        assert delivery_backoff(n) / 2 <= delivery_backoff(n, rng) <= delivery_backoff(n)


def test_a_delivery_is_retried_until_it_succeeds() -> None:
    state = new_delivery(EventState(received_at=0.0), 10.0)
    times, decision = deliver(state, [False, False, False, True], 10.0)
    assert times == [10.0, 11.0, 13.0, 17.0]
    assert decision == Delivered(DeliveryState(deadline=DEFAULT_MAX_EVENT_AGE_S, attempts=4))


def test_a_delivery_is_retried_until_the_event_is_too_old_with_a_last_try_at_the_deadline() -> None:
    state = new_delivery(EventState(received_at=0.0), 0.0, max_event_age_s=100)
    times, decision = deliver(state, [False] * 20, 0.0)
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 100.0]
    assert decision == DeliveryDropped(DeliveryState(deadline=100.0, attempts=8))


def test_the_record_of_an_event_that_is_already_too_old_still_gets_a_window() -> None:
    # EventAgeExceeded: the event's age has run out before the first delivery attempt.
    state = new_delivery(EventState(received_at=0.0), 500.0, max_event_age_s=60)
    assert state.deadline == 500.0 + DELIVERY_MIN_WINDOW_S
    times, decision = deliver(state, [False] * 20, 500.0)
    assert times == [500.0, 501.0, 503.0, 507.0, 515.0, 531.0, 560.0]
    assert isinstance(decision, DeliveryDropped)


def test_seeded_delivery_jitter_is_reproducible() -> None:
    state = new_delivery(EventState(received_at=0.0), 0.0)
    first, _ = deliver(state, [False] * 10 + [True], 0.0, random.Random(11))
    second, _ = deliver(state, [False] * 10 + [True], 0.0, random.Random(11))
    assert first == second
    gaps = [b - a for a, b in zip(first, first[1:])]
    assert all(delivery_backoff(n) / 2 <= gap <= delivery_backoff(n) for n, gap in enumerate(gaps, 1))
