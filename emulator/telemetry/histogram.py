"""Log-bucketed value distributions: O(1) to record, mergeable, percentiles on demand.

A value falls into bucket floor(log(v) / log(GROWTH)); a percentile is read back as the
geometric middle of its bucket, so it is within GROWTH's half-width (about 1 %) of the true
value, whatever the range (a microsecond or an hour). Exact count, sum, minimum and maximum
are kept beside the buckets. This is the shape of HdrHistogram and of CloudWatch's own
percentile statistics (which are approximate too: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Percentiles),
small enough to hold one per function per second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GROWTH = 1.02  # relative width of a bucket: percentiles within ~1 % of the true value
INV_LOG_GROWTH = 1.0 / math.log(GROWTH)
# Values at or below this are counted in one bucket for "zero" (e.g. a 0 ms event age).
SMALLEST = 1e-6
ZERO_BUCKET = -(10**6)


def bucket_of(value: float) -> int:
    if value <= SMALLEST:
        return ZERO_BUCKET
    return math.floor(math.log(value) * INV_LOG_GROWTH)


def bucket_value(bucket: int) -> float:
    """The value a bucket stands for: the geometric middle of its bounds."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return GROWTH ** (bucket + 0.5)


class Distribution:
    """Samples of one quantity over a span of time (a second, or a merged period)."""

    __slots__ = ("count", "total", "low", "high", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.buckets: dict[int, int] = {}

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value > self.high:
            self.high = value
        if value < self.low:
            self.low = value
        key = ZERO_BUCKET if value <= SMALLEST else math.floor(math.log(value) * INV_LOG_GROWTH)
        buckets = self.buckets
        buckets[key] = buckets.get(key, 0) + 1

    def merge(self, other: "Distribution") -> None:
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        buckets = self.buckets
        for key, count in other.buckets.items():
            buckets[key] = buckets.get(key, 0) + count

    @classmethod
    def merged(cls, parts: Iterable["Distribution"]) -> "Distribution":
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def percentile(self, p: float) -> float:
        """The p-th percentile (0 < p <= 100); NaN when empty. p100 is the exact maximum."""
        if not self.count:
            return math.nan
        if p >= 100:
            return self.high
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                # Never outside what was seen: the bucket's middle may lie beyond the extremes.
                return min(max(bucket_value(key), self.low), self.high)
        return self.high

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def to_json(self) -> dict[str, object]:
        """Exact figures plus the buckets, for a process that merges it with others."""
        return {"count": self.count, "sum": self.total, "min": self.low if self.count else None,
                "max": self.high if self.count else None, "buckets": {str(k): v for k, v in self.buckets.items()}}

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> "Distribution":
        out = cls()
        count = int(raw.get("count") or 0)  # type: ignore[arg-type]
        if not count:
            return out
        out.count = count
        out.total = float(raw["sum"])  # type: ignore[arg-type]
        out.low = float(raw["min"])  # type: ignore[arg-type]
        out.high = float(raw["max"])  # type: ignore[arg-type]
        out.buckets = {int(k): int(v) for k, v in dict(raw.get("buckets") or {}).items()}  # type: ignore[call-overload]
        return out
