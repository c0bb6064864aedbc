"""API Gateway's token buckets and quotas (emulator/policy/api_throttling.py), in virtual time
with exact counts. The worked examples are AWS's own
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html)."""

from __future__ import annotations

import calendar

import pytest

from emulator.clock import VirtualClock
from emulator.policy.api_throttling import (
    Gate, QuotaCounter, QuotaOffset, RequestBucket, SpendRule, ThrottleLayer, account_limits, admit,
    quota_period_start,
)


def served(bucket: RequestBucket, count: int, now: float) -> int:
    return sum(bucket.try_take(now) for _ in range(count))


def test_account_defaults_by_region() -> None:
    assert account_limits("us-east-1") == (10_000.0, 5_000)
    assert account_limits("eu-central-2") == (2_500.0, 1_250)


def test_burst_then_the_steady_rate() -> None:
    # "If the caller sends 10,000 requests in the first millisecond, API Gateway serves 5,000".
    bucket = RequestBucket(10_000, 5_000)
    assert served(bucket, 10_000, 0.0) == 5_000
    # Refill is continuous: 1,000 tokens 100 ms later, never more than the burst.
    assert served(bucket, 5_000, 0.1) == 1_000
    assert bucket.available(100.0) == 5_000


def test_awss_example_of_two_spikes() -> None:
    # "5,000 requests in the first millisecond ... waits until the 101st millisecond to submit
    # another 5,000 ... processes 6,000 requests and throttles the rest".
    bucket = RequestBucket(10_000, 5_000)
    assert served(bucket, 5_000, 0.001) + served(bucket, 5_000, 0.101) == 6_000


def test_an_even_stream_at_the_rate_is_never_throttled() -> None:
    clock = VirtualClock()
    bucket = RequestBucket(10, 2)
    throttled = 0
    for _ in range(1_000):
        clock.advance(0.1)
        throttled += not bucket.try_take(clock.now())
    assert throttled == 0


def test_zero_burst_refuses_everything_and_zero_rate_never_refills() -> None:
    assert served(RequestBucket(100, 0), 10, 5.0) == 0
    bucket = RequestBucket(0, 3)
    assert served(bucket, 10, 0.0) == 3
    assert served(bucket, 10, 1e6) == 0


def test_a_stale_now_never_removes_tokens() -> None:
    bucket = RequestBucket(1, 5)
    assert served(bucket, 5, 10.0) == 5
    assert served(bucket, 1, 9.0) == 0
    assert served(bucket, 1, 11.0) == 1


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RequestBucket(-1, 1)
    with pytest.raises(ValueError):
        RequestBucket(1, -1)


# --- layers ---------------------------------------------------------------------------------


def gate(layer: ThrottleLayer, rate: float, burst: int) -> Gate:
    return Gate(layer, RequestBucket(rate, burst))


def test_layers_refuse_in_awss_order_and_name_the_layer() -> None:
    key = gate(ThrottleLayer.USAGE_PLAN, 0, 1)
    stage = gate(ThrottleLayer.STAGE, 0, 5)
    account = gate(ThrottleLayer.ACCOUNT, 0, 5)
    assert admit((key,), None, (stage, account), 0, 0) is None
    assert admit((key,), None, (stage, account), 0, 0) is ThrottleLayer.USAGE_PLAN
    assert admit((), None, (gate(ThrottleLayer.METHOD, 0, 0), account), 0, 0) is ThrottleLayer.METHOD


def test_admitted_rule_a_refused_request_spends_nothing() -> None:
    key = gate(ThrottleLayer.USAGE_PLAN, 0, 10)
    account = gate(ThrottleLayer.ACCOUNT, 0, 2)
    quota = QuotaCounter(100, "DAY", 0, QuotaOffset.REQUESTS, 0)
    results = [admit((key,), quota, (account,), 0, 0, SpendRule.ADMITTED) for _ in range(5)]
    assert results == [None, None, ThrottleLayer.ACCOUNT, ThrottleLayer.ACCOUNT, ThrottleLayer.ACCOUNT]
    assert key.bucket.available(0) == 8  # only the two admitted requests spent a key token
    assert quota.used == 2


