"""emulator.policy.concurrency: the ledger's pools, throttle reasons and AWS validation rules."""

from __future__ import annotations

import pytest

from emulator.policy.concurrency import (
    Admission,
    AdmissionPool,
    ConcurrencyConfigError,
    ConcurrencyLedger,
    LimitsConfig,
    ThrottleReason,
    UnbalancedReleaseError,
)
from emulator.errors import InvalidParameterValue

UNRESERVED_MINIMUM_TEXT = (
    "Specified ReservedConcurrentExecutions for function decreases account's "
    "UnreservedConcurrentExecution below its minimum value of [100]."
)


def fill(ledger: ConcurrencyLedger, function: str, qualifier: str | None = None) -> list[Admission]:
    """Admit until throttled; return the admitted ones (the throttled one is dropped)."""
    admitted = []
    while (admission := ledger.admit(function, qualifier)).admitted:
        admitted.append(admission)
    return admitted


def test_throttle_reasons_are_the_aws_enum() -> None:
    assert {reason.value for reason in ThrottleReason} == {
        "ConcurrentInvocationLimitExceeded",
        "ReservedFunctionConcurrentInvocationLimitExceeded",
        "FunctionInvocationRateLimitExceeded",
        "ReservedFunctionInvocationRateLimitExceeded",
        "CallerRateLimitExceeded",
        "ConcurrentSnapshotCreateLimitExceeded",
    }
    assert ThrottleReason.RESERVED == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_reserved_two_throttles_the_third() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 2)
    first, second = ledger.admit("f"), ledger.admit("f")
    assert first.admitted and second.admitted
    assert ledger.admit("f").reason is ThrottleReason.RESERVED
    ledger.release(first)
    assert ledger.admit("f").admitted
    assert ledger.in_flight("f") == 2


def test_reserved_function_does_not_use_the_unreserved_pool() -> None:
    ledger = ConcurrencyLedger(account_limit=1000)
    ledger.set_reserved("f", 300)
    assert len(fill(ledger, "f")) == 300
    assert ledger.unreserved_in_flight == 0
    assert ledger.unreserved_available == 700
    assert len(fill(ledger, "g")) == 700
    assert ledger.admit("h").reason is ThrottleReason.CONCURRENT
    assert ledger.account_in_flight == 1000


def test_unreserved_pool_is_shared_by_functions_without_reservation() -> None:
    ledger = ConcurrencyLedger(account_limit=10, unreserved_minimum=1)
    admitted = [ledger.admit(f"fn{i % 3}") for i in range(10)]
    assert all(admission.admitted for admission in admitted)
    assert ledger.admit("fn0").reason is ThrottleReason.CONCURRENT
    assert ledger.admit("other").reason is ThrottleReason.CONCURRENT
    ledger.release(next(a for a in admitted if a.function == "fn1"))
    assert ledger.admit("other").admitted


def test_reserved_zero_throttles_everything_with_reserved_reason() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 0)
    assert ledger.admit("f").reason is ThrottleReason.RESERVED
    assert ledger.admit("f", "live").reason is ThrottleReason.RESERVED
    assert ledger.in_flight("f") == 0


def test_unreserved_minimum_is_enforced_with_the_aws_wording() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_reserved("a", 600)
    ledger.set_reserved("b", 300)  # exactly 100 left: allowed
    with pytest.raises(ConcurrencyConfigError) as caught:
        ledger.set_reserved("c", 1)
    assert str(caught.value) == UNRESERVED_MINIMUM_TEXT
    assert ledger.reserved("c") is None
    assert ledger.unreserved_limit == 100


def test_config_error_is_an_invalid_parameter_value_exception() -> None:
    error = ConcurrencyConfigError("nope")
    assert isinstance(error, ValueError)
    assert isinstance(error, InvalidParameterValue)
    status, headers, _ = error.to_response_parts()
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidParameterValueException"


def test_changing_a_reservation_counts_only_the_difference() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("a", 900)
    ledger.set_reserved("a", 850)  # lowering is fine
    ledger.set_reserved("a", 900)  # and back up to the edge
    ledger.set_reserved("a", None)
    assert ledger.reserved("a") is None
    assert ledger.unreserved_limit == 1000
    ledger.set_reserved("a", None)  # deleting twice is a no-op


def test_negative_reservation_is_rejected() -> None:
    with pytest.raises(ConcurrencyConfigError, match="reservedConcurrentExecutions"):
        ConcurrencyLedger().set_reserved("f", -1)


