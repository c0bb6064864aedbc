"""The timeline's series grouped into charts: what the dashboard and report.html draw.

A pure function of a timeline export (docs/timeline.md, "Export"): the account first, then
one group of panels per function, event source mapping, queue, stream and API stage. Every
panel shares one time axis, each second of the window, and carries its lines aligned with
it: a count is 0 in a second without data (the timeline stores no empty second), a level
or a percentile is null (not sampled: a gap in the chart). The browser only draws what is
here, so a test can check every figure of a chart against the counts of a run by reading
this model (docs/dashboard.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.telemetry import catalog

SCHEMA = "lambda-emulator/panels@1"
PERCENTILE_LINES = (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p99.9", "p999"))
# Windows longer than this are drawn at coarser steps (a report of a day stays small).
MAX_POINTS = 3600


@dataclass(frozen=True)
class LineSpec:
    """One line: a metric (a statistic of it for distributions), or one line per value of
    `split` (Throttles by Reason, IteratorAge by ShardId ...)."""

    metric: str
    label: str
    stat: str = "value"  # "value", or a distribution's "p50" ... "p99.9", "max", "count"
    role: str = "value"  # "limit": drawn dashed, a ceiling to read the other lines against
    split: str | None = None
    namespace: str = catalog.LAMBDA


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    unit: str
    lines: tuple[LineSpec, ...]
    kind: str = "line"  # "line", or "bars" for counts per second


L = LineSpec
_DURATION = tuple(L("Duration", name, stat) for stat, name in PERCENTILE_LINES) + (L("Duration", "max", "max"),)

ACCOUNT_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("concurrency", "Concurrency against the account's limits", "Count", (
        L("ConcurrentExecutions", "ConcurrentExecutions"), L("ClaimedAccountConcurrency", "ClaimedAccountConcurrency"),
        L("UnreservedConcurrentExecutions", "UnreservedConcurrentExecutions"),
        L("AccountConcurrencyLimit", "AccountConcurrencyLimit", role="limit"),
        L("UnreservedConcurrencyLimit", "UnreservedConcurrencyLimit", role="limit"))),
    PanelSpec("throttles", "Throttles by reason", "Count", (L("Throttles", "{}", split="Reason"),), "bars"),
    PanelSpec("invocations", "Invocations, errors, cold starts", "Count", (
        L("Invocations", "Invocations"), L("Errors", "Errors"), L("ColdStarts", "ColdStarts")), "bars"),
    PanelSpec("duration", "Duration percentiles", "Milliseconds", _DURATION),
    PanelSpec("async", "Asynchronous events", "Count", (
        L("AsyncEventsReceived", "AsyncEventsReceived"), L("AsyncEventsDropped", "AsyncEventsDropped"),
        L("DeadLetterErrors", "DeadLetterErrors"), L("DestinationDeliveryFailures", "DestinationDeliveryFailures")), "bars"),
    PanelSpec("async-age", "Async event age", "Milliseconds", (
        L("AsyncEventAge", "p50", "p50"), L("AsyncEventAge", "p99", "p99"), L("AsyncEventAge", "max", "max"))),
)

FUNCTION_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("concurrency", "Concurrency against its limit", "Count", (
        L("ConcurrentExecutions", "ConcurrentExecutions"), L("ConcurrencyLimit", "ConcurrencyLimit", role="limit"))),
    PanelSpec("throttles", "Throttles by reason", "Count", (L("Throttles", "{}", split="Reason"),), "bars"),
    PanelSpec("invocations", "Invocations, errors, cold starts", "Count", (
        L("Invocations", "Invocations"), L("Errors", "Errors"), L("ColdStarts", "ColdStarts")), "bars"),
    PanelSpec("duration", "Duration percentiles", "Milliseconds", _DURATION),
    PanelSpec("init", "Init duration (cold starts)", "Milliseconds", (
        L("InitDuration", "p50", "p50"), L("InitDuration", "max", "max"))),
    PanelSpec("async", "Asynchronous events and dead letters", "Count", (
        L("AsyncEventsReceived", "AsyncEventsReceived"), L("AsyncEventsDropped", "AsyncEventsDropped"),
        L("DeadLetterDeliveries", "DeadLetterDeliveries"), L("DeadLetterErrors", "DeadLetterErrors"),
        L("OnFailureDestinationDeliveries", "OnFailureDestinationDeliveries"),
        L("DestinationDeliveryFailures", "DestinationDeliveryFailures")), "bars"),
    PanelSpec("async-dropped", "Async events dropped, by reason", "Count", (
        L("AsyncEventsDropped", "{}", split="Reason"),), "bars"),
    PanelSpec("async-age", "Async event age", "Milliseconds", (
        L("AsyncEventAge", "p50", "p50"), L("AsyncEventAge", "p99", "p99"), L("AsyncEventAge", "max", "max"))),
    PanelSpec("provisioned", "Provisioned concurrency utilisation", "None", (
        L("ProvisionedConcurrencyUtilization", "ProvisionedConcurrencyUtilization"),)),
    PanelSpec("iterator-age", "Iterator age", "Milliseconds", (L("IteratorAge", "IteratorAge"),)),
)

MAPPING_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("pollers", "Pollers and batches in flight", "Count", (
        L("Pollers", "Pollers"), L("ConcurrentBatches", "ConcurrentBatches"))),
    PanelSpec("events", "Events", "Count", tuple(L(m, m) for m in (
        "PolledEventCount", "InvokedEventCount", "FailedInvokeEventCount", "DeletedEventCount", "DroppedEventCount",
        "OnFailureDestinationDeliveredEventCount", "FilteredOutEventCount")), "bars"),
    PanelSpec("dlq-bound", "Messages bound for the DLQ, by why", "Count", (
        L("DeadLetterBoundEventCount", "{}", split="Cause"),), "bars"),
    PanelSpec("iterator-age", "Iterator age", "Milliseconds", (
        L("IteratorAge", "IteratorAge"), L("IteratorAge", "shard {}", split="ShardId"))),
)

QUEUE_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("depth", "Queue depth", "Count", tuple(L(m, m.removeprefix("ApproximateNumberOf"), namespace=catalog.SQS) for m in (
        "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"))),
    PanelSpec("messages", "Messages sent, received, deleted, moved to the DLQ", "Count", tuple(
        L(m, m.removeprefix("NumberOf"), namespace=catalog.SQS) for m in (
            "NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted", "NumberOfMessagesMovedToDLQ")),
        "bars"),
    PanelSpec("receive-count", "Messages by receive count", "Count", (
        L("ApproximateNumberOfMessagesByReceiveCount", "received {}", split="ReceiveCount", namespace=catalog.SQS),)),
    PanelSpec("age", "Age of the oldest message", "Seconds", (
        L("ApproximateAgeOfOldestMessage", "ApproximateAgeOfOldestMessage", namespace=catalog.SQS),)),
)

STREAM_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("incoming", "Incoming records", "Count", (L("IncomingRecords", "IncomingRecords", namespace=catalog.KINESIS),), "bars"),
    PanelSpec("iterator-age", "Iterator age by shard", "Milliseconds", (
        L("GetRecords.IteratorAgeMilliseconds", "GetRecords.IteratorAgeMilliseconds", namespace=catalog.KINESIS),
        L("IteratorAgeMilliseconds", "shard {}", split="ShardId", namespace=catalog.KINESIS))),
)

API_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("requests", "Requests and errors", "Count", tuple(L(m, m, namespace=catalog.API_GATEWAY) for m in (
        "Count", "4XXError", "5XXError", "4xx", "5xx")) + (L("Throttles", "throttled: {}", split="Layer", namespace=catalog.API_GATEWAY),),
        "bars"),
    PanelSpec("latency", "Latency (each second's mean)", "Milliseconds", (
        L("Latency", "Latency", namespace=catalog.API_GATEWAY), L("IntegrationLatency", "IntegrationLatency", namespace=catalog.API_GATEWAY))),
)

# Which dimensions name a group's subject; a series belongs to the group whose subject
# dimensions it has (its other dimensions are the panel's splits).
GROUPS: tuple[tuple[str, tuple[str, ...], tuple[PanelSpec, ...]], ...] = (
    ("function", ("FunctionName",), FUNCTION_PANELS),
    ("mapping", ("EventSourceMappingUUID",), MAPPING_PANELS),
    ("queue", ("QueueName",), QUEUE_PANELS),
    ("stream", ("StreamName",), STREAM_PANELS),
    ("api", ("ApiName", "Stage"), API_PANELS),
    ("api", ("ApiId", "Stage"), API_PANELS),
)
_SUBJECT_DIMS = {"FunctionName", "EventSourceMappingUUID", "QueueName", "StreamName", "ApiName", "ApiId", "Stage"}


def build(export: Mapping[str, Any], *, start: int | None = None, end: int | None = None,
          mappings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Panels of every series in `export` over [start, end) (by default the export's own
    window). `mappings` (UUID -> {"FunctionArn", "EventSourceArn"}, as /_emulator/metrics
    gives them) names the mapping groups."""
    series = list(export.get("series") or ())
    start = export.get("start") if start is None else start
    end = export.get("end") if end is None else end
    if start is None or end is None or end <= start:
        return {"schema": SCHEMA, "start": start, "end": end, "step": 1, "t": [], "groups": []}
    step = max(1, math.ceil((end - start) / MAX_POINTS))
    axis = Axis(int(start), int(end), step)
    index = _index(series)
    groups = [_group("account", "account", "Account", ACCOUNT_PANELS, index.get(("account", ()), {}), axis, series)]
    for (group, subject), members in sorted(index.items(), key=lambda item: _group_order(item[0])):
        if group == "account":
            continue
        specs = next(p for g, dims, p in GROUPS if g == group and len(dims) == len(subject))
        groups.append(_group(group, _subject_id(subject), _title(group, subject, mappings), specs, members, axis, series))
    return {"schema": SCHEMA, "start": axis.start, "end": axis.end, "step": step, "t": axis.seconds(),
            "groups": [g for g in groups if g["panels"]]}


