"""Retry policy of asynchronous (Event) invocations: a pure `decide(state, outcome, now)`;
their records are delivered on the schedule of emulator/policy/delivery_retry.py.

The async queue worker runs one attempt, then asks `decide` what happens next; it does the
sleeping, re-queueing and destination delivery itself (a pure policy, tested in virtual time).
AWS rules: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html and
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import Enum, StrEnum

from emulator.errors import ValidationError
from emulator.policy.backoff import doubling_step, full_jitter
from emulator.policy.delivery_retry import DeliveryState, new_delivery_state

# MaximumRetryAttempts 0-2, default 2
# (https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html).
MIN_RETRY_ATTEMPTS = 0
MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_RETRY_ATTEMPTS = 2
# MaximumEventAgeInSeconds 60-21,600 (6 h), default 21,600 (same page).
MIN_EVENT_AGE_S = 60
MAX_EVENT_AGE_S = 21_600
DEFAULT_MAX_EVENT_AGE_S = 21_600
# After a function error, wait 1 min before the 2nd attempt and 2 min before the 3rd
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
FUNCTION_ERROR_RETRY_DELAYS_S = (60, 120)
# Throttles and system errors: the event returns to the queue and is retried with an
# interval that grows exponentially from 1 s to at most 5 min, until it is too old
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
# The steps in between are not documented; we double (1, 2, 4, ... 300 s), with "full
# jitter" (a uniform draw between 1 s and that step) so a herd of throttled events does not
# come back in step and throttle itself again.
THROTTLE_BACKOFF_MIN_S = 1
THROTTLE_BACKOFF_MAX_S = 300

# Delivery of a destination record or a dead letter: retried with back-off until the
# event's MaximumEventAgeInSeconds has run out (emulator/policy/delivery_retry.py).


class Outcome(Enum):
    """What happened to one attempt to run the event."""

    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"  # handler error, timeout or crash
    THROTTLED = "throttled"  # 429 from admission
    SYSTEM_ERROR = "system_error"  # 5xx inside the emulator
    RESERVED_ZERO = "reserved_zero"  # the function's reserved concurrency is 0


class DestinationCondition(StrEnum):
    """`requestContext.condition` of the invocation record
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"


class DropReason(StrEnum):
    """Why an async event ended without a successful run: the `Reason` dimension of the
    timeline's AsyncEventsDropped and DeadLetterDeliveries (docs/timeline.md). AWS's
    AsyncEventsDropped counts every one of these, also when the event then goes to a DLQ or
    on-failure destination ("events might exceed the maximum event age or exhaust the maximum
    retry attempts, or reserved concurrency might be set to 0":
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html). The names
    are the on-failure record's `condition`, split where one condition has two causes."""

    RETRIES_EXHAUSTED = "RetriesExhausted"  # function errors used up MaximumRetryAttempts
    # MaximumEventAgeInSeconds ran out between retries of function or system errors;
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    # ... or while the event was being throttled (the record's condition: EventAgeExceeded).
    EVENT_AGE_EXCEEDED_THROTTLED = "EventAgeExceededWhileThrottled"
    # Reserved concurrency 0: sent on at once, without retries (the record's condition:
    # RetriesExhausted; https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
    RESERVED_CONCURRENCY_ZERO = "ReservedConcurrencyZero"
    # The emulator's own queue dropped it: a reset or a shutdown with the event pending, or
    # an error of ours (logged).
    RESET = "Reset"
    SHUTDOWN = "Shutdown"
    EMULATOR_ERROR = "EmulatorError"


def drop_reason(condition: DestinationCondition, last: Outcome | None) -> DropReason:
    """The reason for a Fail with `condition`, `last` being the outcome of the event's last
    attempt (None: it never ran, it aged in the queue)."""
    if condition is DestinationCondition.RETRIES_EXHAUSTED:
        return DropReason.RESERVED_CONCURRENCY_ZERO if last is Outcome.RESERVED_ZERO else DropReason.RETRIES_EXHAUSTED
    return DropReason.EVENT_AGE_EXCEEDED_THROTTLED if last is Outcome.THROTTLED else DropReason.EVENT_AGE_EXCEEDED


@dataclass(frozen=True, slots=True)
class EventState:
    """What the queue remembers about one event between attempts."""

    received_at: float  # emulated seconds when Invoke accepted it (202)
    function_attempts: int = 0  # attempts that reached the function: approximateInvokeCount
    throttle_retries: int = 0  # retries scheduled after a throttle or system error


