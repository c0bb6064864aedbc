"""Pass/fail criteria of a scenario, in the style of k6's thresholds: a small pure parser
and evaluator.

    p99(Duration) < 200ms          the handlers' Duration, all functions, over the run
    p99(Latency{target=orders}) < 1s
    rate(Throttles) < 1%           Throttles / (Invocations + Throttles)
    count(DLQ) == 0                messages that reached a dead-letter queue
    max(IteratorAge) < 60s
    count(Throttles{FunctionName=slow, Reason=ReservedFunctionConcurrentInvocationLimitExceeded}) == 18

Grammar: `AGG(METRIC[{NAME=VALUE, ...}]) OP NUMBER[UNIT]` with AGG one of p50 … p99.9,
avg, min, max, count, sum, rate; OP one of < <= > >= == !=; UNIT ms, s, m (times, converted
to the metric's own unit), % (for rate). Metrics are the generator's own (`Latency`,
`Requests` ...; `client.NAME` explicitly), `DLQ`, and the timeline's (CloudWatch's names;
`NAMESPACE:NAME` picks a namespace): docs/load-testing.md, "Thresholds".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from emulator.telemetry.histogram import Distribution

AGGREGATES = ("avg", "min", "max", "count", "sum", "rate")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_METRIC_UNIT_SECONDS = {"Milliseconds": 0.001, "Seconds": 1.0, "Microseconds": 0.000001}

_PATTERN = re.compile(
    r"""^\s*(?P<agg>[A-Za-z][\w.]*)\s*\(\s*(?P<metric>[A-Za-z0-9][\w./:-]*)\s*(?:\{(?P<dims>[^}]*)\})?\s*\)
        \s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>ms|s|m|%)?\s*$""",
    re.VERBOSE,
)

# rate(X): X divided by what (the same dimensions). Emulator metrics first, then the client's.
RATE_DENOMINATORS: dict[str, tuple[str, ...]] = {
    "Throttles": ("Invocations", "Throttles"),
    "Errors": ("Invocations",),
    "ColdStarts": ("Invocations",),
    "AsyncEventsDropped": ("AsyncEventsReceived",),
    "FailedInvokeEventCount": ("InvokedEventCount",),
    "DroppedEventCount": ("PolledEventCount",),
    "4XXError": ("Count",), "5XXError": ("Count",), "4xx": ("Count",), "5xx": ("Count",),
    "AWS/ApiGateway:Throttles": ("AWS/ApiGateway:Count",),
    "client.Failed": ("client.Requests",),
    "client.Throttled": ("client.Requests",),
    "client.Errors": ("client.Requests",),
    "client.TimedOut": ("client.Requests",),
    "client.Dropped": ("client.Offered",),
}


class ThresholdError(ValueError):
    """A threshold that cannot be parsed or evaluated; the message says why."""


@dataclass(frozen=True)
class Threshold:
    text: str
    aggregate: str  # avg, min, max, count, sum, rate, or a percentile "p99"
    percentile: float | None
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    op: str
    value: float
    unit: str | None


class SeriesData(NamedTuple):
    """A metric over the run, as a threshold sees it."""

    kind: str  # "counter", "gauge" or "distribution"
    unit: str  # CloudWatch unit: Count, Milliseconds, Seconds, None ...
    values: tuple[float, ...]  # one per second (counters, gauges)
    dist: Distribution | None  # distributions: every sample of the run


class MetricLookup(Protocol):
    def series(self, metric: str, dimensions: Mapping[str, str]) -> SeriesData | None:
        """The named metric over the run (its series combined), or None if it has no data."""
        ...

    def known(self, metric: str) -> bool:
        """Whether the metric exists at all (no data is then a zero, not a mistake)."""
        ...


@dataclass(frozen=True)
class Outcome:
    threshold: Threshold
    ok: bool
    observed: float | None  # in the threshold's unit
    message: str


def parse(text: str) -> Threshold:
    match = _PATTERN.match(text)
    if match is None:
        raise ThresholdError(f"cannot read threshold {text!r}: expected AGG(METRIC{{dims}}) OP VALUE[unit], "
                             "e.g. 'p99(Duration) < 200ms'")
    aggregate = match["agg"].lower()
    percentile = None
    if aggregate not in AGGREGATES:
        percentile = _percentile(aggregate)
        if percentile is None:
            raise ThresholdError(f"{text!r}: unknown aggregate {match['agg']!r} (use {', '.join(AGGREGATES)} or p50 ... p99.9)")
    dimensions: list[tuple[str, str]] = []
    for part in (match["dims"] or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ThresholdError(f"{text!r}: dimension {part.strip()!r} is not NAME=VALUE")
        dimensions.append((name.strip(), value.strip().strip("'\"")))
    unit = match["unit"]
    if unit == "%" and aggregate != "rate":
        raise ThresholdError(f"{text!r}: '%' is for rate(...) only")
    value = float(match["value"])
    return Threshold(text.strip(), aggregate, percentile, match["metric"], tuple(sorted(dimensions)), match["op"], value, unit)


def _percentile(name: str) -> float | None:
    if not name.startswith("p"):
        return None
    try:
        value = float(name[1:])
    except ValueError:
        return None
    return value if 0 < value <= 100 else None


def evaluate(threshold: Threshold, data: MetricLookup) -> Outcome:
    try:
        observed, limit, shown = _observe(threshold, data)
    except ThresholdError as exc:
        return Outcome(threshold, False, None, str(exc))
    if observed is None:
        return Outcome(threshold, False, None, f"{threshold.text}: {threshold.metric} has no data in this run")
    ok = OPERATORS[threshold.op](observed, limit)
    verdict = "ok" if ok else "FAILED"
    return Outcome(threshold, ok, shown, f"{threshold.text}: {verdict} (observed {_format(shown, threshold.unit)})")


def _format(value: float, unit: str | None) -> str:
    if unit == "%":
        return f"{value:.3g}%"
    return f"{value:.6g}{unit or ''}"


def _observe(threshold: Threshold, data: MetricLookup) -> tuple[float | None, float, float]:
    """(observed value in the metric's unit, limit in the metric's unit, observed in the
    threshold's unit)."""
    dims = dict(threshold.dimensions)
    if threshold.aggregate == "rate":
        return _rate(threshold, data, dims)
    series = data.series(threshold.metric, dims)
    if series is None:
        if not data.known(threshold.metric):
            raise ThresholdError(f"{threshold.text}: unknown metric {threshold.metric!r}")
        if threshold.aggregate in ("count", "sum"):
            return 0.0, _limit(threshold, None), 0.0
        return None, 0.0, 0.0
    observed = _aggregate(threshold, series)
    if observed is None:
        return None, 0.0, 0.0
    factor = _unit_factor(threshold, series.unit)
    return observed, threshold.value * factor, observed / factor


def _limit(threshold: Threshold, unit: str | None) -> float:
    return threshold.value * (_unit_factor(threshold, unit) if unit else 1.0)


def _unit_factor(threshold: Threshold, metric_unit: str) -> float:
    """How many of the metric's units one of the threshold's units is."""
    if threshold.unit in _TIME_UNITS:
        per_second = _METRIC_UNIT_SECONDS.get(metric_unit)
        if per_second is None:
            raise ThresholdError(f"{threshold.text}: {threshold.metric} is not a time ({metric_unit}); drop the unit")
        return _TIME_UNITS[threshold.unit] / per_second
    return 1.0


def _aggregate(threshold: Threshold, series: SeriesData) -> float | None:
    agg = threshold.aggregate
    if threshold.percentile is not None:
        dist = series.dist if series.kind == "distribution" else _of(series.values)
        value = dist.percentile(threshold.percentile) if dist is not None else math.nan
        return None if math.isnan(value) else value
    if series.kind == "distribution":
        dist = series.dist
        if dist is None or not dist.count:
            return 0.0 if agg == "count" else None
        return {"avg": dist.mean, "min": dist.low, "max": dist.high, "count": float(dist.count), "sum": dist.total}[agg]
    values = series.values
    if agg in ("count", "sum"):
        if series.kind == "gauge":
            raise ThresholdError(f"{threshold.text}: {threshold.metric} is a level, not a count of events: use max() or avg()")
        return float(sum(values))
    if not values:
        return None
    return {"avg": sum(values) / len(values), "min": min(values), "max": max(values)}[agg]


def _of(values: tuple[float, ...]) -> Distribution:
    dist = Distribution()
    for value in values:
        dist.add(value)
    return dist


def _rate(threshold: Threshold, data: MetricLookup, dims: dict[str, str]) -> tuple[float | None, float, float]:
    metric = threshold.metric
    key = metric if metric in RATE_DENOMINATORS else f"client.{metric}"
    denominators = RATE_DENOMINATORS.get(key)
    if denominators is None:
        raise ThresholdError(f"{threshold.text}: rate() is defined for {', '.join(sorted(RATE_DENOMINATORS))}")
    numerator = _total(data, key if key.startswith("client.") else metric, dims)
    base_dims = {k: v for k, v in dims.items() if k != "Reason"}  # invocations have no Reason
    denominator = sum(_total(data, name, base_dims) for name in denominators)
    if denominator <= 0:
        return None, 0.0, 0.0
    fraction = numerator / denominator
    limit = threshold.value / 100.0 if threshold.unit == "%" else threshold.value
    return fraction, limit, fraction * 100.0 if threshold.unit == "%" else fraction


def _total(data: MetricLookup, metric: str, dims: Mapping[str, str]) -> float:
    series = data.series(metric, dims)
    if series is None:
        if not data.known(metric):
            raise ThresholdError(f"unknown metric {metric!r}")
        return 0.0
    if series.kind == "distribution":
        return float(series.dist.count) if series.dist is not None else 0.0
    return float(sum(series.values))


def evaluate_all(texts: list[str], data: MetricLookup) -> list[Outcome]:
    return [evaluate(parse(text), data) for text in texts]
