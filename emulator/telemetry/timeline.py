"""The timeline: per second of emulated time, what happened, under CloudWatch's names.

Two ways in, both O(1):

* **events** on the invoke path (an invocation ran, a throttle, an async event queued or
  aged ...): `FunctionSeries` keeps the current second's `FunctionFrame` and rolls it into
  its ring when the clock (the emulated wall clock, one read per event) enters a new second;
* **samples** taken off the invoke path once a second by the sampler (queue depths, pollers,
  iterator ages, the ledger's account figures): `record_gauge` / `record_count` into a
  fixed-size ring of (second, value) per series.

Memory is bounded: every ring holds at most `retention_s` seconds that had data (a second
with nothing in it is not stored). Reading (`keys`, `points`, `aggregate`, `export`) is for
the API layer and the report; it never runs on the invoke path. docs/timeline.md describes
the series, the statistics and the export format.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from emulator.telemetry import catalog
from emulator.telemetry.catalog import Kind, MetricInfo
from emulator.telemetry.histogram import INV_LOG_GROWTH, SMALLEST, ZERO_BUCKET, Distribution

_floor, _log = math.floor, math.log
DEFAULT_RETENTION_S = 3600
# Percentiles every distribution and gauge series carries in an export.
EXPORT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)

Dims = tuple[tuple[str, str], ...]


class SeriesKey(NamedTuple):
    namespace: str
    metric: str
    dims: Dims  # (name, value) pairs, sorted by name

    @property
    def dimensions(self) -> dict[str, str]:
        return dict(self.dims)


def series_key(namespace: str, metric: str, dimensions: Mapping[str, str] | None = None) -> SeriesKey:
    return SeriesKey(namespace, metric, tuple(sorted((dimensions or {}).items())))


class Datum(NamedTuple):
    """A second's (or a period's) samples: count, sum, extremes, and the distribution when
    the series has one (otherwise each second's value is one sample)."""

    count: int
    total: float
    low: float
    high: float
    dist: Distribution | None = None


def _one(value: float) -> Datum:
    return Datum(1, value, value, value)


# -- the invoke path: one function's seconds ----------------------------------------------
class FunctionFrame:
    """What one function did in one second."""

    __slots__ = ("second", "invocations", "errors", "cold_starts", "throttles", "concurrency", "async_received",
                 "async_dropped", "dead_letter_errors", "dead_letter_deliveries", "failure_deliveries", "destination_failures",
                 "duration", "init", "async_age")

    def __init__(self, second: int) -> None:
        self.second = second
        self.invocations = 0
        self.errors = 0
        self.cold_starts = 0
        self.throttles: dict[str, int] | None = None  # by Reason
        self.concurrency = 0  # the most executions at once (set when the second closes)
        self.async_received = 0
        self.async_dropped: dict[str, int] | None = None  # by Reason (emulator/policy/async_retry.py DropReason)
        self.dead_letter_errors = 0
        self.dead_letter_deliveries: dict[str, int] | None = None  # by Reason, as async_dropped
        self.failure_deliveries: dict[str, int] | None = None  # on-failure destination records, by Reason
        self.destination_failures = 0
        self.duration: Distribution | None = None
        self.init: Distribution | None = None
        self.async_age: Distribution | None = None

    def has_data(self) -> bool:
        return bool(self.invocations or self.throttles or self.concurrency or self.async_received or self.async_dropped
                    or self.dead_letter_errors or self.dead_letter_deliveries or self.failure_deliveries
                    or self.destination_failures
                    or self.async_age is not None)


class _Account:
    """Executions of all functions at once: the account's ConcurrentExecutions."""

    __slots__ = ("in_flight", "peak")

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0


class FunctionSeries:
    """The ring of one function's frames. The methods below are the invoke path's whole cost."""

    __slots__ = ("name", "live", "ring", "in_flight", "peak", "_wall", "_account")

    def __init__(self, name: str, wall: Callable[[], float], retention_s: int, account: _Account) -> None:
        self.name = name
        self._wall = wall
        self._account = account
        self.ring: deque[FunctionFrame] = deque(maxlen=retention_s)
        self.live = FunctionFrame(int(wall()))
        self.in_flight = 0
        self.peak = 0

    def frame(self) -> FunctionFrame:
        second = int(self._wall())
        live = self.live
        return live if live.second == second else self.roll(second)

    def roll(self, second: int) -> FunctionFrame:
        """Close the live frame if `second` is later (the clock is monotonic)."""
        live = self.live
        if second <= live.second:
            return live
        live.concurrency = self.peak
        if live.has_data():
            self.ring.append(live)
        self.peak = self.in_flight  # what still runs counts in the new second too
        live = self.live = FunctionFrame(second)
        return live

    def invocation(self, duration_ms: float, error: bool, cold: bool, init_ms: float | None) -> None:
        frame = self.frame()
        frame.invocations += 1
        if error:
            frame.errors += 1
        if cold:
            frame.cold_starts += 1
            if init_ms is not None:
                init = frame.init
                if init is None:
                    init = frame.init = Distribution()
                init.add(init_ms)
        duration = frame.duration
        if duration is None:
            duration = frame.duration = Distribution()
        # Distribution.add written out: this is the invoke path's one distribution.
        duration.count += 1
        duration.total += duration_ms
        if duration_ms > duration.high:
            duration.high = duration_ms
        if duration_ms < duration.low:
            duration.low = duration_ms
        key = ZERO_BUCKET if duration_ms <= SMALLEST else _floor(_log(duration_ms) * INV_LOG_GROWTH)
        buckets = duration.buckets
        buckets[key] = buckets.get(key, 0) + 1

    def throttle(self, reason: str) -> None:
        frame = self.frame()
        throttles = frame.throttles
        if throttles is None:
            throttles = frame.throttles = {}
        throttles[reason] = throttles.get(reason, 0) + 1

    def executions(self, current: int, delta: int) -> None:
        """The function now runs `current` executions (after a change of `delta`). No clock
        read: the peak is attributed to the live frame when it closes."""
        self.in_flight = current
        if current > self.peak:
            self.peak = current
        account = self._account
        account.in_flight += delta
        if account.in_flight > account.peak:
            account.peak = account.in_flight

    def async_received(self) -> None:
        self.frame().async_received += 1

    def async_attempt(self, age_ms: float) -> None:
        frame = self.frame()
        age = frame.async_age
        if age is None:
            age = frame.async_age = Distribution()
        age.add(age_ms)

    def async_dropped(self, reason: str, count: int = 1) -> None:
        frame = self.frame()
        dropped = frame.async_dropped
        if dropped is None:
            dropped = frame.async_dropped = {}
        dropped[reason] = dropped.get(reason, 0) + count

    def delivery_failed(self, dead_letter: bool) -> None:
        frame = self.frame()
        if dead_letter:
            frame.dead_letter_errors += 1
        else:
            frame.destination_failures += 1

    def dead_letter_delivered(self, reason: str) -> None:
        self._by_reason("dead_letter_deliveries", reason)

    def failure_record_delivered(self, reason: str) -> None:
        """An on-failure destination took the record of an event that failed for `reason`."""
        self._by_reason("failure_deliveries", reason)

    def _by_reason(self, attr: str, reason: str) -> None:
        """One more in this second's count of `reason` under `attr` (off the invoke path;
        throttle() and async_dropped() spell it out, as they run per request)."""
        frame = self.frame()
        counts = getattr(frame, attr)
        if counts is None:
            counts = {}
            setattr(frame, attr, counts)
        counts[reason] = counts.get(reason, 0) + 1

    def frames(self, start: float = -math.inf) -> Iterator[FunctionFrame]:
        """Oldest first; from `start` on, the ring is read from its newest end, so a short
        recent window (the dashboard's once-a-second read) costs what it holds, not the ring."""
        if start == -math.inf:
            yield from self.ring
        else:
            recent = []
            for frame in reversed(self.ring):
                if frame.second < start:
                    break
                recent.append(frame)
            yield from reversed(recent)
        live = self.live
        if live.second >= start and (live.has_data() or self.peak):
            # The live frame's concurrency so far is the peak since it opened.
            view = FunctionFrame(live.second)
            for slot in FunctionFrame.__slots__:
                setattr(view, slot, getattr(live, slot))
            view.concurrency = self.peak
            yield view


# -- sampled series -------------------------------------------------------------------------
class SampleRing:
    """(second, value) pairs in two arrays that grow to `capacity` entries, then wrap; a
    second sampled twice keeps the larger value (gauges) or the sum (counts)."""

    __slots__ = ("seconds", "values", "start", "capacity", "summing")

    def __init__(self, capacity: int, summing: bool) -> None:
        self.seconds = array("q")
        self.values = array("d")
        self.start = 0  # index of the oldest entry once the arrays are full
        self.capacity = capacity
        self.summing = summing

    def record(self, second: int, value: float) -> None:
        seconds, values = self.seconds, self.values
        size = len(seconds)
        if size:
            last = (self.start - 1) % size
            if seconds[last] >= second:  # the same second (or a late sample): fold in
                values[last] = values[last] + value if self.summing else max(values[last], value)
                return
        if size < self.capacity:
            seconds.append(second)
            values.append(value)
            return
        seconds[self.start] = second
        values[self.start] = value
        self.start = (self.start + 1) % size

    def items(self, start: float = -math.inf) -> Iterator[tuple[int, float]]:
        """Oldest first, from the first second >= start (found by bisection: seconds are in order)."""
        size = len(self.seconds)
        first = 0 if start == -math.inf else bisect_left(_Ordered(self), start)
        for i in range(first, size):
            index = (self.start + i) % size
            yield self.seconds[index], self.values[index]


class _Ordered(Sequence[int]):
    """A ring's seconds in time order, as a sequence `bisect` can search."""

    __slots__ = ("ring",)

    def __init__(self, ring: SampleRing) -> None:
        self.ring = ring

    def __len__(self) -> int:
        return len(self.ring.seconds)

    def __getitem__(self, i: int) -> int:  # type: ignore[override]
        ring = self.ring
        return ring.seconds[(ring.start + i) % len(ring.seconds)]


# -- function frames as series ----------------------------------------------------------------
def _counter(attr: str) -> Callable[[FunctionFrame], Datum | None]:
    def read(frame: FunctionFrame) -> Datum | None:
        return _one(getattr(frame, attr))

    return read


def _distribution(attr: str) -> Callable[[FunctionFrame], Datum | None]:
    def read(frame: FunctionFrame) -> Datum | None:
        dist: Distribution | None = getattr(frame, attr)
        if dist is None or not dist.count:
            return None
        return Datum(dist.count, dist.total, dist.low, dist.high, dist)

    return read


def _by_reason_total(attr: str) -> Callable[[FunctionFrame], Datum | None]:
    def read(frame: FunctionFrame) -> Datum | None:
        by_reason: dict[str, int] | None = getattr(frame, attr)
        return _one(sum(by_reason.values()) if by_reason else 0)

    return read


def _concurrency(frame: FunctionFrame) -> Datum | None:
    return _one(frame.concurrency)


# Metric name -> reader of a frame (None: no sample in that second).
_FRAME_READERS: dict[str, Callable[[FunctionFrame], Datum | None]] = {
    "Invocations": _counter("invocations"),
    "Errors": _counter("errors"),
    "ColdStarts": _counter("cold_starts"),
    "Throttles": _by_reason_total("throttles"),
    "ConcurrentExecutions": _concurrency,
    "AsyncEventsReceived": _counter("async_received"),
    "AsyncEventsDropped": _by_reason_total("async_dropped"),
    "DeadLetterErrors": _counter("dead_letter_errors"),
    "DeadLetterDeliveries": _by_reason_total("dead_letter_deliveries"),
    "OnFailureDestinationDeliveries": _by_reason_total("failure_deliveries"),
    "DestinationDeliveryFailures": _counter("destination_failures"),
    "Duration": _distribution("duration"),
    "InitDuration": _distribution("init"),
    "AsyncEventAge": _distribution("async_age"),
}
# Series also kept per `Reason` (with FunctionName), and the frame's dict of counts by reason.
_BY_REASON = {"Throttles": "throttles", "AsyncEventsDropped": "async_dropped", "DeadLetterDeliveries": "dead_letter_deliveries",
              "OnFailureDestinationDeliveries": "failure_deliveries"}
# Account-level (no dimension) figures AWS publishes by summing or merging over functions.
_ACCOUNT_FROM_FUNCTIONS = ("Invocations", "Errors", "Throttles", "Duration", "ColdStarts", "AsyncEventsReceived",
                           "AsyncEventsDropped", "AsyncEventAge", "DeadLetterErrors", "DestinationDeliveryFailures")


def _combine(a: Datum | None, b: Datum | None, summing: bool) -> Datum | None:
    """Two series' samples of the same second, as one (a sum over functions, or a merge)."""
    if a is None:
        return b
    if b is None:
        return a
    if a.dist is not None or b.dist is not None:
        dist = Distribution.merged(d for d in (a.dist, b.dist) if d is not None)
        return Datum(dist.count, dist.total, dist.low, dist.high, dist)
    if summing:
        return _one(a.total + b.total)
    return _one(max(a.high, b.high))


class Timeline:
    def __init__(self, wall: Callable[[], float], retention_s: int = DEFAULT_RETENTION_S) -> None:
        if retention_s < 1:
            raise ValueError(f"the timeline keeps at least 1 second, got {retention_s}")
        self.wall = wall  # emulated epoch seconds (Clock.wall)
        self.retention_s = retention_s
        self._functions: dict[str, FunctionSeries] = {}
        self._samples: dict[SeriesKey, SampleRing] = {}
        self._account = _Account()
        self._last_tick = int(wall())

    # -- writing ------------------------------------------------------------------------
    def function(self, name: str) -> FunctionSeries:
        series = self._functions.get(name)
        if series is None:
            series = self._functions[name] = FunctionSeries(name, self.wall, self.retention_s, self._account)
        return series

    def now(self) -> int:
        return int(self.wall())

    def record_gauge(self, key: SeriesKey, value: float, second: int | None = None) -> None:
        self._ring(key, summing=False).record(self.now() if second is None else second, float(value))

    def record_count(self, key: SeriesKey, delta: float, second: int | None = None) -> None:
        self._ring(key, summing=True).record(self.now() if second is None else second, float(delta))

    def _ring(self, key: SeriesKey, summing: bool) -> SampleRing:
        ring = self._samples.get(key)
        if ring is None:
            ring = self._samples[key] = SampleRing(self.retention_s, summing)
        return ring

    def tick(self) -> None:
        """Once a second (the sampler): close every function's frame of a past second, so
        that concurrency of long invocations shows each second, and record the account's
        peak executions since the last tick, in the second that tick began."""
        second = self.now()
        for series in self._functions.values():
            series.roll(second)
        if second <= self._last_tick:
            return
        account = self._account
        self.record_gauge(series_key(catalog.LAMBDA, "ConcurrentExecutions"), account.peak, self._last_tick)
        account.peak = account.in_flight
        self._last_tick = second

    def reset(self) -> None:
        """Forget everything (the emulator's reset); executions still running are forgotten too."""
        self._functions.clear()
        self._samples.clear()
        self._account = _Account()
        self._last_tick = self.now()

    # -- reading ------------------------------------------------------------------------
    def keys(self, start: float = -math.inf, end: float = math.inf) -> list[SeriesKey]:
        """Every series with data (ListMetrics); of a function's series, those with data in
        [start, end) (sampled series are listed whatever the window: reading one is cheap)."""
        keys: set[SeriesKey] = set(self._samples)
        for name, series in self._functions.items():
            frames = [frame for frame in series.frames(start) if frame.second < end]
            if not frames:
                continue
            fn = (("FunctionName", name),)
            for metric, read in _FRAME_READERS.items():
                if any(_has_value(read(frame)) for frame in frames):
                    keys.add(SeriesKey(catalog.LAMBDA, metric, fn))
                    if metric in _ACCOUNT_FROM_FUNCTIONS:
                        keys.add(SeriesKey(catalog.LAMBDA, metric, ()))
            for frame in frames:
                for metric, attr in _BY_REASON.items():
                    for reason in getattr(frame, attr) or ():
                        keys.add(SeriesKey(catalog.LAMBDA, metric, (("FunctionName", name), ("Reason", reason))))
        return sorted(keys)

    def points(self, key: SeriesKey, start: float = -math.inf, end: float = math.inf) -> list[tuple[int, Datum]]:
        """Per-second samples of one series with start <= second < end, oldest first."""
        if key.namespace == catalog.LAMBDA and key.metric in _FRAME_READERS:
            dims = key.dimensions
            if set(dims) <= {"FunctionName", "Reason"} and ("FunctionName" in dims or not dims):
                if dims or key.metric in _ACCOUNT_FROM_FUNCTIONS:
                    return self._function_points(key.metric, dims, start, end)
        ring = self._samples.get(key)
        if ring is None:
            return []
        points = []
        for second, value in ring.items(start):
            if second >= end:
                break
            points.append((second, _one(value)))
        return points

    def _function_points(self, metric: str, dims: Mapping[str, str], start: float, end: float) -> list[tuple[int, Datum]]:
        reason = dims.get("Reason")
        read = _FRAME_READERS[metric]
        if reason is not None:
            attr = _BY_REASON.get(metric)
            if attr is None:
                return []
            read = lambda frame: _one((getattr(frame, attr) or {}).get(reason, 0))  # noqa: E731
        name = dims.get("FunctionName")
        names = [name] if name is not None else list(self._functions)
        summing = catalog.info(catalog.LAMBDA, metric).kind is Kind.COUNTER  # type: ignore[union-attr]
        by_second: dict[int, Datum | None] = {}
        for function in names:
            series = self._functions.get(function)
            if series is None:
                continue
            for frame in series.frames(start):
                if frame.second < end:
                    datum = read(frame)
                    if datum is not None:
                        by_second[frame.second] = _combine(by_second.get(frame.second), datum, summing)
        return [(second, datum) for second, datum in sorted(by_second.items()) if datum is not None]

    def aggregate(self, key: SeriesKey, start: float, end: float, period: int) -> list[tuple[int, Datum]]:
        """The series in periods of `period` seconds aligned on `start` (CloudWatch's way),
        oldest first; periods without a sample are left out, as CloudWatch leaves them."""
        if period < 1:
            raise ValueError("period must be at least 1 second")
        origin = aligned_start(start, period)
        periods: dict[int, list[Datum]] = {}
        for second, datum in self.points(key, start, end):
            slot = origin + (second - origin) // period * period
            periods.setdefault(slot, []).append(datum)
        return [(slot, merge_data(data)) for slot, data in sorted(periods.items())]

    def export(self, start: float = -math.inf, end: float = math.inf) -> dict[str, Any]:
        """Every series between start and end, per second, with its summary over the window:
        what report.json carries (docs/timeline.md, "Export")."""
        series = []
        first = last = None
        for key in self.keys(start, end):
            points = self.points(key, start, end)
            if not points:
                continue
            first = points[0][0] if first is None else min(first, points[0][0])
            last = points[-1][0] if last is None else max(last, points[-1][0])
            series.append(export_series(key, points))
        return {"resolution_s": 1, "start": first, "end": None if last is None else last + 1, "series": series}


def aligned_start(start: float, period: int) -> int:
    """Where periods begin: CloudWatch rounds StartTime down to a whole minute, or for
    periods under a minute to an even division of it
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html)."""
    if not math.isfinite(start):
        return 0
    align = period if period < 60 else 60
    return math.floor(start / align) * align


def _has_value(datum: Datum | None) -> bool:
    return datum is not None and (datum.dist is not None or datum.total != 0)


def merge_data(data: Iterable[Datum]) -> Datum:
    """Samples of several seconds as one period's: distributions merge, values are samples."""
    data = list(data)
    dist: Distribution | None = None
    count, total, low, high = 0, 0.0, math.inf, -math.inf
    for datum in data:
        if datum.dist is not None:
            if dist is None:
                dist = Distribution()
            dist.merge(datum.dist)
        count += datum.count
        total += datum.total
        low = min(low, datum.low)
        high = max(high, datum.high)
    if dist is None:
        dist = Distribution()
        for datum in data:
            dist.add(datum.total)
    return Datum(count, total, low, high, dist)


def statistic(datum: Datum, name: str) -> float:
    """A CloudWatch statistic of a period: Sum, SampleCount, Average, Minimum, Maximum, pNN(.N)."""
    if name == "Sum":
        return datum.total
    if name == "SampleCount":
        return float(datum.count)
    if name == "Average":
        return datum.total / datum.count if datum.count else math.nan
    if name == "Minimum":
        return datum.low
    if name == "Maximum":
        return datum.high
    percentile = parse_percentile(name)
    if percentile is None:
        raise ValueError(f"unknown statistic {name!r}")
    if datum.dist is None:
        return datum.high
    return datum.dist.percentile(percentile)


def parse_percentile(name: str) -> float | None:
    """"p99" -> 99.0, "p99.9" -> 99.9; None if `name` is not a percentile statistic."""
    if len(name) < 2 or name[0] not in "pP":
        return None
    try:
        value = float(name[1:])
    except ValueError:
        return None
    return value if 0 < value <= 100 else None


def export_series(key: SeriesKey, points: list[tuple[int, Datum]]) -> dict[str, Any]:
    info: MetricInfo | None = catalog.info(key.namespace, key.metric)
    kind = info.kind if info is not None else Kind.GAUGE
    out: dict[str, Any] = {
        "namespace": key.namespace, "metric": key.metric, "dimensions": key.dimensions,
        "unit": info.unit if info else "None", "kind": kind.value, "statistic": info.statistic if info else "Maximum",
        "aws": bool(info and info.aws), "t": [second for second, _ in points],
    }
    if kind is Kind.DISTRIBUTION:
        out["count"] = [d.count for _, d in points]
        out["sum"] = [_finite(d.total) for _, d in points]
        out["min"] = [_finite(d.low) for _, d in points]
        out["max"] = [_finite(d.high) for _, d in points]
        for p in EXPORT_PERCENTILES:
            out[percentile_name(p)] = [_finite(d.dist.percentile(p)) if d.dist else None for _, d in points]
    else:
        out["value"] = [_finite(d.total) for _, d in points]
    whole = merge_data([d for _, d in points])
    summary: dict[str, Any] = {"count": whole.count, "sum": _finite(whole.total), "min": _finite(whole.low),
                               "max": _finite(whole.high), "avg": _finite(statistic(whole, "Average"))}
    for p in EXPORT_PERCENTILES:
        summary[percentile_name(p)] = _finite(statistic(whole, percentile_name(p)))
    if kind is Kind.DISTRIBUTION and whole.dist is not None:
        summary["histogram"] = whole.dist.to_json()  # so that series can be merged later (thresholds, reports)
    out["summary"] = summary
    return out


def percentile_name(p: float) -> str:
    return f"p{p:g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
