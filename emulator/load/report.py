"""report.json, the per-series CSV files, and the thresholds' view of a run.

report.json holds the scenario as it ran, the generator's figures per second and in total
(per phase too), the emulator's timeline over the run (every series per second, with its
summary) and its final counters, and the thresholds' outcomes. Its schema is in
docs/report-json.md; everything a report or a dashboard needs is in it, so it can be read
without the emulator. The CSV files carry the same series, one file per series.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.load.scenario import Scenario
from emulator.load.series import ClientSeries, SecondStats
from emulator.load.thresholds import MetricLookup, Outcome, SeriesData
from emulator.telemetry import catalog
from emulator.telemetry.histogram import Distribution

SCHEMA = "lambda-emulator/load-report@1"
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
# The generator's own metrics, as thresholds name them (also as client.NAME). Unqualified,
# these names are the generator's, except Errors: that is the functions' (client.Errors is ours).
CLIENT_METRICS = ("Latency", "SendLag", "Offered", "Requests", "Dropped", "Responses", "OK", "Failed", "Throttled",
                  "Errors", "TimedOut")
CLIENT_FIRST = frozenset(CLIENT_METRICS) - {"Errors"}
# An unqualified name found in several namespaces means the first of these.
NAMESPACE_ORDER = (catalog.LAMBDA, catalog.SQS, catalog.KINESIS, catalog.API_GATEWAY, catalog.SNS)


def distribution_summary(dist: Distribution) -> dict[str, Any]:
    out: dict[str, Any] = {"count": dist.count}
    if dist.count:
        out.update(min=dist.low, max=dist.high, avg=dist.mean)
        out.update({name: dist.percentile(p) for name, p in PERCENTILES})
    return out


def stats_summary(stats: SecondStats) -> dict[str, Any]:
    return {
        "offered": stats.offered, "sent": stats.sent, "dropped": stats.dropped, "responses": stats.responses,
        "ok": stats.ok, "throttled": sum(stats.throttles.values()), "errors": sum(stats.errors.values()),
        "throttles_by_reason": dict(sorted(stats.throttles.items())), "errors_by_kind": dict(sorted(stats.errors.items())),
        "latency_ms": distribution_summary(stats.latency), "send_lag_ms": distribution_summary(stats.lag),
    }


def client_section(series: ClientSeries, started_at: float, scenario: Scenario) -> dict[str, Any]:
    seconds = sorted(series.seconds)
    totals = series.totals()
    reasons = sorted({r for s in series.seconds.values() for r in s.throttles})
    kinds = sorted({k for s in series.seconds.values() for k in s.errors})
    rows: dict[str, list[Any]] = {name: [] for name in (
        "second", "t", "offered", "sent", "dropped", "responses", "ok", "throttled", "errors",
        "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms", "latency_p999_ms", "latency_max_ms",
        "send_lag_p99_ms")}
    by_reason: dict[str, list[int]] = {r: [] for r in reasons}
    by_kind: dict[str, list[int]] = {k: [] for k in kinds}
    for second in seconds:
        s = series.seconds[second]
        rows["second"].append(second)
        rows["t"].append(int(started_at) + second)
        for name in ("offered", "sent", "dropped", "responses", "ok"):
            rows[name].append(getattr(s, name))
        rows["throttled"].append(sum(s.throttles.values()))
        rows["errors"].append(sum(s.errors.values()))
        for name, p in PERCENTILES:
            rows[f"latency_{name}_ms"].append(_num(s.latency.percentile(p)))
        rows["latency_max_ms"].append(_num(s.latency.high) if s.latency.count else None)
        rows["send_lag_p99_ms"].append(_num(s.lag.percentile(99)))
        for reason in reasons:
            by_reason[reason].append(s.throttles.get(reason, 0))
        for kind in kinds:
            by_kind[kind].append(s.errors.get(kind, 0))
    schedule = scenario.schedule
    phases = []
    for index, phase in enumerate(scenario.phases):
        start = schedule.phase_starts[index]
        window = series.window(range(int(math.floor(start)), int(math.ceil(start + phase.duration))))
        phases.append({"name": phase.name, "kind": phase.kind, "start_s": start, "end_s": start + phase.duration,
                       "expected_requests": schedule.expected(index) if scenario.arrivals == "uniform" else None,
                       **stats_summary(window)})
    return {
        "totals": {**stats_summary(totals), "expected_requests": schedule.expected() if scenario.arrivals == "uniform" else None},
        "latency_histogram": totals.latency.to_json(),
        "phases": phases,
        "series": {**rows, "throttles_by_reason": by_reason, "errors_by_kind": by_kind},
    }


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def build_report(scenario: Scenario, series: ClientSeries, *, started_at: float, ended_at: float, endpoint: str | None,
                 emulator_started: bool, timeline: Mapping[str, Any] | None, emulated: tuple[int | None, int | None],
                 final_metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "scenario": scenario.describe(),
        "run": {"started_at": started_at, "ended_at": ended_at, "duration_s": ended_at - started_at,
                "endpoint": endpoint, "emulator_started": emulator_started, "workers": scenario.workers,
                "target": scenario.target.get("label") or _target_label(scenario.target),
                "emulated_start": emulated[0], "emulated_end": emulated[1]},
        "client": client_section(series, started_at, scenario),
        "emulator": None if timeline is None else {"timeline": dict(timeline), "metrics": final_metrics},
        "thresholds": [],
        "verdict": "no thresholds",
    }


def _target_label(target: Mapping[str, Any]) -> str:
    for kind in ("function", "queue", "stream", "topic", "url"):
        if target.get(kind):
            return f"{kind} {target[kind]}"
    return "?"


def add_outcomes(report: dict[str, Any], outcomes: list[Outcome]) -> None:
    report["thresholds"] = [{"expression": o.threshold.text, "ok": o.ok, "observed": o.observed, "message": o.message}
                            for o in outcomes]
    report["verdict"] = "no thresholds" if not outcomes else ("pass" if all(o.ok for o in outcomes) else "fail")


# -- files --------------------------------------------------------------------------------------
def write_csvs(report: Mapping[str, Any], folder: Path) -> list[Path]:
    """client.csv, and series/<namespace>_<metric>[_dims].csv for every timeline series."""
    written = []
    if report.get("client") is not None:
        written.append(_client_csv(report["client"]["series"], folder / "client.csv"))
    emulator = report.get("emulator")
    if emulator and emulator.get("timeline"):
        series_dir = folder / "series"
        series_dir.mkdir(exist_ok=True)
        for series in emulator["timeline"]["series"]:
            name = "_".join([series["namespace"].replace("/", "-"), series["metric"],
                             *(f"{k}-{v}" for k, v in series["dimensions"].items())])
            path = series_dir / (re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:200] + ".csv")
            columns = [c for c in series if isinstance(series[c], list)]
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                for i in range(len(series["t"])):
                    writer.writerow([series[c][i] for c in columns])
            written.append(path)
    return written


def _client_csv(client: Mapping[str, Any], path: Path) -> Path:
    columns = [c for c in client if c not in ("throttles_by_reason", "errors_by_kind")]
    extra = [(f"throttled:{r}", v) for r, v in client["throttles_by_reason"].items()] + \
            [(f"error:{k}", v) for k, v in client["errors_by_kind"].items()]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns + [name for name, _ in extra])
        for i in range(len(client["second"])):
            writer.writerow([client[c][i] for c in columns] + [values[i] for _, values in extra])
    return path


# -- what thresholds see ---------------------------------------------------------------------------
class ReportMetrics(MetricLookup):
    """A report's client figures and emulator timeline as `MetricLookup` (emulator/load/thresholds.py)."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = report
        emulator = report.get("emulator") or {}
        self.series_list: list[Mapping[str, Any]] = list(((emulator.get("timeline") or {}).get("series")) or [])

    def known(self, metric: str) -> bool:
        name = metric[len("client."):] if metric.startswith("client.") else metric
        namespace, _, bare = metric.rpartition(":")
        return (name in CLIENT_METRICS or metric == "DLQ"
                or any(m.name == bare and (not namespace or m.namespace == namespace) for m in catalog.ALL_METRICS)
                or any(s["metric"] == bare for s in self.series_list))

    def series(self, metric: str, dimensions: Mapping[str, str]) -> SeriesData | None:
        """client.NAME: the generator's; NAMESPACE:NAME (AWS/ApiGateway:Latency): that
        namespace's; DLQ; a name of the generator's (Latency, Requests ...); else the timeline's."""
        if metric.startswith("client."):
            return self._client(metric[len("client."):], dimensions)
        if metric == "DLQ":
            return self._dlq()
        if metric in CLIENT_FIRST:
            return self._client(metric, dimensions)
        namespace, _, bare = metric.rpartition(":")
        return self._timeline(bare, dimensions, namespace or None)

    # -- the generator's figures ---------------------------------------------------------------
    def _client(self, metric: str, dims: Mapping[str, str]) -> SeriesData | None:
        client = self.report.get("client")
        if client is None:  # `emulator report`: the emulator's timeline only
            return None
        rows = client["series"]
        if metric == "Latency":
            return SeriesData("distribution", "Milliseconds", (), Distribution.from_json(client["latency_histogram"]))
        if metric == "SendLag":
            return None  # per-second percentiles only: use max() on client.csv figures instead
        columns = {"Offered": "offered", "Requests": "sent", "Dropped": "dropped", "Responses": "responses", "OK": "ok",
                   "Throttled": "throttled", "Errors": "errors"}
        if metric == "Throttled" and "Reason" in dims:
            values = rows["throttles_by_reason"].get(dims["Reason"], [])
        elif metric == "TimedOut":
            values = rows["errors_by_kind"].get("Timeout", [])
        elif metric == "Failed":
            values = [a + b for a, b in zip(rows["throttled"], rows["errors"])]
        elif metric in columns:
            values = rows[columns[metric]]
        else:
            return None
        return SeriesData("counter", "Count", tuple(float(v) for v in values), None)

    # -- the emulator's timeline ---------------------------------------------------------------
    def _timeline(self, metric: str, dims: Mapping[str, str], namespace: str | None = None) -> SeriesData | None:
        matching = [s for s in self.series_list if s["metric"] == metric and (namespace is None or s["namespace"] == namespace)
                    and all(s["dimensions"].get(k) == v for k, v in dims.items())]
        if not matching:
            return None
        namespaces = {s["namespace"] for s in matching}
        if len(namespaces) > 1:  # e.g. Throttles of AWS/Lambda and of AWS/ApiGateway: Lambda's
            first = min(namespaces, key=lambda n: NAMESPACE_ORDER.index(n) if n in NAMESPACE_ORDER else len(NAMESPACE_ORDER))
            matching = [s for s in matching if s["namespace"] == first]
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for s in matching:
            groups.setdefault(tuple(sorted(s["dimensions"])), []).append(s)
        # The least detailed series that match (the account's, else per function ...), so
        # nothing is counted twice; groups as detailed name different things (a REST API's
        # stages, an HTTP API's) and add up.
        fewest = min(len(names) for names in groups)
        chosen = [s for names, group in sorted(groups.items()) if len(names) == fewest for s in group]
        kind = chosen[0]["kind"]
        unit = chosen[0]["unit"]
        if kind == "distribution":
            dist = Distribution()
            for s in chosen:
                dist.merge(Distribution.from_json(s["summary"].get("histogram") or {}))
            return SeriesData(kind, unit, (), dist)
        by_second: dict[int, float] = {}
        for s in chosen:
            for t, value in zip(s["t"], s["value"]):
                if value is None:
                    continue
                by_second[t] = by_second.get(t, 0.0) + value if kind == "counter" else max(by_second.get(t, -math.inf), value)
        return SeriesData(kind, unit, tuple(v for _, v in sorted(by_second.items())), None)

    def _dlq(self) -> SeriesData:
        by_second: dict[int, float] = {}
        for s in self.series_list:
            if (s["namespace"], s["metric"]) in (("AWS/SQS", "NumberOfMessagesMovedToDLQ"), ("AWS/Lambda", "DeadLetterDeliveries")):
                # Dead letters per function (not also by Reason: the same letters again).
                if s["metric"] == "DeadLetterDeliveries" and set(s["dimensions"]) != {"FunctionName"}:
                    continue
                for t, value in zip(s["t"], s["value"]):
                    by_second[t] = by_second.get(t, 0.0) + (value or 0.0)
        return SeriesData("counter", "Count", tuple(v for _, v in sorted(by_second.items())), None)


def json_ready(value: Any) -> Any:
    """`value` as JSON can hold it: JSON has no NaN or infinity, so such a figure (no data)
    becomes null; paths become text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
