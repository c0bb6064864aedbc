"""API Gateway's throttling: token buckets in layers, and usage plans' quotas.

"API Gateway throttles requests to your API using the token bucket algorithm, where a token
counts for a request", and applies its settings in this order: per-client per-method limits
of a usage plan, per-client limits of a usage plan, default and per-method limits of the
stage, account-level limits
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html;
HTTP APIs: account, then a stage's default route settings and per-route settings,
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html).
The burst is the bucket's capacity, the rate its continuous refill; a full bucket does not
accrue more.

Pure: every method takes `now` (emulated monotonic seconds) or `wall` (emulated epoch
seconds) from the injected clock.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

# Account-level defaults: 10,000 requests per second with a burst of 5,000, except in the
# Regions listed with 2,500 / 1,250:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
ACCOUNT_RATE = 10_000.0
ACCOUNT_BURST = 5_000
LOWER_ACCOUNT_RATE = 2_500.0
LOWER_ACCOUNT_BURST = 1_250
LOWER_LIMIT_REGIONS = frozenset({
    "af-south-1", "eu-south-1", "ap-southeast-3", "me-central-1", "ap-south-2", "ap-southeast-4", "eu-south-2",
    "eu-central-2", "il-central-1", "ca-west-1", "ap-southeast-5", "ap-southeast-7", "mx-central-1",
})
# Refill is computed from float differences of timestamps; tokens within this of a whole one
# count as whole (emulator.policy.scaling has the same rule).
_TOKEN_EPSILON = 1e-9
_DAY_S = 86_400
QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")


def account_limits(region: str) -> tuple[float, int]:
    """(rate, burst) of the account-level throttle in `region` (AWS's defaults)."""
    if region in LOWER_LIMIT_REGIONS:
        return LOWER_ACCOUNT_RATE, LOWER_ACCOUNT_BURST
    return ACCOUNT_RATE, ACCOUNT_BURST


class ThrottleLayer(StrEnum):
    """Where a request was refused; the metrics and the log name it."""

    USAGE_PLAN_METHOD = "usage-plan-method"  # a usage plan's per-method limit for the key
    USAGE_PLAN = "usage-plan"  # a usage plan's limit for the key
    QUOTA = "quota"  # a usage plan's quota for the key (429 "Limit Exceeded")
    METHOD = "method"  # REST: the stage's MethodSettings for this method
    ROUTE = "route"  # HTTP: the stage's RouteSettings for this route
    STAGE = "stage"  # the stage's default (REST `*/*`, HTTP DefaultRouteSettings), per method or route
    ACCOUNT = "account"  # the account, per Region, across every API


class SpendRule(StrEnum):
    """Which buckets a request spends from. AWS does not say whether a request refused by a
    later layer has spent a token of the layers before it (README 'Choices')."""

    ADMITTED = "admitted"  # only an admitted request spends, one token from every layer
    EACH_LAYER = "each-layer"  # each layer spends as the request passes it, refused or not later


class RequestBucket:
    """A token bucket that starts full (`burst` tokens) and refills at `rate` per second, capped
    at `burst`. A burst of 0 refuses everything, as a limit of 0 does on AWS."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: int) -> None:
        if rate < 0 or burst < 0 or not math.isfinite(rate):
            raise ValueError(f"a bucket needs a rate and a burst of 0 or more, got {rate!r} and {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._tokens = float(burst)
        self._stamp: float | None = None  # full until first used: no clock reading at construction

    def _refill(self, now: float) -> None:
        stamp = self._stamp
        if stamp is None:
            self._stamp = now
        elif now > stamp:  # a stale `now` never removes tokens
            tokens = self._tokens + (now - stamp) * self.rate
            self._tokens = tokens if tokens < self.burst else float(self.burst)
            self._stamp = now

    def has_token(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= 1.0 - _TOKEN_EPSILON

    def take(self) -> None:
        """Spend one token; call right after `has_token` said yes at the same `now`."""
        self._tokens -= 1.0

    def try_take(self, now: float) -> bool:
        if self.has_token(now):
            self._tokens -= 1.0
            return True
        return False

    def available(self, now: float) -> float:
        self._refill(now)
        return max(0.0, self._tokens)


class QuotaOffset(StrEnum):
    """What a usage plan quota's `Offset` means. AWS's API reference says "the number of
    requests subtracted from the given limit in the initial time period"
    (https://docs.aws.amazon.com/apigateway/latest/api/API_QuotaSettings.html); earlier versions
    of it said "the day that a time period starts" (WEEK: 0 is Sunday). README 'Choices'."""

    REQUESTS = "requests"
    DAY = "day"


def quota_period_start(wall: float, period: str, day_offset: int = 0) -> int:
    """Epoch second at which the quota period holding `wall` began. Periods follow the UTC
    calendar: a day from midnight, a week from Sunday (plus `day_offset` days), a month from
    its first day (plus `day_offset` days)."""
    day_start = int(wall // _DAY_S) * _DAY_S
    if period == "DAY":
        return day_start
    moment = datetime.fromtimestamp(day_start, timezone.utc)
    if period == "WEEK":
        since_sunday = (moment.weekday() + 1) % 7  # weekday(): Monday is 0
        return day_start - ((since_sunday - day_offset) % 7) * _DAY_S
    if period == "MONTH":
        year, month = moment.year, moment.month
        start = calendar.timegm((year, month, 1, 0, 0, 0)) + day_offset * _DAY_S
        if start > day_start:  # the period began last month
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
            start = calendar.timegm((year, month, 1, 0, 0, 0)) + day_offset * _DAY_S
        return start
    raise ValueError(f"a quota period is one of {', '.join(QUOTA_PERIODS)}, got {period!r}")


class QuotaCounter:
    """Requests counted against a usage plan's quota for one key, period by period."""

    __slots__ = ("limit", "period", "offset", "mode", "used", "_period_start", "_first_period")

    def __init__(self, limit: int, period: str, offset: int, mode: QuotaOffset, created_wall: float) -> None:
        if mode is QuotaOffset.DAY and period == "DAY" and offset:
            raise ValueError("a DAY quota's Offset must be 0 (it names the day a period starts)")
        self.limit, self.period, self.offset, self.mode = limit, period, offset, mode
        self.used = 0
        self._first_period = self._period_start = self._start(created_wall)

    def _start(self, wall: float) -> int:
        return quota_period_start(wall, self.period, self.offset if self.mode is QuotaOffset.DAY else 0)

    def _roll(self, wall: float) -> None:
        start = self._start(wall)
        if start > self._period_start:
            self._period_start, self.used = start, 0

    def allowance(self, wall: float) -> int:
        """The requests this period allows in all."""
        self._roll(wall)
        if self.mode is QuotaOffset.REQUESTS and self._period_start == self._first_period:
            return max(0, self.limit - self.offset)
        return self.limit

    def allows(self, wall: float) -> bool:
        allowance = self.allowance(wall)  # first: it starts a new period when one is due
        return self.used < allowance

    def spend(self) -> None:
        self.used += 1

    def remaining(self, wall: float) -> int:
        return max(0, self.allowance(wall) - self.used)


@dataclass(frozen=True, slots=True)
class Gate:
    layer: ThrottleLayer
    bucket: RequestBucket


def admit(key_gates: Sequence[Gate], quota: QuotaCounter | None, gates: Sequence[Gate], now: float, wall: float,
          rule: SpendRule = SpendRule.ADMITTED) -> ThrottleLayer | None:
    """None when the request passes every layer, else the first layer that refused it.

    The order is AWS's: the key's buckets (per-method, then per-plan), the key's quota, then
    `gates` (the stage's, then the account's). Under SpendRule.ADMITTED an admitted request
    takes a token from every bucket and counts once in the quota, and a refused one spends
    nothing; under EACH_LAYER every layer a request passes spends.
    """
    if rule is SpendRule.EACH_LAYER:
        for gate in key_gates:
            if not gate.bucket.try_take(now):
                return gate.layer
        if quota is not None:
            if not quota.allows(wall):
                return ThrottleLayer.QUOTA
            quota.spend()
        for gate in gates:
            if not gate.bucket.try_take(now):
                return gate.layer
        return None
    for gate in key_gates:
        if not gate.bucket.has_token(now):
            return gate.layer
    if quota is not None and not quota.allows(wall):
        return ThrottleLayer.QUOTA
    for gate in gates:
        if not gate.bucket.has_token(now):
            return gate.layer
    for gate in key_gates:
        gate.bucket.take()
    for gate in gates:
        gate.bucket.take()
    if quota is not None:
        quota.spend()
    return None