@dataclass(frozen=True, slots=True)
class Deliver:
    """Succeeded: send to the on-success destination, if any."""

    state: EventState
    condition = DestinationCondition.SUCCESS


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Put the event back; attempt again at emulated time `when`."""

    when: float
    state: EventState


@dataclass(frozen=True, slots=True)
class Fail:
    """Give up: send to the DLQ / on-failure destination, if any, with `condition`."""

    condition: DestinationCondition
    state: EventState


Decision = Deliver | RetryAt | Fail


def throttle_backoff(throttle_retries: int, rng: random.Random | None = None) -> float:
    """Delay before the next attempt after `throttle_retries` earlier throttle retries.

    Deterministic doubling 1, 2, 4, ... capped at 300 s. With `rng`, "full jitter" between
    the 1 s floor and that value, so a herd of throttled events does not retry in step.
    """
    ceiling = doubling_step(throttle_retries, THROTTLE_BACKOFF_MIN_S, THROTTLE_BACKOFF_MAX_S)
    if rng is None:
        return ceiling
    return full_jitter(ceiling, rng, floor=THROTTLE_BACKOFF_MIN_S)


def expired(state: EventState, now: float, max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S) -> bool:
    """True once the event is older than MaximumEventAgeInSeconds (check before an attempt)."""
    return now > state.received_at + max_event_age_s


def _retry_unless_too_old(state: EventState, when: float, max_event_age_s: float) -> Decision:
    if expired(state, when, max_event_age_s):
        return Fail(DestinationCondition.EVENT_AGE_EXCEEDED, state)
    return RetryAt(when, state)


def decide(
    state: EventState,
    outcome: Outcome,
    now: float,
    *,
    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS,
    max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S,
    rng: random.Random | None = None,
) -> Decision:
    """Fold the `outcome` of the attempt that ended at `now` into `state` and decide.

    `state` is the state before this attempt. The returned state counts it.
    """
    if outcome is Outcome.SUCCESS:
        return Deliver(replace(state, function_attempts=state.function_attempts + 1))
    if outcome is Outcome.RESERVED_ZERO:
        # Reserved concurrency 0 sends events to the DLQ / on-failure destination without
        # retries (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
        return Fail(DestinationCondition.RETRIES_EXHAUSTED, state)
    if outcome is Outcome.FUNCTION_ERROR:
        state = replace(state, function_attempts=state.function_attempts + 1)
        retries_done = state.function_attempts - 1
        if retries_done >= max_retry_attempts:
            return Fail(DestinationCondition.RETRIES_EXHAUSTED, state)
        delays = FUNCTION_ERROR_RETRY_DELAYS_S
        delay = delays[min(retries_done, len(delays) - 1)]
        return _retry_unless_too_old(state, now + delay, max_event_age_s)
    # THROTTLED / SYSTEM_ERROR: back to the queue until the event is too old; these
    # retries do not count against MaximumRetryAttempts, and a function attempt in
    # between does not reset the backoff (AWS says nothing either way).
    when = now + throttle_backoff(state.throttle_retries, rng)
    if expired(state, when, max_event_age_s):
        return Fail(DestinationCondition.EVENT_AGE_EXCEEDED, state)
    return RetryAt(when, replace(state, throttle_retries=state.throttle_retries + 1))


# -- delivery of records and dead letters ----------------------------------------------------
def new_delivery(event: EventState, now: float, max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S) -> DeliveryState:
    """The delivery of `event`'s record or dead letter, first attempted at `now`: retried
    until the event's MaximumEventAgeInSeconds has run out, counted from when Invoke accepted it."""
    return new_delivery_state(event.received_at + max_event_age_s, now)


class EventInvokeConfigError(ValidationError, ValueError):
    """An out-of-range EventInvokeConfig value (ValidationException, HTTP 400)."""


def validate_event_invoke_config(
    max_retry_attempts: int | None = None, max_event_age_s: int | None = None
) -> None:
    """Check Put/UpdateFunctionEventInvokeConfig values against their ranges (None: unset).

    The message follows AWS's model-validation wording, naming parameter and bound.
    """
    checks = (
        ("maximumRetryAttempts", max_retry_attempts, MIN_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS),
        ("maximumEventAgeInSeconds", max_event_age_s, MIN_EVENT_AGE_S, MAX_EVENT_AGE_S),
    )
    problems = [p for p in (_range_problem(*check) for check in checks) if p is not None]
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise EventInvokeConfigError(f"{count} validation {noun} detected: " + "; ".join(problems))


def _range_problem(name: str, value: int | None, low: int, high: int) -> str | None:
    if value is None:
        return None
    prefix = f"Value '{value}' at '{name}' failed to satisfy constraint: Member must"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{prefix} be an integer between {low} and {high}"
    if value < low:
        return f"{prefix} have value greater than or equal to {low}"
    if value > high:
        return f"{prefix} have value less than or equal to {high}"
    return None
