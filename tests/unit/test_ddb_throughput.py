"""DynamoDB provisioned and on-demand capacity, and the daily decrease limit, in virtual time."""

from __future__ import annotations

import pytest

from emulator.moto_child.ddb_throughput import (
    ACCOUNT_LIMIT_EXCEEDED,
    BURST_WINDOW_S,
    KEY_RANGE_EXCEEDED,
    MAX_ON_DEMAND_EXCEEDED,
    ON_DEMAND_PEAK_SETTLE_S,
    PROVISIONED_EXCEEDED,
    SECONDS_PER_DAY,
    Bucket,
    CapacityLedger,
    OnDemandPeaks,
    ResourceCapacity,
    ResourceLimits,
    advance_peaks,
    decrease_allowed,
    on_demand_limit,
    refilled,
)

KEY = ("arn:table", "", "write")


def provisioned(units: float) -> ResourceLimits:
    return ResourceLimits(False, provisioned=units)


def served(ledger: CapacityLedger, limits: ResourceLimits, now: float, units: float = 1.0) -> bool:
    """Admit and charge one request of `units` at `now`, as the capacity layer does."""
    refusal = ledger.admit([(KEY, units)], lambda key: limits, now)
    if refusal is None:
        ledger.charge([(KEY, units)], lambda key: limits, now)
    return refusal is None


# -- provisioned ------------------------------------------------------------------------------------
def test_a_bucket_refills_at_the_rate_up_to_its_size_and_pays_debt_first() -> None:
    assert refilled(Bucket(0.0, 0.0), rate=5, size=1500, now=2.0) == Bucket(10.0, 2.0)
    assert refilled(Bucket(0.0, 0.0), rate=5, size=1500, now=1_000.0).balance == 1500  # 300 s of unused capacity
    assert refilled(Bucket(-20.0, 0.0), rate=5, size=1500, now=2.0).balance == -10.0
    assert refilled(Bucket(900.0, 0.0), rate=1, size=300, now=0.0).balance == 300, "a smaller size cuts the balance"


def test_a_new_provisioned_table_serves_its_rate_from_an_empty_bucket() -> None:
    ledger = CapacityLedger()
    limits = provisioned(5)
    ledger.resource(KEY, limits, 0.0)  # created at 0: nothing unused yet
    assert [served(ledger, limits, 0.0) for _ in range(3)] == [False] * 3
    assert [served(ledger, limits, 1.0) for _ in range(6)] == [True] * 5 + [False]
    assert ledger.resources[KEY].throttle_events == 4
    assert ledger.resources[KEY].consumed == 5.0


def test_unused_capacity_bursts_up_to_300_seconds_worth() -> None:
    ledger = CapacityLedger()
    limits = provisioned(2)
    ledger.resource(KEY, limits, 0.0)
    admitted = sum(served(ledger, limits, 10_000.0) for _ in range(1_000))
    assert admitted == 2 * BURST_WINDOW_S == 600


def test_a_request_needs_its_known_units_but_an_item_larger_than_the_burst_still_passes_into_debt() -> None:
    ledger = CapacityLedger()
    limits = provisioned(1)
    ledger.resource(KEY, limits, 0.0)
    assert not served(ledger, limits, 3.0, units=4.0), "3 units held, 4 needed"
    assert served(ledger, limits, 4.0, units=4.0)
    assert served(ledger, limits, 400.0, units=400.0), "the bucket is full (300): a 400-unit item is admitted"
    assert ledger.resources[KEY].bucket.balance == pytest.approx(300 - 400)
    assert not served(ledger, limits, 500.0), "the debt is paid off first"
    assert served(ledger, limits, 501.0)


def test_an_update_of_the_provisioned_units_changes_the_rate_and_keeps_the_balance() -> None:
    ledger = CapacityLedger()
    ledger.resource(KEY, provisioned(1), 0.0)
    assert served(ledger, provisioned(1), 1.0)
    assert [served(ledger, provisioned(100), 2.0) for _ in range(101)] == [True] * 100 + [False]


# -- on-demand ---------------------------------------------------------------------------------------
def test_a_new_on_demand_table_takes_4000_writes_at_once() -> None:
    ledger = CapacityLedger()
    limits = ResourceLimits(True, initial=4_000)
    ledger.resource(KEY, limits, 0.0)
    assert sum(served(ledger, limits, 0.5) for _ in range(4_100)) == 4_000
    refusal = ledger.admit([(KEY, 1.0)], lambda key: limits, 0.5)
    assert refusal is not None and refusal.limit_type == KEY_RANGE_EXCEEDED