class Axis:
    """The seconds of the window, in steps of `step` seconds."""

    def __init__(self, start: int, end: int, step: int) -> None:
        self.start, self.end, self.step = start, end, step
        self.size = math.ceil((end - start) / step)

    def seconds(self) -> list[int]:
        return [self.start + i * self.step for i in range(self.size)]

    def slot(self, second: int) -> int | None:
        if second < self.start or second >= self.end:
            return None
        return (second - self.start) // self.step


SeriesIndex = dict[tuple[str, tuple[str, ...]], dict[tuple[str, str], list[Mapping[str, Any]]]]


def _index(series: Iterable[Mapping[str, Any]]) -> SeriesIndex:
    """(group, subject) -> (namespace, metric) -> its series (several when split)."""
    index: SeriesIndex = {}
    for s in series:
        dims = s["dimensions"]
        found = ("account", ())
        for group, names, _ in GROUPS:
            if all(n in dims for n in names):
                found = (group, tuple(dims[n] for n in names))
                break
        else:
            if dims:  # a dimension set no panel knows (a metric added later): left out
                continue
        index.setdefault(found, {}).setdefault((s["namespace"], s["metric"]), []).append(s)
    return index


def _group_order(key: tuple[str, tuple[str, ...]]) -> tuple[int, tuple[str, ...]]:
    order = ("account", "function", "mapping", "queue", "stream", "api")
    return order.index(key[0]), key[1]


