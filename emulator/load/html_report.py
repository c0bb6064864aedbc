"""report.html: one self-contained page of a run, readable offline (docs/report-html.md).

Everything is in the file: the charting library (uPlot) and the chart renderer inlined, the
figures embedded as JSON (`<script type="application/json" id="report-data">`), the tables
written out as HTML so they read without scripts. The figures are computed here, from
report.json, never in the browser: `figures(report)` is what the page draws and what the
tests check against the counts a scenario makes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from emulator.load.report import PERCENTILES, json_ready
from emulator.telemetry import catalog, panels
from emulator.web import UPLOT_VERSION, asset_text

SCHEMA = "lambda-emulator/report-html@1"


# -- the figures -------------------------------------------------------------------------------
def _emulator_figures(report: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]], Mapping[str, Any]]:
    """(the timeline, its series, the event source mappings' metrics) the report holds."""
    emulator = report.get("emulator") or {}
    timeline = emulator.get("timeline") or {}
    mappings = (emulator.get("metrics") or {}).get("event_source_mappings") or {}
    return timeline, list(timeline.get("series") or ()), mappings


def _resource_rows(series: list[Mapping[str, Any]], mappings: Mapping[str, Any]) -> dict[str, Any]:
    """The functions', mappings' and queues' tables (what the DLQ table also reads)."""
    return {"functions": function_rows(series), "mappings": mapping_rows(series, mappings), "queues": queue_rows(series)}


def figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """Every figure the page shows: the verdict, tables and chart panels."""
    timeline, series, mappings = _emulator_figures(report)
    run = report.get("run") or {}
    start, end = run.get("emulated_start"), run.get("emulated_end")
    chart_model = panels.build(timeline, start=start, end=None if end is None else end + 1, mappings=mappings) \
        if series else {"schema": panels.SCHEMA, "t": [], "groups": []}
    client = report.get("client")
    if client is not None:
        chart_model["groups"].insert(0, client_group(client))
    if report.get("tuning"):
        chart_model["groups"].append(tuning_group(report["tuning"]))
    return {
        "schema": SCHEMA,
        "verdict": report.get("verdict"),
        "thresholds": report.get("thresholds") or [],
        "run": run,
        "scenario": report.get("scenario"),
        "client": None if client is None else {"totals": client["totals"], "phases": client.get("phases") or []},
        **_resource_rows(series, mappings),
        "streams": stream_rows(series),
        "advice": report.get("advice"),
        "cost": report.get("cost"),
        "tuning": report.get("tuning"),
        "panels": chart_model,
    }


def _select(series: list[Mapping[str, Any]], metric: str, namespace: str = catalog.LAMBDA,
            **dims: str) -> list[Mapping[str, Any]]:
    """The series of `metric` whose dimensions are exactly `dims` (a value of "*": any)."""
    out = []
    for s in series:
        if s["metric"] != metric or s["namespace"] != namespace or set(s["dimensions"]) != set(dims):
            continue
        if all(v == "*" or s["dimensions"].get(k) == v for k, v in dims.items()):
            out.append(s)
    return out


def _sum(series: list[Mapping[str, Any]], metric: str, namespace: str = catalog.LAMBDA, **dims: str) -> float:
    return sum(s["summary"].get("sum") or 0 for s in _select(series, metric, namespace, **dims))


def _max(series: list[Mapping[str, Any]], metric: str, namespace: str = catalog.LAMBDA, **dims: str) -> float | None:
    values = [s["summary"].get("max") for s in _select(series, metric, namespace, **dims)]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _by(series: list[Mapping[str, Any]], metric: str, split: str, namespace: str = catalog.LAMBDA,
        **dims: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in _select(series, metric, namespace, **dims, **{split: "*"}):
        value = s["dimensions"][split]
        out[value] = out.get(value, 0) + (s["summary"].get("sum") or 0)
    return dict(sorted(out.items()))


def function_rows(series: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = sorted({s["dimensions"]["FunctionName"] for s in series if s["namespace"] == catalog.LAMBDA
                    and set(s["dimensions"]) <= {"FunctionName", "Reason"} and "FunctionName" in s["dimensions"]})
    rows = []
    for name in names:
        fn = {"FunctionName": name}
        durations = _select(series, "Duration", **fn)
        summary = durations[0]["summary"] if durations else {}
        received = _sum(series, "AsyncEventsReceived", **fn)
        ages = _select(series, "AsyncEventAge", **fn)
        attempts = ages[0]["summary"].get("count", 0) if ages else 0
        rows.append({
            "function": name,
            "invocations": _sum(series, "Invocations", **fn), "errors": _sum(series, "Errors", **fn),
            "cold_starts": _sum(series, "ColdStarts", **fn),
            "throttles": _sum(series, "Throttles", **fn),
            "throttles_by_reason": _by(series, "Throttles", "Reason", **fn),
            "peak_concurrency": _max(series, "ConcurrentExecutions", **fn),
            "concurrency_limit": _max(series, "ConcurrencyLimit", **fn),
            "duration_ms": {label: summary.get(stat) for stat, label in panels.PERCENTILE_LINES} | {"max": summary.get("max")},
            "async_received": received, "async_attempts": attempts,
            # An attempt is recorded each time a queued event starts to run (AsyncEventAge):
            # those beyond one per event received in the window are retries.
            "async_retries": max(0, attempts - received),
            "async_dropped": _sum(series, "AsyncEventsDropped", **fn),
            "async_dropped_by_reason": _by(series, "AsyncEventsDropped", "Reason", **fn),
            "dead_letter_deliveries": _sum(series, "DeadLetterDeliveries", **fn),
            "dead_letter_by_reason": _by(series, "DeadLetterDeliveries", "Reason", **fn),
            "dead_letter_errors": _sum(series, "DeadLetterErrors", **fn),
            "destination_failures": _sum(series, "DestinationDeliveryFailures", **fn),
        })
    return rows


def mapping_rows(series: list[Mapping[str, Any]], mappings: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    uuids = sorted({s["dimensions"]["EventSourceMappingUUID"] for s in series if "EventSourceMappingUUID" in s["dimensions"]})
    rows = []
    for uuid in uuids:
        m = {"EventSourceMappingUUID": uuid}
        info = mappings.get(uuid) or {}
        rows.append({
            "uuid": uuid, "source": panels.arn_name(info.get("EventSourceArn")), "function": panels.arn_name(info.get("FunctionArn")),
            **{key: _sum(series, metric, **m) for key, metric in (
                ("polled", "PolledEventCount"), ("invoked", "InvokedEventCount"), ("failed", "FailedInvokeEventCount"),
                ("deleted", "DeletedEventCount"), ("dropped", "DroppedEventCount"),
                ("on_failure", "OnFailureDestinationDeliveredEventCount"), ("filtered", "FilteredOutEventCount"))},
            "max_pollers": _max(series, "Pollers", **m), "max_batches": _max(series, "ConcurrentBatches", **m),
            "max_iterator_age_ms": _max(series, "IteratorAge", **m),
            "dead_letter_bound": _by(series, "DeadLetterBoundEventCount", "Cause", **m),
        })
    return rows


def queue_rows(series: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = sorted({s["dimensions"]["QueueName"] for s in series if "QueueName" in s["dimensions"]})
    rows = []
    for name in names:
        q = {"QueueName": name}
        rows.append({
            "queue": name,
            **{key: _sum(series, metric, catalog.SQS, **q) for key, metric in (
                ("sent", "NumberOfMessagesSent"), ("received", "NumberOfMessagesReceived"),
                ("deleted", "NumberOfMessagesDeleted"), ("moved_to_dlq", "NumberOfMessagesMovedToDLQ"))},
            "max_visible": _max(series, "ApproximateNumberOfMessagesVisible", catalog.SQS, **q),
            "max_not_visible": _max(series, "ApproximateNumberOfMessagesNotVisible", catalog.SQS, **q),
            "max_age_s": _max(series, "ApproximateAgeOfOldestMessage", catalog.SQS, **q),
        })
    return rows


def stream_rows(series: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = sorted({s["dimensions"]["StreamName"] for s in series if "StreamName" in s["dimensions"]})
    return [{"stream": name, "incoming_records": _sum(series, "IncomingRecords", catalog.KINESIS, StreamName=name),
             "max_iterator_age_ms": _max(series, "GetRecords.IteratorAgeMilliseconds", catalog.KINESIS, StreamName=name)}
            for name in names]


def client_group(client: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's side, per second of the run (its own time axis)."""
    rows = client["series"]

    def line(label: str, values: list[Any], counter: bool) -> dict[str, Any]:
        present = [v for v in values if v is not None]
        out: dict[str, Any] = {"label": label, "role": "value", "values": list(values),
                               "max": max(present) if present else None}
        if counter:
            out["total"] = sum(present)
        return out

    counts = [line(label, rows[key], True) for key, label in (
        ("offered", "offered"), ("sent", "sent"), ("ok", "ok"), ("throttled", "throttled"), ("errors", "errors"),
        ("dropped", "dropped at max in flight"))]
    latency = [line(name, rows[f"latency_{name}_ms"], False) for name, _ in PERCENTILES if f"latency_{name}_ms" in rows]
    latency.append(line("max", rows["latency_max_ms"], False))
    group_panels = [
        {"id": "client:load:offered", "title": "Offered load and answers (requests per second)", "unit": "Count",
         "kind": "bars", "lines": counts},
        {"id": "client:load:throttles", "title": "Throttles by reason, as the client saw them", "unit": "Count",
         "kind": "bars", "lines": [line(reason, values, True) for reason, values in rows["throttles_by_reason"].items()]},
        {"id": "client:load:latency", "title": "Latency from the intended send time", "unit": "Milliseconds",
         "kind": "line", "lines": latency},
    ]
    return {"group": "client", "subject": "load", "title": "The load offered (the generator's side)", "t": rows["t"],
            "panels": [p for p in group_panels if any(entry["max"] for entry in p["lines"])]}


def tuning_group(tuning: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda Power Tuning's stats: cost and duration against memory."""
    stats = sorted(tuning.get("stats") or (), key=lambda s: s.get("value") or 0)
    memory = [s.get("value") for s in stats]
    return {"group": "tuning", "subject": "power", "title": "Power tuning", "panels": [
        {"id": "tuning:power:duration", "title": "Average duration by memory", "unit": "Milliseconds", "kind": "line",
         "x": memory, "xLabel": "memory (MB)", "lines": [
             {"label": "averageDuration", "role": "value", "values": [s.get("averageDuration") for s in stats],
              "max": max((s.get("averageDuration") or 0 for s in stats), default=None)}]},
        {"id": "tuning:power:cost", "title": "Average cost by memory (USD)", "unit": "None", "kind": "line",
         "x": memory, "xLabel": "memory (MB)", "lines": [
             {"label": "averagePrice", "role": "value", "values": [s.get("averagePrice") for s in stats],
              "max": max((s.get("averagePrice") or 0 for s in stats), default=None)}]},
    ]}


# -- the page -----------------------------------------------------------------------------------
def render(report: Mapping[str, Any]) -> str:
    data = figures(report)
    title = f"Load report: {(report.get('scenario') or {}).get('name') or (report.get('run') or {}).get('target') or 'emulator'}"
    body = "\n".join(part for part in (
        _verdict(data), _offered(data), _functions(data), _dlq(data), _mappings(data), _queues(data), _streams(data),
        _advice(data), _cost(data), _tuning(data)) if part)
    return _PAGE.format(
        title=_e(title), uplot_css=asset_text("uPlot.min.css"), charts_css=asset_text("charts.css"),
        uplot_js=asset_text("uPlot.iife.min.js"), charts_js=asset_text("charts.js"), body=body,
        data=_embed(data), uplot_version=UPLOT_VERSION, generated=_time(None))


def _embed(data: Any) -> str:
    """JSON safe inside <script>: every "<" (only ever inside a string) as its \\u escape, so
    nothing can end the element or open a comment in it; no NaN."""
    return json.dumps(json_ready(data), allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            text = f"{int(value):,}"
        else:
            text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return text + unit


def _time(epoch: float | None) -> str:
    moment = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f'<th class="num">{_e(h)}</th>' if i >= numeric_from else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="facts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _verdict(data: Mapping[str, Any]) -> str:
    run = data["run"] or {}
    verdict = data["verdict"] or "no thresholds"
    css = {"pass": "pass", "fail": "fail"}.get(verdict, "")
    facts = [f'<p>Verdict: <span id="verdict" class="{css}">{_e(verdict.upper() if css else verdict)}</span>']
    target = run.get("target")
    if target:
        facts.append(f" · target {_e(target)}")
    if run.get("started_at"):
        facts.append(f" · from {_e(_time(run['started_at']))}")
    if run.get("duration_s") is not None:
        facts.append(f" · {_n(round(run['duration_s'], 1))} s")
    if run.get("endpoint"):
        facts.append(f" · emulator {_e(run['endpoint'])}")
    facts.append("</p>")
    rows = [[_e(t["expression"]), f'<span class="{"pass" if t["ok"] else "fail"}">{"pass" if t["ok"] else "FAIL"}</span>',
             _n(t.get("observed"))] for t in data["thresholds"]]
    table = _table(["threshold", "outcome", "observed"], rows) if rows else ""
    return f'<section id="verdict-section"><h2>Verdict</h2>{"".join(facts)}{table}</section>'


def _offered(data: Mapping[str, Any]) -> str:
    client = data.get("client")
    if client is None:
        return ""
    t = client["totals"]
    lat = t.get("latency_ms") or {}
    rows = [["whole run", _n(t.get("expected_requests")), _n(t["offered"]), _n(t["sent"]), _n(t["dropped"]), _n(t["ok"]),
             _n(t["throttled"]), _n(t["errors"]), *(_n(lat.get(name)) for name, _ in PERCENTILES)]]
    for phase in client["phases"]:
        pl = phase.get("latency_ms") or {}
        rows.append([_e(phase["name"]), _n(phase.get("expected_requests")), _n(phase["offered"]), _n(phase["sent"]),
                     _n(phase["dropped"]), _n(phase["ok"]), _n(phase["throttled"]), _n(phase["errors"]),
                     *(_n(pl.get(name)) for name, _ in PERCENTILES)])
    reasons = "".join(f"<li>{_e(r)}: {_n(v)}</li>" for r, v in t.get("throttles_by_reason", {}).items())
    errors = "".join(f"<li>{_e(k)}: {_n(v)}</li>" for k, v in t.get("errors_by_kind", {}).items())
    return ('<section id="offered"><h2>Load offered</h2>'
            + _table(["phase", "expected", "offered", "sent", "dropped", "ok", "throttled", "errors",
                      *(f"latency {name} (ms)" for name, _ in PERCENTILES)], rows)
            + (f"<p>Throttled, by reason:</p><ul>{reasons}</ul>" if reasons else "")
            + (f"<p>Errors, by kind:</p><ul>{errors}</ul>" if errors else "")
            + '<p class="note">Latency counts from when each request was due (open loop), so queueing shows.</p></section>')


def _functions(data: Mapping[str, Any]) -> str:
    rows = []
    for f in data["functions"]:
        reasons = "<br>".join(f"{_e(r)}: {_n(v)}" for r, v in f["throttles_by_reason"].items()) or "–"
        dropped = "<br>".join(f"{_e(r)}: {_n(v)}" for r, v in f["async_dropped_by_reason"].items() if v) or "–"
        d = f["duration_ms"]
        rows.append([_e(f["function"]), _n(f["invocations"]), _n(f["errors"]), _n(f["cold_starts"]), _n(f["throttles"]), reasons,
                     f'{_n(f["peak_concurrency"])} / {_n(f["concurrency_limit"])}',
                     *(_n(d.get(label)) for _, label in panels.PERCENTILE_LINES),
                     _n(f["async_received"]), _n(f["async_retries"]), _n(f["async_dropped"]), dropped,
                     _n(f["dead_letter_deliveries"])])
    if not rows:
        return ""
    return ('<section id="functions"><h2>Functions: what happened at each limit</h2>'
            + _table(["function", "invocations", "errors", "cold starts", "throttles", "throttles by reason",
                      "peak concurrency / limit", *(f"duration {label} (ms)" for _, label in panels.PERCENTILE_LINES),
                      "async received", "async retries", "async dropped", "async dropped by reason", "to DLQ"], rows)
            + '<p class="note">Async retries: attempts to run a queued event beyond one per event received in the window. '
              "Async dropped counts every event that ended without a successful run, also those then sent to a DLQ or "
              "on-failure destination (AWS's AsyncEventsDropped), by why: the on-failure record's condition "
              "(RetriesExhausted, EventAgeExceeded), EventAgeExceededWhileThrottled, ReservedConcurrencyZero, or the "
              "emulator's own drops (Reset, Shutdown, EmulatorError).</p></section>")


# Why a message or event reached a DLQ, as report.html's DLQ table names it (SQS: the
# mapping's DeadLetterBoundEventCount Cause; async: AsyncEventsDropped's Reason).
DLQ_QUEUE_CAUSES = (("Throttled", "throttled"), ("Failed", "function errors"),
                    ("VisibilityTimeoutExpired", "ran past the visibility timeout"), ("Other", "otherwise"))
DLQ_ASYNC_REASONS = (("RetriesExhausted", "retries exhausted"), ("EventAgeExceeded", "event age exceeded"),
                     ("EventAgeExceededWhileThrottled", "throttled until the event age ran out"),
                     ("ReservedConcurrencyZero", "reserved concurrency 0"))


def dlq_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every source with DLQ arrivals in the window: arrivals, and how many of them for each
    cause (`why`), and how many no cause accounts for (`unattributed`)."""
    rows = []
    by_source = {m["source"]: m for m in data["mappings"] if m["source"]}
    for q in data["queues"]:
        if q["moved_to_dlq"]:
            why = (by_source.get(q["queue"]) or {}).get("dead_letter_bound") or {}
            rows.append({"source": f"queue {q['queue']}", "arrivals": q["moved_to_dlq"], "why": why, "causes": DLQ_QUEUE_CAUSES,
                         "unattributed": max(0.0, q["moved_to_dlq"] - sum(why.values()))})
    for f in data["functions"]:
        if f["dead_letter_deliveries"]:
            why = f.get("dead_letter_by_reason") or {}
            rows.append({"source": f"function {f['function']} (async)", "arrivals": f["dead_letter_deliveries"], "why": why,
                         "causes": DLQ_ASYNC_REASONS, "unattributed": max(0.0, f["dead_letter_deliveries"] - sum(why.values()))})
    for row in rows:  # (label, count) of each cause with arrivals: the named ones in order, then any other
        named = {key for key, _ in row["causes"]}
        row["parts"] = ([(label, row["why"][key]) for key, label in row["causes"] if row["why"].get(key)]
                        + [(key, value) for key, value in row["why"].items() if key not in named and value])
    return rows


def dlq_lines(report: Mapping[str, Any]) -> list[str]:
    """The DLQ table as the terminal shows it at the end of a run (empty: nothing arrived)."""
    _, series, mappings = _emulator_figures(report)
    out = []
    for row in dlq_rows(_resource_rows(series, mappings)):
        parts = [f"{label} {value:g}" for label, value in row["parts"]]
        if row["unattributed"]:
            parts.append(f"not accounted for {row['unattributed']:g}")
        out.append(f"  {row['source']}: {row['arrivals']:g} arrived in its DLQ: " + ", ".join(parts))
    return ["dead-letter queues, arrivals and why:", *out] if out else []


def _dlq(data: Mapping[str, Any]) -> str:
    """DLQ arrivals and why: SQS redrives (with the mapping's causes), async dead letters (by reason)."""
    rows = []
    for row in dlq_rows(data):
        why = "<br>".join(f"{_e(label)}: {_n(value)}" for label, value in row["parts"])
        rows.append([_e(row["source"]), _n(row["arrivals"]), why or "–", _n(row["unattributed"])])
    if not rows:
        return '<section id="dlq"><h2>Dead-letter queues</h2><p>Nothing reached a dead-letter queue.</p></section>'
    return ('<section id="dlq"><h2>Dead-letter queues: arrivals and why</h2>'
            + _table(["source", "arrived in its DLQ", "why", "not accounted for"], rows)
            + '<p class="note">Queues: the messages the event source mapping received at the queue\'s maxReceiveCount '
              "and did not delete (the next receive moves them to the DLQ), by what happened to their batch: throttled "
              "(the batch never ran: valid messages, the overpull problem), function errors (a function error or partial "
              "batch failure), ran past the visibility timeout (another receive moved them while the batch still ran), "
              "otherwise (the function was gone, the mapping stopped, a delete failed). Async functions: the events "
              "delivered to the function's DLQ, by AsyncEventsDropped's Reason. \"Not accounted for\": moved without "
              "a cause the emulator saw in the window (another consumer, or a batch still held when the window "
              "ended).</p></section>")


def _mappings(data: Mapping[str, Any]) -> str:
    rows = [[_e(f"{m['source'] or '?'} → {m['function'] or '?'}") + f'<br><span class="note">{_e(m["uuid"])}</span>',
             _n(m["polled"]), _n(m["invoked"]), _n(m["failed"]), _n(m["deleted"]), _n(m["dropped"]),
             _n(m["max_pollers"]), _n(m["max_batches"]), _n(m["max_iterator_age_ms"])] for m in data["mappings"]]
    if not rows:
        return ""
    return ('<section id="mappings"><h2>Event source mappings: pollers and batches</h2>'
            + _table(["mapping", "polled", "invoked", "failed", "deleted", "dropped", "most pollers", "most batches",
                      "most iterator age (ms)"], rows) + "</section>")


def _queues(data: Mapping[str, Any]) -> str:
    rows = [[_e(q["queue"]), _n(q["sent"]), _n(q["received"]), _n(q["deleted"]), _n(q["moved_to_dlq"]), _n(q["max_visible"]),
             _n(q["max_not_visible"]), _n(q["max_age_s"])] for q in data["queues"]]
    if not rows:
        return ""
    return ('<section id="queues"><h2>Queues</h2>'
            + _table(["queue", "sent", "received", "deleted", "moved to DLQ", "most visible", "most in flight",
                      "oldest message (s)"], rows) + "</section>")


def _streams(data: Mapping[str, Any]) -> str:
    rows = [[_e(s["stream"]), _n(s["incoming_records"]), _n(s["max_iterator_age_ms"])] for s in data["streams"]]
    if not rows:
        return ""
    return '<section id="streams"><h2>Streams</h2>' + _table(["stream", "records put", "most iterator age (ms)"], rows) + "</section>"


def _advice(data: Mapping[str, Any]) -> str:
    advice = data.get("advice")
    if not advice:
        return ""
    items = []
    for a in advice:
        link = f' <a href="{_e(a["source_url"])}">(AWS)</a>' if a.get("source_url") else ""
        severity = a.get("severity") or "info"
        items.append(f'<li><span class="{"warning" if severity == "warning" else "note"}">{_e(severity)}</span> '
                     f'<b>{_e(a.get("subject") or "")}</b> {_e(a.get("message") or "")}{link}'
                     f' <span class="note">[{_e(a.get("rule") or "")}]</span></li>')
    return f'<section id="advice"><h2>Limits advisor</h2><ul>{"".join(items)}</ul></section>'


def _cost(data: Mapping[str, Any]) -> str:
    cost = data.get("cost")
    if not cost:
        return ""
    currency = cost.get("currency") or "USD"
    rows = [[_e(line.get("item")), _n(line.get("quantity")), _e(line.get("unit") or ""), _n(line.get("unit_price")),
             _n(line.get("cost"))] for line in cost.get("lines") or ()]
    table = _table(["item", "quantity", "unit", f"unit price ({currency})", f"cost ({currency})"], rows, numeric_from=1)
    prices = cost.get("price_table") or {}
    return (f'<section id="cost"><h2>Cost estimate</h2><p>Total {_n(cost.get("total"))} {_e(currency)} · '
            f'{_n(cost.get("per_million_requests"))} {_e(currency)} per million requests · Region {_e(cost.get("region") or "–")}</p>'
            + table + f'<p class="note">Prices of {_e(prices.get("date") or "?")} from {_e(prices.get("source") or "?")}.</p></section>')


def _tuning(data: Mapping[str, Any]) -> str:
    tuning = data.get("tuning")
    if not tuning:
        return ""
    rows = [[_n(s.get("value")), _n(s.get("averageDuration")), _n(s.get("averagePrice"))]
            for s in sorted(tuning.get("stats") or (), key=lambda s: s.get("value") or 0)]
    link = ((tuning.get("stateMachine") or {}).get("visualization")) or ""
    return (f'<section id="tuning"><h2>Power tuning</h2><p>Best: {_n(tuning.get("power"))} MB · cost {_n(tuning.get("cost"))} · '
            f'duration {_n(tuning.get("duration"))} ms'
            + (f' · <a href="{_e(link)}">visualisation</a>' if link else "") + "</p>"
            + _table(["memory (MB)", "average duration (ms)", "average price (USD)"], rows, numeric_from=0) + "</section>")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lambda-scale-emulator; charts: uPlot {uplot_version} (MIT licence)">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{uplot_css}</style>
<style>{charts_css}</style>
</head>
<body>
<header class="top"><h1>{title}</h1><span class="note">written {generated}; per second, CloudWatch's names (docs/timeline.md)</span></header>
<main>
{body}
<section id="charts-section"><h2>Over time</h2><p class="note">Drag on a chart to zoom, double-click to reset. The generator's side first, then the emulator's timeline: the account, each function, mapping, queue and stream.</p><div id="charts"></div></section>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>/* uPlot {uplot_version}, MIT licence, (c) Leon Sorokin: https://github.com/leeoniya/uPlot */
{uplot_js}</script>
<script>{charts_js}</script>
<script>
(function () {{
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const board = new EmulatorCharts.Board(document.getElementById("charts"));
  board.render(data.panels);
  window.emulatorReport = {{data: data, board: board}};
}})();
</script>
</body>
</html>
"""