def test_release_without_acquire_raises() -> None:
    ledger = ConcurrencyLedger()
    admission = ledger.admit("f")
    ledger.release(admission)
    with pytest.raises(UnbalancedReleaseError):
        ledger.release(admission)
    with pytest.raises(UnbalancedReleaseError):  # a throttle holds nothing to give back
        ledger.set_reserved("f", 0)
        ledger.release(ledger.admit("f"))
    assert ledger.in_flight("f") == 0
    assert ledger.account_in_flight == 0


def test_releasing_a_throttled_admission_raises() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 0)
    with pytest.raises(UnbalancedReleaseError):
        ledger.release(ledger.admit("f"))


# ---- provisioned concurrency ----------------------------------------------------------


def test_provisioned_slots_first_then_spillover_to_on_demand() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_provisioned("f", "live", 2)
    first, second = ledger.admit("f", "live"), ledger.admit("f", "live")
    assert first.provisioned and second.provisioned and not first.spillover
    third = ledger.admit("f", "live")
    assert third.admitted and not third.provisioned and third.spillover
    assert third.pool is AdmissionPool.UNRESERVED
    ledger.release(first)
    fourth = ledger.admit("f", "live")
    assert fourth.provisioned
    assert ledger.in_flight("f") == 3


def test_pc_on_other_qualifiers_does_not_serve_latest() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_provisioned("f", "live", 5)
    latest = ledger.admit("f", "$LATEST")
    assert latest.pool is AdmissionPool.UNRESERVED and not latest.spillover
    assert ledger.admit("f").pool is AdmissionPool.UNRESERVED


def test_pc_counts_toward_reserved_and_spillover_gets_the_rest() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 5)
    ledger.set_provisioned("f", "live", 3)
    admitted = fill(ledger, "f", "live")
    assert [a.pool for a in admitted] == [AdmissionPool.PROVISIONED] * 3 + [AdmissionPool.RESERVED] * 2
    assert ledger.admit("f", "live").reason is ThrottleReason.RESERVED
    assert ledger.in_flight("f") == 5


def test_pc_equal_to_reserved_throttles_latest_even_when_pc_is_idle() -> None:
    # If the PC on versions and aliases adds up to the reserved concurrency, all invocations run
    # on PC and $LATEST is throttled: https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 4)
    ledger.set_provisioned("f", "1", 3)
    ledger.set_provisioned("f", "live", 1)
    assert ledger.admit("f", "$LATEST").reason is ThrottleReason.RESERVED
    assert ledger.admit("f", "live").provisioned


def test_pc_cannot_exceed_reserved() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 10)
    ledger.set_provisioned("f", "1", 6)
    with pytest.raises(ConcurrencyConfigError) as caught:
        ledger.set_provisioned("f", "live", 5)
    assert "ProvisionedConcurrentExecutions" in str(caught.value)
    assert "exceeds" in str(caught.value)
    assert ledger.provisioned("f", "live") is None
    ledger.set_provisioned("f", "1", 10)  # replacing a qualifier's value counts once


def test_reserved_cannot_drop_below_pc() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 10)
    ledger.set_provisioned("f", "1", 6)
    with pytest.raises(ConcurrencyConfigError, match="ProvisionedConcurrentExecutions"):
        ledger.set_reserved("f", 5)
    assert ledger.reserved("f") == 10


def test_pc_without_reserved_is_taken_from_the_unreserved_pool() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_provisioned("f", "live", 400)
    assert ledger.unreserved_limit == 600
    assert len(fill(ledger, "g")) == 600
    assert ledger.admit("f", "live").provisioned  # f's PC is still there for f


def test_pc_without_reserved_must_leave_the_unreserved_minimum() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_reserved("r", 500)
    ledger.set_provisioned("f", "1", 400)
    with pytest.raises(ConcurrencyConfigError, match=r"minimum value of \[100\]"):
        ledger.set_provisioned("f", "2", 1)


def test_pc_inside_a_reservation_claims_nothing_more() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_reserved("f", 900)
    ledger.set_provisioned("f", "live", 900)  # inside f's reservation: no new claim
    assert ledger.unreserved_limit == 100


def test_reserving_a_function_with_pc_moves_its_claim() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_provisioned("f", "live", 300)
    ledger.set_reserved("f", 500)
    assert ledger.unreserved_limit == 500
    ledger.set_reserved("f", None)
    assert ledger.unreserved_limit == 700
    ledger.set_provisioned("f", "live", None)
    assert ledger.unreserved_limit == 1000
    assert ledger.provisioned("f", "live") is None