def _subject_id(subject: tuple[str, ...]) -> str:
    return "/".join(subject)


def _title(group: str, subject: tuple[str, ...], mappings: Mapping[str, Mapping[str, Any]] | None) -> str:
    if group == "mapping":
        info = (mappings or {}).get(subject[0]) or {}
        source, function = arn_name(info.get("EventSourceArn")), arn_name(info.get("FunctionArn"))
        if source and function:
            return f"Mapping {source} → {function} ({subject[0][:8]})"
        return f"Mapping {subject[0]}"
    names = {"function": "Function", "queue": "Queue", "stream": "Stream", "api": "API"}
    return f"{names[group]} {' '.join(subject)}"


def arn_name(arn: Any) -> str:
    """The resource's name at the end of an ARN: a function (without qualifier), queue or stream."""
    if not isinstance(arn, str) or not arn:
        return ""
    if ":function:" in arn:
        return arn.split(":function:", 1)[1].split(":", 1)[0]
    tail = arn.rsplit(":", 1)[-1]
    return tail.split("/", 2)[1] if tail.startswith("stream/") or tail.startswith("table/") else tail


def _group(group: str, subject: str, title: str, specs: tuple[PanelSpec, ...],
           members: Mapping[tuple[str, str], list[Mapping[str, Any]]], axis: Axis,
           every_series: list[Mapping[str, Any]]) -> dict[str, Any]:
    panels = []
    for spec in specs:
        lines = []
        for line in spec.lines:
            candidates = members.get((line.namespace, line.metric), [])
            if group == "account" and line.split == "Reason":
                # The account's throttles by reason: the functions' Reason series, added up.
                candidates = [s for s in every_series if s["metric"] == "Throttles" and s["namespace"] == catalog.LAMBDA
                              and set(s["dimensions"]) == {"FunctionName", "Reason"}]
                lines.extend(_split_lines(line, candidates, axis, "Reason"))
                continue
            if line.split is not None:
                lines.extend(_split_lines(line, [s for s in candidates if line.split in s["dimensions"]], axis, line.split))
                continue
            exact = [s for s in candidates if not set(s["dimensions"]) - _SUBJECT_DIMS]
            if exact:
                lines.append(_line(line, line.label, exact, axis))
        if any(line["role"] != "limit" and line["has_data"] for line in lines):
            for line in lines:
                del line["has_data"]
            panels.append({"id": f"{group}:{subject}:{spec.key}", "title": spec.title, "unit": spec.unit,
                           "kind": spec.kind, "lines": lines})
    return {"group": group, "subject": subject, "title": title, "panels": panels}


