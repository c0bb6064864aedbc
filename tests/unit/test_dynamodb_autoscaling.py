"""DynamoDB target-tracking auto scaling, minute by minute in virtual time."""

from __future__ import annotations

from dataclasses import replace

from emulator.policy.dynamodb_autoscaling import (
    Datapoint,
    ScalerState,
    TargetTracking,
    after_scaling,
    decide,
    record,
    wanted_capacity,
)

POLICY = TargetTracking("table/orders", "dynamodb:table:WriteCapacityUnits", minimum=5, maximum=100, target=70.0)


def minute(rate: float, provisioned: float) -> Datapoint:
    """A data point of `rate` units per second for a minute."""
    return Datapoint(consumed=rate * 60, provisioned=provisioned)


def run(policy: TargetTracking, rates: list[float], capacity: int, state: ScalerState = ScalerState()) -> list[int]:
    """The capacity after each minute when the load is `rates` (capped by the capacity: a
    throttled table consumes at most what it has)."""
    history = []
    for index, rate in enumerate(rates):
        now = (index + 1) * 60.0
        state = record(state, minute(min(rate, capacity), capacity))
        decision = decide(policy, state, capacity, now)
        if decision.capacity is not None:
            state = after_scaling(state, capacity, decision.capacity, now)
            capacity = decision.capacity
        history.append(capacity)
    return history


def test_utilization_is_the_minute_sum_over_the_provisioned_rate() -> None:
    assert minute(7, 10).utilization == 70.0
    assert wanted_capacity(POLICY, 50 * 60) == 72  # 50 / 0.7 = 71.4 → 72
    assert wanted_capacity(POLICY, 1 * 60) == 5  # MinCapacity
    assert wanted_capacity(POLICY, 500 * 60) == 100  # MaxCapacity


def test_scale_out_needs_two_minutes_above_the_target() -> None:
    state = record(ScalerState(), minute(8, 10))
    assert decide(POLICY, state, 10, 60.0).capacity is None, "one minute is not enough"
    state = record(state, minute(9, 10))
    decision = decide(POLICY, state, 10, 120.0)
    assert decision.capacity == 13 and "2 minutes" in decision.reason  # 9 / 0.7 = 12.9


def test_a_throttled_table_grows_step_by_step_because_it_consumes_at_most_its_capacity() -> None:
    # 50 units/s of demand against 10 provisioned: each step is capacity / 0.7, two minutes apart.
    assert run(POLICY, [50.0] * 10, 10) == [10, 15, 15, 22, 22, 32, 32, 46, 46, 66]
    assert run(POLICY, [50.0] * 12, 10)[-1] == 72, "then it settles where 50 units/s is 70%"


def test_scale_in_needs_fifteen_minutes_twenty_points_below_the_target() -> None:
    rates = [4.0] * 15  # 40% of 10 is below 70 - 20 = 50%
    assert run(POLICY, rates[:14], 10) == [10] * 14
    assert run(POLICY, rates, 10)[-1] == 6  # 4 / 0.7 = 5.7 → 6
    assert run(POLICY, [5.5] * 20, 10) == [10] * 20, "55% is not 20 points below the target"


def test_disable_scale_in_and_cooldowns_hold_changes_back() -> None:
    assert run(replace(POLICY, disable_scale_in=True), [1.0] * 20, 10) == [10] * 20
    history = run(replace(POLICY, scale_out_cooldown_s=300.0), [50.0] * 12, 10)
    # scaled out at minute 2; the next one waits until minute 7, 300 s later
    assert history[:8] == [10, 15, 15, 15, 15, 15, 22, 22]
    state = record(record(ScalerState(last_scale_in_at=100.0), minute(9, 10)), minute(9, 10))
    in_cooldown = replace(POLICY, scale_in_cooldown_s=600.0)
    assert decide(in_cooldown, state, 10, 120.0).capacity == 13, "a scale-in cooldown does not hold a scale-out back"
    state = record(ScalerState(last_scale_in_at=100.0), minute(1, 10))
    for _ in range(14):
        state = record(state, minute(1, 10))
    assert decide(in_cooldown, state, 10, 650.0).capacity is None
    assert decide(in_cooldown, state, 10, 700.0).capacity == 5


def test_capacity_outside_the_range_is_brought_inside_at_once() -> None:
    assert decide(POLICY, ScalerState(), 1, 0.0).capacity == 5
    assert decide(POLICY, ScalerState(), 500, 0.0).capacity == 100
