"""What a run showed, read from the timeline's export (docs/timeline.md, "Export"; also
report.json's `emulator.timeline`): the figures the advisor and the cost estimate need,
per function, queue, stream and API. Pure: a dict in, plain values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LAMBDA, SQS, KINESIS, API_GATEWAY = "AWS/Lambda", "AWS/SQS", "AWS/Kinesis", "AWS/ApiGateway"


@dataclass
class FunctionObserved:
    invocations: int = 0
    duration_count: int = 0
    duration_sum_ms: float = 0.0
    peak_concurrency: float = 0.0
    throttles: int = 0
    throttles_by_reason: dict[str, int] = field(default_factory=dict)
    async_age_max_ms: float | None = None
    busiest_second: int = 0  # invocations + throttles in the busiest second

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_sum_ms / self.duration_count if self.duration_count else None

    @property
    def billed_ms_estimate(self) -> float:
        """Lambda bills each invocation's duration rounded up to the next millisecond
        (https://aws.amazon.com/lambda/pricing/): the timeline keeps the exact sum, and the
        rounding adds half a millisecond per invocation on average (at least 1 ms each)."""
        return max(float(self.duration_count), self.duration_sum_ms + 0.5 * self.duration_count)


@dataclass
class StreamObserved:
    records: int = 0
    bytes: int = 0
    peak_records_per_s: float = 0.0
    peak_bytes_per_s: float = 0.0


@dataclass
class QueueObserved:
    sent: int = 0
    received: int = 0
    deleted: int = 0
    moved_to_dlq: int = 0


@dataclass
class ApiObserved:
    kind: str  # REST (dimension ApiName) or HTTP (ApiId)
    requests: int = 0
    throttles_by_layer: dict[str, int] = field(default_factory=dict)
    errors_5xx: int = 0


@dataclass
class Observed:
    seconds: float  # the window the figures cover (emulated seconds)
    functions: dict[str, FunctionObserved] = field(default_factory=dict)
    streams: dict[str, StreamObserved] = field(default_factory=dict)
    queues: dict[str, QueueObserved] = field(default_factory=dict)
    apis: dict[str, ApiObserved] = field(default_factory=dict)
    unreserved_peak: float = 0.0
    unreserved_limit: float | None = None
    account_throttles_by_reason: dict[str, int] = field(default_factory=dict)


def _values(series: Mapping[str, Any]) -> list[float]:
    return [float(v) for v in series.get("value") or () if v is not None]


def from_timeline(export: Mapping[str, Any], seconds: float | None = None) -> Observed:
    """`seconds`: the length of the run; by default the export's window (end - start)."""
    if seconds is None:
        seconds = float(max(1, (export.get("end") or 0) - (export.get("start") or 0)))
    seen = Observed(seconds=seconds)
    per_second: dict[str, dict[int, float]] = {}
    for series in export.get("series") or ():
        _take(seen, series, per_second)
    for name, by_t in per_second.items():
        seen.functions.setdefault(name, FunctionObserved()).busiest_second = int(max(by_t.values(), default=0))
    return seen


def _take(seen: Observed, series: Mapping[str, Any], per_second: dict[str, dict[int, float]]) -> None:
    namespace, metric, dims = series["namespace"], series["metric"], series.get("dimensions") or {}
    values = _values(series)
    if namespace == LAMBDA and set(dims) == {"FunctionName"}:
        fn = seen.functions.setdefault(dims["FunctionName"], FunctionObserved())
        if metric == "Invocations":
            fn.invocations += int(sum(values))
        elif metric == "Throttles":
            fn.throttles += int(sum(values))
        elif metric == "ConcurrentExecutions":
            fn.peak_concurrency = max([fn.peak_concurrency, *values])
        elif metric == "Duration":
            summary = series.get("summary") or {}
            fn.duration_count += int(summary.get("count") or 0)
            fn.duration_sum_ms += float(summary.get("sum") or 0.0)
        elif metric == "AsyncEventAge":
            high = (series.get("summary") or {}).get("max")
            if high is not None:
                fn.async_age_max_ms = max(fn.async_age_max_ms or 0.0, float(high))
        if metric in ("Invocations", "Throttles"):
            by_t = per_second.setdefault(dims["FunctionName"], {})
            for t, v in zip(series.get("t") or (), series.get("value") or ()):
                by_t[t] = by_t.get(t, 0.0) + float(v or 0)
    elif namespace == LAMBDA and metric == "Throttles" and set(dims) == {"FunctionName", "Reason"}:
        fn = seen.functions.setdefault(dims["FunctionName"], FunctionObserved())
        fn.throttles_by_reason[dims["Reason"]] = fn.throttles_by_reason.get(dims["Reason"], 0) + int(sum(values))
        reasons = seen.account_throttles_by_reason
        reasons[dims["Reason"]] = reasons.get(dims["Reason"], 0) + int(sum(values))
    elif namespace == LAMBDA and not dims and metric == "UnreservedConcurrentExecutions":
        seen.unreserved_peak = max([seen.unreserved_peak, *values])
    elif namespace == LAMBDA and not dims and metric == "UnreservedConcurrencyLimit" and values:
        seen.unreserved_limit = min(values)
    elif namespace == KINESIS and set(dims) == {"StreamName"} and metric in ("IncomingRecords", "IncomingBytes"):
        stream = seen.streams.setdefault(dims["StreamName"], StreamObserved())
        if metric == "IncomingRecords":
            stream.records += int(sum(values))
            stream.peak_records_per_s = max([stream.peak_records_per_s, *values])
        else:
            stream.bytes += int(sum(values))
            stream.peak_bytes_per_s = max([stream.peak_bytes_per_s, *values])
    elif namespace == SQS and set(dims) == {"QueueName"}:
        queue = seen.queues.setdefault(dims["QueueName"], QueueObserved())
        field_name = {"NumberOfMessagesSent": "sent", "NumberOfMessagesReceived": "received",
                      "NumberOfMessagesDeleted": "deleted", "NumberOfMessagesMovedToDLQ": "moved_to_dlq"}.get(metric)
        if field_name:
            setattr(queue, field_name, getattr(queue, field_name) + int(sum(values)))
    elif namespace == API_GATEWAY and "Stage" in dims and ("ApiName" in dims or "ApiId" in dims):
        kind = "REST" if "ApiName" in dims else "HTTP"
        api = seen.apis.setdefault(dims.get("ApiName") or dims["ApiId"], ApiObserved(kind))
        if metric == "Count" and set(dims) <= {"ApiName", "ApiId", "Stage"}:
            api.requests += int(sum(values))
        elif metric in ("5XXError", "5xx") and set(dims) <= {"ApiName", "ApiId", "Stage"}:
            api.errors_5xx += int(sum(values))
        elif metric == "Throttles" and "Layer" in dims:
            api.throttles_by_layer[dims["Layer"]] = api.throttles_by_layer.get(dims["Layer"], 0) + int(sum(values))


def merge_names(*groups: Iterable[str]) -> list[str]:
    return sorted({name for group in groups for name in group})