def _split_lines(line: LineSpec, candidates: list[Mapping[str, Any]], axis: Axis, dim: str) -> list[dict[str, Any]]:
    by_value: dict[str, list[Mapping[str, Any]]] = {}
    for s in candidates:
        by_value.setdefault(s["dimensions"][dim], []).append(s)
    lines = [_line(line, line.label.format(value), members, axis) for value, members in sorted(by_value.items(), key=_natural)]
    # A split value that stayed 0 throughout (receive count 7 of an idle queue) draws nothing.
    return [entry for entry in lines if entry["max"]]


def _natural(item: tuple[str, Any]) -> tuple[int, str]:
    """ReceiveCount 0, 1 ... 9, 10+ in numeric order; other values by name."""
    value = item[0]
    digits = value.rstrip("+")
    return (int(digits), value) if digits.isdigit() else (1 << 30, value)


def _line(spec: LineSpec, label: str, members: list[Mapping[str, Any]], axis: Axis) -> dict[str, Any]:
    """One line over the axis: counts add up (within a step and over `members`), levels and
    percentiles take the largest sample of the step."""
    counter = members[0]["kind"] == "counter" or spec.stat == "count"
    values: list[float | None] = [0.0 if counter else None] * axis.size
    total = 0.0
    peak: float | None = None
    for s in members:
        column = s.get("value") if spec.stat == "value" else s.get(spec.stat)
        if column is None:
            continue
        for second, value in zip(s["t"], column):
            slot = axis.slot(second)
            if slot is None or value is None:
                continue
            if counter:
                values[slot] = (values[slot] or 0.0) + value
                total += value
            else:
                current = values[slot]
                values[slot] = value if current is None else max(current, value)
            peak = value if peak is None else max(peak, value)
    out: dict[str, Any] = {"label": label, "role": spec.role, "metric": spec.metric, "stat": spec.stat,
                           "values": values, "has_data": peak is not None and (peak != 0 or not counter)}
    if counter:
        out["total"] = total
    out["max"] = peak
    return out
