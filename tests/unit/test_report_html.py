"""The panels model (emulator/telemetry/panels.py) and report.html (emulator/load/html_report.py)
from timelines built by hand: exact figures, safe embedding, the optional sections."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from emulator.load import html_report
from emulator.load.report_command import window_edge
from emulator.telemetry import panels
from emulator.telemetry.timeline import Timeline, series_key
from emulator.web import ASSETS, asset

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT = "ConcurrentInvocationLimitExceeded"


class Wall:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def recorded_timeline() -> tuple[Timeline, Wall]:
    """Second 0: 3 invocations of `slow` (one cold), 2 throttles (reserved); second 2: 4 throttles
    (1 reserved, 3 account) and 1 invocation; `fast` runs once in second 1. Levels sampled."""
    wall = Wall()
    timeline = Timeline(wall)
    slow, fast = timeline.function("slow"), timeline.function("fast")
    slow.executions(1, 1)
    slow.executions(2, 1)
    for duration, cold in ((100.0, True), (200.0, False), (300.0, False)):
        slow.invocation(duration, error=False, cold=cold, init_ms=50.0 if cold else None)
    slow.throttle(RESERVED)
    slow.throttle(RESERVED)
    slow.executions(1, -1)
    slow.executions(0, -1)
    timeline.record_gauge(series_key("AWS/Lambda", "ConcurrencyLimit", {"FunctionName": "slow"}), 2)
    timeline.record_gauge(series_key("AWS/Lambda", "AccountConcurrencyLimit"), 1000)
    wall.now += 1
    fast.invocation(5.0, error=True, cold=True, init_ms=None)
    wall.now += 1
    slow.throttle(RESERVED)
    for _ in range(3):
        slow.throttle(ACCOUNT)
    slow.invocation(400.0, error=False, cold=False, init_ms=None)
    uuid = "11111111-2222-3333-4444-555555555555"
    timeline.record_count(series_key("AWS/Lambda", "DeadLetterBoundEventCount", {"EventSourceMappingUUID": uuid, "Cause": "Throttled"}), 7)
    timeline.record_gauge(series_key("AWS/Lambda", "Pollers", {"EventSourceMappingUUID": uuid}), 5)
    timeline.record_count(series_key("AWS/SQS", "NumberOfMessagesMovedToDLQ", {"QueueName": "orders"}), 7)
    for count, value in (("0", 0), ("1", 4), ("2", 3)):
        timeline.record_gauge(series_key("AWS/SQS", "ApproximateNumberOfMessagesByReceiveCount",
                                         {"QueueName": "orders", "ReceiveCount": count}), value)
    wall.now += 1
    return timeline, wall


def panel(model: dict[str, Any], panel_id: str) -> dict[str, Any]:
    for group in model["groups"]:
        for entry in group["panels"]:
            if entry["id"] == panel_id:
                return entry
    raise AssertionError(f"no panel {panel_id}: {[p['id'] for g in model['groups'] for p in g['panels']]}")


def line(entry: dict[str, Any], label: str) -> dict[str, Any]:
    [found] = [item for item in entry["lines"] if item["label"] == label]
    return found


def test_panels_add_up_exactly_on_one_axis() -> None:
    timeline, _ = recorded_timeline()
    model = panels.build(timeline.export(), start=T0, end=T0 + 3, mappings={
        "11111111-2222-3333-4444-555555555555": {"EventSourceArn": "arn:aws:sqs:us-east-1:1:orders",
                                                 "FunctionArn": "arn:aws:lambda:us-east-1:1:function:slow:live"}})
    assert model["t"] == [T0, T0 + 1, T0 + 2]
    assert [g["title"] for g in model["groups"]] == [
        "Account", "Function fast", "Function slow", "Mapping orders → slow (11111111)", "Queue orders"]
    throttles = panel(model, "function:slow:throttles")
    assert line(throttles, RESERVED)["values"] == [2, 0, 1] and line(throttles, RESERVED)["total"] == 3
    assert line(throttles, ACCOUNT)["values"] == [0, 0, 3] and line(throttles, ACCOUNT)["total"] == 3
    account = panel(model, "account:account:throttles")  # the functions' reasons added up
    assert {entry["label"]: entry["total"] for entry in account["lines"]} == {ACCOUNT: 3, RESERVED: 3}
    invocations = panel(model, "function:slow:invocations")
    assert line(invocations, "Invocations")["values"] == [3, 0, 1]
    assert line(invocations, "ColdStarts")["total"] == 1
    assert "Errors" not in [entry["label"] for entry in invocations["lines"]]  # the timeline keeps no all-zero series
    assert line(panel(model, "function:fast:invocations"), "Errors")["values"] == [0, 1, 0]
    concurrency = panel(model, "function:slow:concurrency")
    assert line(concurrency, "ConcurrentExecutions")["max"] == 2
    assert line(concurrency, "ConcurrencyLimit") | {"values": None} == {
        "label": "ConcurrencyLimit", "role": "limit", "metric": "ConcurrencyLimit", "stat": "value", "values": None, "max": 2}
    duration = panel(model, "function:slow:duration")
    p50 = line(duration, "p50")["values"]
    assert p50[1] is None and abs(p50[0] - 200) / 200 < 0.02 and abs(p50[2] - 400) / 400 < 0.02  # a gap, not 0
    assert line(duration, "max")["values"] == [300, None, 400]
    assert line(panel(model, "mapping:11111111-2222-3333-4444-555555555555:dlq-bound"), "Throttled")["total"] == 7
    receive = panel(model, "queue:orders:receive-count")
    assert [entry["label"] for entry in receive["lines"]] == ["received 1", "received 2"]  # count 0 stayed 0
    assert not any(p["id"].endswith(":concurrency") for p in panel_ids(model, "Function fast"))  # no executions seen


def panel_ids(model: dict[str, Any], title: str) -> list[dict[str, Any]]:
    [group] = [g for g in model["groups"] if g["title"] == title]
    return group["panels"]


def test_long_windows_are_drawn_in_coarser_steps_that_keep_the_sums() -> None:
    wall = Wall()
    timeline = Timeline(wall, retention_s=20_000)
    fn = timeline.function("f")
    for _ in range(7200):
        fn.throttle(RESERVED)
        wall.now += 1
    model = panels.build(timeline.export(), start=T0, end=T0 + 7200)
    assert model["step"] == 2 and len(model["t"]) == 3600
    reasons = line(panel(model, "function:f:throttles"), RESERVED)
    assert reasons["total"] == 7200 and set(reasons["values"]) == {2}


def report_of(timeline: Timeline, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "lambda-emulator/load-report@1", "scenario": {"name": "unit"},
        "run": {"started_at": float(T0), "duration_s": 3.0, "emulated_start": T0, "emulated_end": T0 + 2, "target": "function slow"},
        "client": None, "emulator": {"timeline": timeline.export(), "metrics": {}},
        "thresholds": [{"expression": "count(Throttles) == 0", "ok": False, "observed": 6, "message": "x"}],
        "verdict": "fail", **extra,
    }


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_page_embeds_its_figures_and_the_charting_library() -> None:
    timeline, _ = recorded_timeline()
    page = html_report.render(report_of(timeline))
    data = embedded(page)
    assert data == json.loads(json.dumps(html_report.figures(report_of(timeline))))
    [slow] = [row for row in data["functions"] if row["function"] == "slow"]
    assert (slow["invocations"], slow["throttles"], slow["cold_starts"], slow["peak_concurrency"], slow["concurrency_limit"]) == (
        4, 6, 1, 2, 2)
    assert slow["throttles_by_reason"] == {ACCOUNT: 3, RESERVED: 3}
    assert data["verdict"] == "fail" and 'id="verdict" class="fail">FAIL<' in page
    assert asset("uPlot.iife.min.js").decode() in page and asset("charts.js").decode() in page
    assert "<script src=" not in page and "<link rel=\"stylesheet\"" not in page  # nothing fetched: readable offline
    assert 'id="dlq"' in page and ">7<" in page  # moved to its DLQ: 7, left after throttles: 7


def test_optional_sections_render_when_present_and_text_is_escaped() -> None:
    timeline, _ = recorded_timeline()
    report = report_of(timeline, advice=[{"rule": "sqs-reserved-below-5", "severity": "warning", "subject": "slow",
                                          "message": "reserved concurrency 2 < 5 </script><script>alert(1)</script>",
                                          "source_url": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"}],
                       cost={"currency": "USD", "region": "us-east-1", "total": 0.0123, "per_million_requests": 2.5,
                             "lines": [{"item": "requests", "quantity": 4, "unit": "request", "unit_price": 2e-7, "cost": 8e-7}],
                             "price_table": {"date": "2025-01-01", "source": "https://aws.amazon.com/lambda/pricing/"}},
                       tuning={"power": 512, "cost": 1e-6, "duration": 12.5,
                               "stateMachine": {"visualization": "https://lambda-power-tuning.show/#AAA"},
                               "stats": [{"value": 1024, "averagePrice": 2e-6, "averageDuration": 8.0},
                                         {"value": 128, "averagePrice": 3e-6, "averageDuration": 40.0}]})
    page = html_report.render(report)
    assert "<script>alert(1)" not in page  # escaped in the table, and in the embedded JSON
    data = embedded(page)
    assert data["advice"][0]["message"].endswith("</script><script>alert(1)</script>")
    for section in ('id="advice"', 'id="cost"', 'id="tuning"'):
        assert section in page
    assert "lambda-power-tuning.show/#AAA" in page and "0.0123" in page
    tuning = panel(data["panels"], "tuning:power:duration")
    assert tuning["x"] == [128, 1024] and tuning["lines"][0]["values"] == [40.0, 8.0]
    without = html_report.render(report_of(timeline))
    for section in ('id="advice"', 'id="cost"', 'id="tuning"'):
        assert section not in without


def test_window_edges() -> None:
    now = 1_800_000_000
    assert window_edge("10m", now) == now - 600
    assert window_edge("-90", now) == now - 90
    assert window_edge("90s", now) == now - 90
    assert window_edge("600", now) == now - 600
    assert window_edge(str(now - 5), now) == now - 5


def test_the_assets_install_with_the_package(tmp_path: Path) -> None:
    """pip installs emulator/web/static (pyproject package-data), licence included."""
    subprocess.run([sys.executable, "-W", "ignore", "-c", "import setuptools; setuptools.setup()", "-q", "build",
                    f"--build-base={tmp_path / 'build'}", "build_py", f"--build-lib={tmp_path / 'lib'}"],
                   cwd=ROOT, check=True, capture_output=True)
    static = tmp_path / "lib" / "emulator" / "web" / "static"
    assert sorted(p.name for p in static.iterdir()) == sorted(ASSETS)
    assert "MIT License" in (static / "uPlot.LICENSE").read_text()


def test_a_recent_window_reads_the_same_as_the_whole_ring_cut_to_it() -> None:
    """Timeline reads from `start` on walk the rings from their newest end (the dashboard's
    cheap once-a-second read): the same points as the whole history cut to the window."""
    wall = Wall()
    timeline = Timeline(wall, retention_s=50)  # the rings wrap: 80 seconds of data, 50 kept
    fn = timeline.function("f")
    for second in range(80):
        if second % 3:
            fn.invocation(float(second + 1), error=False, cold=False, init_ms=None)
        timeline.record_gauge(series_key("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "q"}), second)
        wall.now += 1
    for start, end in ((T0 + 70, T0 + 80), (T0 + 75, T0 + 76), (T0 + 10, T0 + 40), (T0 + 79, T0 + 200)):
        whole = {(s["metric"], tuple(s["dimensions"].items())): s for s in timeline.export().get("series", [])}
        window = timeline.export(start, end)
        for s in window["series"]:
            full = whole[(s["metric"], tuple(s["dimensions"].items()))]
            expected = [t for t in full["t"] if start <= t < end]
            assert s["t"] == expected, (s["metric"], start, end)
        listed = {(s["metric"], tuple(s["dimensions"].items())) for s in window["series"]}
        assert listed == {key for key, s in whole.items() if any(start <= t < end for t in s["t"])}
