"""How much a DynamoDB table or index may consume, and when it throttles (pure policies).

Time is passed in (`now`, emulated seconds; `wall`, emulated epoch seconds); nothing here
reads a clock, sleeps or locks. The caller (emulator/moto_child/ddb_capacity_layer.py)
holds one `CapacityLedger` for the moto process.

**Provisioned capacity**
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html):
a token bucket per table and per global secondary index, for reads and for writes, refilled
at the provisioned units per second. "DynamoDB currently retains up to 5 minutes (300
seconds) of unused read and write capacity" (burst capacity,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html):
the bucket holds at most 300 s of units. Choices where AWS is silent (README, "DynamoDB
capacity"): a new table starts with an empty bucket (it has had no unused capacity yet);
a request is admitted when the bucket holds the units known before it runs (the whole cost
of a put, delete or get; the minimum for an update, query or scan, whose size is known only
after), capped at the bucket's size so that an item larger than the burst can still be
written; its exact cost is then charged, which may leave the bucket in debt that later
requests wait out. The long-run rate is the provisioned rate either way.

**On-demand** (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
and https://repost.aws/knowledge-center/on-demand-table-throttling-dynamodb): a new table
takes up to 4,000 write or 12,000 read request units per second at once; afterwards up to
double its previous peak, and "you might experience throttling if you exceed double your
previous traffic's peak within 30 minutes". Modelled as: the previous peak is the highest
per-second consumption seen at least 30 minutes ago (at first, half the initial
throughput), and the table may consume twice that per second; never more than the
per-table quota (40,000 units,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#default-limits-throughput)
nor than its `OnDemandThroughput` maximum when one is set
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html).

**Decreases of provisioned capacity**
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#decrease-in-provisioned-throughput):
four at any time in a UTC day, then one more per hour without a decrease.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

# Burst capacity: up to 300 s of unused capacity is retained (module text).
BURST_WINDOW_S = 300.0
# On-demand (module text): a new table's initial throughput, the window within which more
# than double the previous peak may throttle, and the per-table quotas.
ON_DEMAND_INITIAL_WRITE_UNITS = 4_000.0
ON_DEMAND_INITIAL_READ_UNITS = 12_000.0
ON_DEMAND_PEAK_SETTLE_S = 30 * 60.0
ON_DEMAND_PEAK_FACTOR = 2.0
ON_DEMAND_WINDOW_S = 1.0
TABLE_QUOTA_UNITS = 40_000.0
# Decreases of provisioned throughput per UTC day (module text).
FREE_DECREASES_PER_DAY = 4
DECREASE_INTERVAL_S = 3600.0
SECONDS_PER_DAY = 86_400

# The LimitType part of a ThrottlingReason
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html).
PROVISIONED_EXCEEDED = "ProvisionedThroughputExceeded"
ACCOUNT_LIMIT_EXCEEDED = "AccountLimitExceeded"
KEY_RANGE_EXCEEDED = "KeyRangeThroughputExceeded"
MAX_ON_DEMAND_EXCEEDED = "MaxOnDemandThroughputExceeded"


# -- the token bucket -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    balance: float = 0.0
    updated: float = 0.0


def refilled(bucket: Bucket, rate: float, size: float, now: float) -> Bucket:
    """The bucket at `now`: refilled at `rate` per second up to `size` (a debt is paid off
    first; a balance above a smaller new size is cut to it)."""
    elapsed = max(0.0, now - bucket.updated)
    return Bucket(min(size, bucket.balance + rate * elapsed), max(now, bucket.updated))


def covers(bucket: Bucket, size: float, need: float) -> bool:
    """Whether a refilled bucket admits a request that needs `need` units now."""
    if size <= 0:
        return False
    return bucket.balance >= min(need, size) - 1e-9


# -- limits of one resource -------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceLimits:
    """What one table or global index may consume, for reads or for writes, as moto holds
    the table's settings now."""

    on_demand: bool
    provisioned: float = 0.0  # units per second (provisioned mode)
    maximum: float | None = None  # OnDemandThroughput maximum (on-demand mode), None: none
    initial: float = ON_DEMAND_INITIAL_WRITE_UNITS  # a new on-demand resource's throughput


@dataclass(frozen=True)
class OnDemandPeaks:
    """The previous peak of an on-demand resource and the windows that may raise it."""

    settled: float  # the previous peak (units per second)
    window_start: float = 0.0
    window_units: float = 0.0
    # (end of a 1-s window, units consumed in it) for windows above `settled`, newest last.
    pending: tuple[tuple[float, float], ...] = ()


def advance_peaks(peaks: OnDemandPeaks, now: float) -> OnDemandPeaks:
    """Close the 1-s windows that ended before `now` and settle the peaks old enough."""
    if now < peaks.window_start + ON_DEMAND_WINDOW_S and not peaks.pending:
        return peaks  # within the current window, nothing waiting to settle
    pending = list(peaks.pending)
    start, units = peaks.window_start, peaks.window_units
    if now >= start + ON_DEMAND_WINDOW_S:
        if units > peaks.settled:
            while pending and pending[-1][1] <= units:
                pending.pop()  # a later, higher window makes older lower ones irrelevant
            pending.append((start + ON_DEMAND_WINDOW_S, units))
        start = math.floor(now / ON_DEMAND_WINDOW_S) * ON_DEMAND_WINDOW_S
        units = 0.0
    settled = peaks.settled
    while pending and pending[0][0] <= now - ON_DEMAND_PEAK_SETTLE_S:
        settled = max(settled, pending.pop(0)[1])
    pending = [entry for entry in pending if entry[1] > settled]
    return OnDemandPeaks(settled, start, units, tuple(pending))