def test_each_layer_rule_spends_what_the_request_passed() -> None:
    key = gate(ThrottleLayer.USAGE_PLAN, 0, 10)
    account = gate(ThrottleLayer.ACCOUNT, 0, 2)
    quota = QuotaCounter(100, "DAY", 0, QuotaOffset.REQUESTS, 0)
    results = [admit((key,), quota, (account,), 0, 0, SpendRule.EACH_LAYER) for _ in range(5)]
    assert results.count(None) == 2
    assert key.bucket.available(0) == 5
    assert quota.used == 5


def test_quota_is_checked_after_the_keys_buckets_and_before_the_stages() -> None:
    quota = QuotaCounter(2, "DAY", 0, QuotaOffset.REQUESTS, 0)
    stage = gate(ThrottleLayer.STAGE, 0, 100)
    assert [admit((), quota, (stage,), 0, 0) for _ in range(3)] == [None, None, ThrottleLayer.QUOTA]
    assert stage.bucket.available(0) == 98
    spent_key = gate(ThrottleLayer.USAGE_PLAN_METHOD, 0, 0)
    assert admit((spent_key,), quota, (stage,), 0, 0) is ThrottleLayer.USAGE_PLAN_METHOD


# --- quotas ---------------------------------------------------------------------------------

SATURDAY = calendar.timegm((2024, 3, 2, 13, 30, 0))  # Saturday 2 March 2024, 13:30 UTC


def utc(*fields: int) -> int:
    return calendar.timegm((*fields, 0, 0, 0)[:6])


def test_quota_periods_follow_the_utc_calendar() -> None:
    assert quota_period_start(SATURDAY, "DAY") == utc(2024, 3, 2)
    assert quota_period_start(SATURDAY, "WEEK") == utc(2024, 2, 25)  # the Sunday before
    assert quota_period_start(SATURDAY, "WEEK", 1) == utc(2024, 2, 26)  # Monday
    assert quota_period_start(SATURDAY, "MONTH") == utc(2024, 3, 1)
    assert quota_period_start(SATURDAY, "MONTH", 3) == utc(2024, 2, 4)  # the 4th, last month
    assert quota_period_start(utc(2024, 1, 2), "MONTH", 5) == utc(2023, 12, 6)


def test_quota_counts_per_period_and_starts_again_with_the_next() -> None:
    clock = VirtualClock(wall_start=SATURDAY)
    quota = QuotaCounter(3, "DAY", 0, QuotaOffset.REQUESTS, clock.wall())
    allowed = 0
    for _ in range(5):
        if quota.allows(clock.wall()):
            quota.spend()
            allowed += 1
    assert (allowed, quota.remaining(clock.wall())) == (3, 0)
    clock.advance(utc(2024, 3, 3) - SATURDAY - 1)  # one second before midnight
    assert not quota.allows(clock.wall())
    clock.advance(1)
    assert quota.allows(clock.wall()) and quota.remaining(clock.wall()) == 3


def test_offset_as_requests_lowers_only_the_first_period() -> None:
    quota = QuotaCounter(5, "WEEK", 3, QuotaOffset.REQUESTS, SATURDAY)
    assert quota.remaining(SATURDAY) == 2
    assert quota.remaining(utc(2024, 3, 3)) == 5  # Sunday: a new week, the whole limit


def test_offset_as_a_day_moves_the_period_start() -> None:
    quota = QuotaCounter(5, "WEEK", 1, QuotaOffset.DAY, SATURDAY)
    for _ in range(5):
        quota.spend()
    assert quota.remaining(utc(2024, 3, 3)) == 0  # Sunday: still the week that began on Monday
    assert quota.remaining(utc(2024, 3, 4)) == 5  # Monday
    with pytest.raises(ValueError):
        QuotaCounter(5, "DAY", 1, QuotaOffset.DAY, SATURDAY)