@pytest.mark.parametrize(("qualifier", "n"), [("$LATEST", 1), ("live", 0)])
def test_invalid_pc_settings(qualifier: str, n: int) -> None:
    with pytest.raises(ConcurrencyConfigError):
        ConcurrencyLedger().set_provisioned("f", qualifier, n)


def test_lowering_pc_drains_busy_slots() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_provisioned("f", "live", 3)
    held = [ledger.admit("f", "live") for _ in range(3)]
    ledger.set_provisioned("f", "live", 1)
    spilled = ledger.admit("f", "live")  # 3 busy >= 1
    assert spilled.spillover and spilled.pool is AdmissionPool.UNRESERVED
    ledger.release(spilled)
    for admission in held:
        ledger.release(admission)
    assert ledger.admit("f", "live").provisioned


def test_release_provisioned_twice_raises() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_provisioned("f", "live", 1)
    admission = ledger.admit("f", "live")
    ledger.release(admission)
    with pytest.raises(UnbalancedReleaseError):
        ledger.release(admission)


# ---- leases, reservation changes mid-flight, metrics -----------------------------------


def test_lease_releases_on_error_and_skips_throttled() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 1)
    with pytest.raises(RuntimeError):
        with ledger.lease("f") as admission:
            assert admission.admitted
            assert ledger.in_flight("f") == 1
            raise RuntimeError("handler blew up")
    assert ledger.in_flight("f") == 0
    with ledger.lease("f"):
        with ledger.lease("f") as throttled:
            assert throttled.reason is ThrottleReason.RESERVED
    assert ledger.account_in_flight == 0


def test_reservation_change_mid_flight_keeps_the_books_balanced() -> None:
    ledger = ConcurrencyLedger(account_limit=100, unreserved_minimum=10)
    before = [ledger.admit("f") for _ in range(5)]  # charged to the unreserved pool
    ledger.set_reserved("f", 6)
    assert ledger.unreserved_in_flight == 5  # still running there
    reserved = ledger.admit("f")
    assert reserved.pool is AdmissionPool.RESERVED  # 5 running + 1 = 6
    assert ledger.admit("f").reason is ThrottleReason.RESERVED
    for admission in before:
        ledger.release(admission)
    assert ledger.unreserved_in_flight == 0
    assert ledger.in_flight("f") == 1
    ledger.release(reserved)
    assert ledger.account_in_flight == 0


def test_releases_go_back_to_their_own_pool_after_the_reservation_is_removed() -> None:
    ledger = ConcurrencyLedger()
    ledger.set_reserved("f", 2)
    under_reservation = ledger.admit("f")
    ledger.set_reserved("f", None)
    unreserved = ledger.admit("f")
    assert (under_reservation.pool, unreserved.pool) == (AdmissionPool.RESERVED, AdmissionPool.UNRESERVED)
    ledger.release(under_reservation)
    ledger.release(unreserved)
    snapshot = ledger.snapshot()
    assert snapshot["reserved_in_flight"] == snapshot["unreserved_in_flight"] == 0


def test_snapshot_reports_claimed_and_unreserved_concurrency() -> None:
    ledger = ConcurrencyLedger(account_limit=1000, unreserved_minimum=100)
    ledger.set_reserved("r", 200)
    ledger.set_provisioned("p", "live", 50)
    ledger.admit("r")
    ledger.admit("p", "live")
    for _ in range(3):
        ledger.admit("u")
    assert ledger.snapshot() == {
        "account_limit": 1000,
        "unreserved_minimum": 100,
        "reserved_total": 200,
        "provisioned_total": 50,
        "unreserved_limit": 750,
        "account_in_flight": 5,
        "provisioned_in_flight": 1,
        "reserved_in_flight": 1,
        "unreserved_in_flight": 3,
        "unreserved_available": 747,
        "claimed_concurrency": 253,
    }


def test_limits_scaled_by_factor() -> None:
    scaled = LimitsConfig().scaled(20)
    assert (scaled.account_limit, scaled.unreserved_minimum) == (50, 5)
    assert LimitsConfig().scaled(1000).unreserved_minimum == 1
    ledger = ConcurrencyLedger.from_limits(scaled)
    assert len(fill(ledger, "f")) == 50
    ledger2 = ConcurrencyLedger.from_limits(scaled)
    ledger2.set_reserved("a", 45)
    with pytest.raises(ConcurrencyConfigError, match=r"minimum value of \[5\]"):
        ledger2.set_reserved("b", 1)


@pytest.mark.parametrize(("limit", "minimum"), [(0, 0), (10, 11), (10, -1)])
def test_limits_reject_impossible_values(limit: int, minimum: int) -> None:
    with pytest.raises(ValueError):
        LimitsConfig(limit, minimum)