def on_demand_limit(peaks: OnDemandPeaks, limits: ResourceLimits) -> tuple[float, str]:
    """Units per second an on-demand resource may consume, and which limit that is."""
    candidates = [(ON_DEMAND_PEAK_FACTOR * peaks.settled, KEY_RANGE_EXCEEDED), (TABLE_QUOTA_UNITS, ACCOUNT_LIMIT_EXCEEDED)]
    if limits.maximum is not None and limits.maximum > 0:
        candidates.append((float(limits.maximum), MAX_ON_DEMAND_EXCEEDED))
    return min(candidates, key=lambda candidate: candidate[0])


@dataclass
class ResourceCapacity:
    """One table or global index, reads or writes: its limiter and its counters."""

    limits: ResourceLimits
    bucket: Bucket
    peaks: OnDemandPeaks | None = None
    consumed: float = 0.0  # every unit charged, since the start
    throttle_events: int = 0

    @classmethod
    def new(cls, limits: ResourceLimits, now: float) -> "ResourceCapacity":
        if limits.on_demand:
            # A new on-demand resource may use its initial throughput at once.
            peaks = OnDemandPeaks(settled=limits.initial / ON_DEMAND_PEAK_FACTOR, window_start=now)
            rate, _ = on_demand_limit(peaks, limits)
            return cls(limits, Bucket(rate, now), peaks)
        return cls(limits, Bucket(0.0, now))

    def rate_and_size(self) -> tuple[float, float, str]:
        if self.peaks is not None:
            rate, limit_type = on_demand_limit(self.peaks, self.limits)
            return rate, rate * ON_DEMAND_WINDOW_S, limit_type
        rate = self.limits.provisioned
        return rate, rate * BURST_WINDOW_S, PROVISIONED_EXCEEDED

    def refresh(self, limits: ResourceLimits, now: float) -> None:
        """Follow a change of the table's settings (UpdateTable) and bring time forward."""
        if limits.on_demand != self.limits.on_demand:
            fresh = ResourceCapacity.new(limits, now)
            self.limits, self.bucket, self.peaks = fresh.limits, fresh.bucket, fresh.peaks
            return
        self.limits = limits
        if self.peaks is not None:
            self.peaks = advance_peaks(self.peaks, now)
        rate, size, _ = self.rate_and_size()
        self.bucket = refilled(self.bucket, rate, size, now)

    def admits(self, need: float) -> tuple[bool, str]:
        """Call after `refresh`: whether `need` units may start now, and the limit type that
        refuses them."""
        _, size, limit_type = self.rate_and_size()
        return covers(self.bucket, size, need), limit_type

    def charge(self, units: float) -> None:
        self.bucket = replace(self.bucket, balance=self.bucket.balance - units)
        self.consumed += units
        if self.peaks is not None:
            self.peaks = replace(self.peaks, window_units=self.peaks.window_units + units)


# -- the ledger of every resource -------------------------------------------------------------------
ResourceKey = tuple[str, str, str]  # (table id, index name or "", "read" | "write")


@dataclass(frozen=True)
class Refusal:
    key: ResourceKey
    limit_type: str


@dataclass
class CapacityLedger:
    """Every table's and global index's capacity, keyed by (table id, index, kind). The
    table id is whatever the caller uses to tell tables apart (account, Region and name)."""

    resources: dict[ResourceKey, ResourceCapacity] = field(default_factory=dict)
    throttled_requests: dict[str, int] = field(default_factory=dict)  # by table id

    def resource(self, key: ResourceKey, limits: ResourceLimits, now: float) -> ResourceCapacity:
        found = self.resources.get(key)
        if found is None:
            found = self.resources[key] = ResourceCapacity.new(limits, now)
        else:
            found.refresh(limits, now)
        return found

    def admit(self, needs: Iterable[tuple[ResourceKey, float]], limits_of: Callable[[ResourceKey], ResourceLimits],
              now: float, *, count: bool = True) -> Refusal | None:
        """Whether every resource can start its part of one request (all or nothing; nothing
        is taken yet). The first refusal is returned and, with `count`, counted as a
        throttle event of that resource."""
        totals: dict[ResourceKey, float] = {}
        for key, units in needs:
            totals[key] = totals.get(key, 0.0) + units
        for key, units in totals.items():
            resource = self.resource(key, limits_of(key), now)
            granted, limit_type = resource.admits(units)
            if not granted:
                if count:
                    resource.throttle_events += 1
                return Refusal(key, limit_type)
        return None

    def count_throttle_event(self, key: ResourceKey) -> None:
        found = self.resources.get(key)
        if found is not None:
            found.throttle_events += 1

    def charge(self, charges: Iterable[tuple[ResourceKey, float]], limits_of: Callable[[ResourceKey], ResourceLimits],
               now: float) -> None:
        for key, units in charges:
            if units:
                self.resource(key, limits_of(key), now).charge(units)

    def count_throttled_request(self, table_id: str) -> None:
        self.throttled_requests[table_id] = self.throttled_requests.get(table_id, 0) + 1

    def forget_table(self, table_id: str) -> None:
        for key in [key for key in self.resources if key[0] == table_id]:
            del self.resources[key]
        self.throttled_requests.pop(table_id, None)


# -- decreases of provisioned capacity -----------------------------------------------------------------
def decrease_allowed(decreases: Iterable[float], wall: float) -> tuple[bool, int]:
    """Whether a decrease may happen at epoch second `wall`, given the epoch seconds of the
    earlier decreases; and how many happened today (UTC) so far."""
    day = math.floor(wall / SECONDS_PER_DAY)
    today = sorted(t for t in decreases if math.floor(t / SECONDS_PER_DAY) == day)
    if len(today) < FREE_DECREASES_PER_DAY:
        return True, len(today)
    return wall - today[-1] >= DECREASE_INTERVAL_S, len(today)