def test_double_the_previous_peak_is_available_once_the_peak_is_30_minutes_old() -> None:
    peaks = OnDemandPeaks(settled=2_000.0)
    limits = ResourceLimits(True, initial=4_000)
    # A window consuming 3,500 units raises the previous peak only 30 minutes later.
    peaks = advance_peaks(OnDemandPeaks(2_000.0, 0.0, 3_500.0), 1.0)
    assert on_demand_limit(peaks, limits) == (4_000.0, KEY_RANGE_EXCEEDED)
    assert advance_peaks(peaks, 1.0 + ON_DEMAND_PEAK_SETTLE_S - 0.5).settled == 2_000.0
    peaks = advance_peaks(peaks, 1.0 + ON_DEMAND_PEAK_SETTLE_S)
    assert peaks.settled == 3_500.0 and peaks.pending == ()
    assert on_demand_limit(peaks, limits) == (7_000.0, KEY_RANGE_EXCEEDED)


def test_the_peak_comes_from_what_was_consumed_per_second() -> None:
    ledger = CapacityLedger()
    limits = ResourceLimits(True, initial=4_000)
    ledger.resource(KEY, limits, 0.0)
    for second in range(3):  # 3,000 units/s for 3 s
        assert all(served(ledger, limits, second + 0.5, units=100.0) for _ in range(30))
    ledger.resource(KEY, limits, 3.5)
    pending = ledger.resources[KEY].peaks.pending  # type: ignore[union-attr]
    assert pending and pending[0][1] == 3_000.0, pending
    later = ON_DEMAND_PEAK_SETTLE_S + 10
    assert sum(served(ledger, limits, later, units=100.0) for _ in range(70)) == 60, "6,000 units/s now"


def test_the_on_demand_maximum_and_the_table_quota_cap_the_rate() -> None:
    limits = ResourceLimits(True, maximum=50, initial=4_000)
    assert on_demand_limit(OnDemandPeaks(2_000.0), limits) == (50.0, MAX_ON_DEMAND_EXCEEDED)
    assert on_demand_limit(OnDemandPeaks(30_000.0), ResourceLimits(True)) == (40_000.0, ACCOUNT_LIMIT_EXCEEDED)
    ledger = CapacityLedger()
    ledger.resource(KEY, limits, 0.0)
    assert sum(served(ledger, limits, 0.0) for _ in range(60)) == 50
    assert sum(served(ledger, limits, 1.0) for _ in range(60)) == 50
    refusal = ledger.admit([(KEY, 1.0)], lambda key: limits, 1.0)
    assert refusal is not None and refusal.limit_type == MAX_ON_DEMAND_EXCEEDED


def test_switching_billing_mode_starts_the_new_mode_afresh() -> None:
    resource = ResourceCapacity.new(provisioned(1), 0.0)
    resource.refresh(ResourceLimits(True, initial=4_000), 5.0)
    assert resource.peaks is not None and resource.bucket.balance == 4_000
    assert resource.admits(1.0) == (True, KEY_RANGE_EXCEEDED)
    resource.refresh(provisioned(1), 6.0)
    assert resource.peaks is None and resource.admits(1.0) == (False, PROVISIONED_EXCEEDED)


def test_a_request_on_several_resources_is_admitted_all_or_nothing() -> None:
    ledger = CapacityLedger()
    table, index = ("t", "", "write"), ("t", "idx", "write")
    limits = {table: provisioned(10), index: provisioned(1)}
    for key in limits:
        ledger.resource(key, limits[key], 0.0)
    refusal = ledger.admit([(table, 1.0), (index, 2.0)], limits.__getitem__, 1.0)
    assert refusal is not None and refusal.key == index
    assert ledger.resources[table].bucket.balance == 10.0, "nothing taken from the table"
    assert ledger.resources[index].throttle_events == 1 and ledger.resources[table].throttle_events == 0


# -- decreases per day ---------------------------------------------------------------------------------
def test_four_decreases_any_time_then_one_per_hour_without_a_decrease() -> None:
    day = 20_000 * SECONDS_PER_DAY
    history = [day + 10.0, day + 20.0, day + 30.0]
    assert decrease_allowed(history, day + 40.0) == (True, 3)
    history.append(day + 40.0)
    assert decrease_allowed(history, day + 50.0) == (False, 4)
    assert decrease_allowed(history, day + 40.0 + 3_599.0) == (False, 4)
    assert decrease_allowed(history, day + 40.0 + 3_600.0) == (True, 4)
    assert decrease_allowed(history, day + SECONDS_PER_DAY + 1.0) == (True, 0), "a new UTC day"
