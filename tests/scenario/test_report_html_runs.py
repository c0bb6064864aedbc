"""report.html of real runs: every figure it shows (the tables' data and the charts' panels,
read from the JSON the page embeds) checked against counts the scenario makes certain, and
`emulator report` against a running emulator: DLQ arrivals and why."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import GATED_HANDLER_SOURCE, Gate, wait_until
from emulator.load import runner
from emulator.load.scenario import build
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

RUN_TIMEOUT_S = 120
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
GATED = GATED_HANDLER_SOURCE + """
def handler(event, context):
    wait_at_gate(event, context)
    return {"ok": True}
"""
FAILING = "def handler(event, context):\n    raise RuntimeError('every batch fails')\n"
ECHO = "def handler(event, context):\n    return event\n"


def queue_pair(name: str, consumer: str) -> dict[str, Any]:
    """A queue whose messages go to its DLQ after one receive (VisibilityTimeout 1 s, so fast)."""
    return {
        name: {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name, "VisibilityTimeout": 1, "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": [f"{name}Dlq", "Arn"]}, "maxReceiveCount": 1}}},
        f"{name}Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-dlq"}},
    }


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    def consumer(source: str, queue: str, **props: Any) -> dict[str, Any]:
        # Timeout 1 s: no longer than the queues' 1 s visibility timeout (Lambda refuses the
        # mapping otherwise).
        return inline_function(source, Events={"Queue": {"Type": "SQS", "Properties": {
            "Queue": {"Fn::GetAtt": [queue, "Arn"]}, "BatchSize": 10}}}, Timeout=1, **props)

    template = {
        "Gated": inline_function(GATED, FunctionName="gated", ReservedConcurrentExecutions=2, Timeout=60),
        # Every batch fails: its messages reach the DLQ after a function error.
        "Failing": consumer(FAILING, "failingq", FunctionName="failing"),
        # Reserved concurrency 0: every batch is throttled; valid messages reach the DLQ.
        "Blocked": consumer(ECHO, "blockedq", FunctionName="blocked", ReservedConcurrentExecutions=0),
        **queue_pair("failingq", "failing"), **queue_pair("blockedq", "blocked"),
    }
    with running_emulator(template, log_invocations=False) as handle:
        yield handle


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match is not None, "report.html embeds its figures"
    return json.loads(match.group(1))


def panel(data: dict[str, Any], panel_id: str) -> dict[str, Any]:
    found = [p for g in data["panels"]["groups"] for p in g["panels"] if p["id"] == panel_id]
    assert found, f"no panel {panel_id}"
    return found[0]


def lines(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["label"]: line for line in entry["lines"]}


def test_every_figure_of_a_gated_run_matches_the_scenario(emulator: EmulatorHandle, tmp_path: Path) -> None:
    """20 requests at reserved concurrency 2: two run and wait at a gate, so exactly 18 are
    throttled (ReservedFunction...); then the gate opens and the two succeed."""
    emulator.reset()
    gate = Gate(tmp_path / "gate")
    sc = build({"target": {"function": "gated", "payload": {"gate": gate.path}}, "phases": [{"rate": 200, "duration": 0.1}],
                "thresholds": ["count(Throttles{FunctionName=gated}) == 18", "rate(Throttles) < 1%"]}, Path.cwd())
    results: list[runner.LoadResult] = []
    worker = threading.Thread(target=lambda: results.append(runner.run(sc, out_dir=tmp_path / "out", endpoint=emulator.url,
                                                                        display=False)))
    worker.start()
    try:
        assert wait_until(lambda: gate.arrived() == 2 and
                          emulator.metrics()["functions"].get("gated", {}).get("Throttles") == 18, timeout_s=60)
    finally:
        gate.open()
        worker.join(RUN_TIMEOUT_S)
    [result] = results
    page = (tmp_path / "out" / "report.html").read_text()
    data = embedded(page)
    # The verdict and the thresholds, as the page shows them.
    assert data["verdict"] == "fail" and 'id="verdict" class="fail">FAIL<' in page
    assert [(t["expression"], t["ok"]) for t in data["thresholds"]] == [
        ("count(Throttles{FunctionName=gated}) == 18", True), ("rate(Throttles) < 1%", False)]
    # Offered load: the table and the charts.
    totals = data["client"]["totals"]
    assert (totals["expected_requests"], totals["offered"], totals["sent"], totals["ok"], totals["throttled"], totals["errors"]) == (
        20, 20, 20, 2, 18, 0)
    assert totals["throttles_by_reason"] == {RESERVED: 18}
    offered = lines(panel(data, "client:load:offered"))
    assert (offered["offered"]["total"], offered["ok"]["total"], offered["throttled"]["total"], offered["errors"]["total"]) == (
        20, 2, 18, 0)
    assert lines(panel(data, "client:load:throttles"))[RESERVED]["total"] == 18
    latency = lines(panel(data, "client:load:latency"))
    assert set(latency) == {"p50", "p90", "p95", "p99", "p999", "max"}
    # A latency point in every second with an answer (20 answers: 18 at once, 2 when the gate opened).
    answered = [n for n in result.report["client"]["series"]["responses"]]
    assert sum(answered) == 20
    assert [v is not None for v in latency["p50"]["values"]] == [n > 0 for n in answered]
    # Per function: the table ...
    [gated] = [row for row in data["functions"] if row["function"] == "gated"]
    assert (gated["invocations"], gated["errors"], gated["throttles"], gated["cold_starts"]) == (2, 0, 18, 2)
    assert gated["throttles_by_reason"] == {RESERVED: 18}
    assert (gated["peak_concurrency"], gated["concurrency_limit"]) == (2, 2)
    assert all(gated["duration_ms"][p] is not None for p in ("p50", "p90", "p95", "p99", "p999", "max"))
    assert (gated["async_received"], gated["async_retries"], gated["async_dropped"], gated["dead_letter_deliveries"]) == (0, 0, 0, 0)
    # ... and its charts: concurrency against the limit, throttles by reason, invocations, percentiles.
    concurrency = lines(panel(data, "function:gated:concurrency"))
    assert concurrency["ConcurrentExecutions"]["max"] == 2 and concurrency["ConcurrencyLimit"]["role"] == "limit"
    assert concurrency["ConcurrencyLimit"]["max"] == 2
    assert lines(panel(data, "function:gated:throttles"))[RESERVED]["total"] == 18
    assert lines(panel(data, "account:account:throttles"))[RESERVED]["total"] == 18
    invocations = lines(panel(data, "function:gated:invocations"))
    assert (invocations["Invocations"]["total"], invocations["ColdStarts"]["total"]) == (2, 2)
    duration = lines(panel(data, "function:gated:duration"))
    assert set(duration) == {"p50", "p90", "p95", "p99", "p999", "max"}
    assert sum(v is not None for v in duration["max"]["values"]) >= 1
    # The same figures as report.json says (one source).
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["client"]["totals"]["throttled"] == 18 and result.report["verdict"] == "fail"


def wait_for_dead_letters(emulator: EmulatorHandle, since: int, count: int) -> None:
    """Until the timeline has seen `count` messages moved to each DLQ (the sampler's figures)."""
    def moved() -> bool:
        body = json.loads(_get(f"{emulator.url}/_emulator/timeline?since={since}"))
        sums = {s["dimensions"].get("QueueName"): s["summary"]["sum"] for s in body["series"]
                if s["metric"] == "NumberOfMessagesMovedToDLQ"}
        bound = sum(s["summary"]["sum"] for s in body["series"] if s["metric"] == "DeadLetterBoundEventCount")
        return sums.get("failingq") == count and sums.get("blockedq") == count and bound == 2 * count
    assert wait_until(moved, timeout_s=90, interval_s=0.5)


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_emulator_report_shows_dlq_arrivals_and_why(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    since = int(json.loads(_get(f"{emulator.url}/_emulator/timeline?since=1e15"))["now"])
    sqs = emulator.client("sqs")
    for queue in ("failingq", "blockedq"):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        for batch in range(2):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"n": batch * 10 + i})}
                                                         for i in range(10)])
    wait_for_dead_letters(emulator, since, 20)
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "report", "--since", str(since), "--endpoint", emulator.url,
                           "--out", str(tmp_path), "--threshold", "count(DLQ) == 0"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 99, done.stdout + done.stderr  # the threshold failed, as it should
    assert "FAIL count(DLQ) == 0" in done.stdout
    page = (tmp_path / "report.html").read_text()
    data = embedded(page)
    assert data["client"] is None and data["verdict"] == "fail"
    queues = {q["queue"]: q for q in data["queues"]}
    assert (queues["failingq"]["sent"], queues["failingq"]["moved_to_dlq"]) == (20, 20)
    assert (queues["blockedq"]["sent"], queues["blockedq"]["moved_to_dlq"]) == (20, 20)
    why = {m["source"]: m["dead_letter_bound"] for m in data["mappings"]}
    assert why["failingq"] == {"Failed": 20}  # every batch ran and failed
    assert why["blockedq"] == {"Throttled": 20}  # no batch ever ran: valid messages, throttled into the DLQ
    mappings = {m["source"]: m for m in data["mappings"]}
    assert mappings["failingq"]["function"] == "failing" and mappings["failingq"]["failed"] == 20
    assert mappings["blockedq"]["invoked"] == 0
    [blocked] = [f for f in data["functions"] if f["function"] == "blocked"]
    assert blocked["invocations"] == 0 and set(blocked["throttles_by_reason"]) == {RESERVED}
    dlq_panel = {p["id"]: p for g in data["panels"]["groups"] for p in g["panels"]}
    bound = [p for pid, p in dlq_panel.items() if pid.endswith(":dlq-bound")]
    assert sorted(line["label"] + str(line["total"]) for p in bound for line in p["lines"]) == ["Failed20.0", "Throttled20.0"]
    # The table says the same in words.
    dlq_table = page[page.index('id="dlq"'):page.index("</section>", page.index('id="dlq"'))]
    assert "queue failingq" in dlq_table and "queue blockedq" in dlq_table
    # And it renders again, offline, from the report.json it wrote.
    again = subprocess.run([sys.executable, "-m", "emulator.cli", "report", "--from-json", str(tmp_path / "report.json"),
                            "--out", str(tmp_path / "again")], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert again.returncode == 0, again.stderr
    assert embedded((tmp_path / "again" / "report.html").read_text())["queues"] == data["queues"]


def test_emulator_report_usage_errors(emulator: EmulatorHandle, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "report", "--since", "soon", "--endpoint", emulator.url,
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 2 and "duration" in done.stderr and "Traceback" not in done.stderr
    gone = subprocess.run([sys.executable, "-m", "emulator.cli", "report", "--since", "1m", "--endpoint", "http://127.0.0.1:9",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert gone.returncode == 1 and "cannot reach" in gone.stderr and "Traceback" not in gone.stderr


def test_emulator_report_shows_async_dead_letters_by_reason(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    """Async events that end in the function's DLQ, split by why: function errors with no
    retry left (RetriesExhausted) and reserved concurrency 0 (ReservedConcurrencyZero), in
    the timeline (read through the CloudWatch API), report.html and the printed table."""
    dlq = {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["AsyncDlq", "Arn"]}}
    template = {
        "AsyncDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "async-dlq"}},
        "AsyncFailing": inline_function(FAILING, FunctionName="async-failing", DeadLetterQueue=dlq,
                                        EventInvokeConfig={"MaximumRetryAttempts": 0}),
        "AsyncOff": inline_function(ECHO, FunctionName="async-off", DeadLetterQueue=dlq, ReservedConcurrentExecutions=0),
    }
    emu = lambda_emulator_factory(template, log_invocations=False)
    since = int(json.loads(_get(f"{emu.url}/_emulator/timeline?since=1e15"))["now"])
    for name, count in (("async-failing", 3), ("async-off", 2)):
        for n in range(count):
            assert emu.lambda_client.invoke(FunctionName=name, InvocationType="Event",
                                            Payload=json.dumps({"n": n}))["StatusCode"] == 202

    def delivered() -> dict[str, int]:
        functions = emu.metrics()["functions"]
        return {name: functions.get(name, {}).get("DeadLetterDeliveries", 0) for name in ("async-failing", "async-off")}
    assert wait_until(lambda: delivered() == {"async-failing": 3, "async-off": 2}, timeout_s=30)

    cloudwatch = emu.client("cloudwatch")

    def total(metric: str, function: str, reason: str) -> float:
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=metric, StartTime=since - 60, EndTime=since + 3600, Period=60,
            Statistics=["Sum"], Dimensions=[{"Name": "FunctionName", "Value": function}, {"Name": "Reason", "Value": reason}])
        return sum(point["Sum"] for point in answer["Datapoints"])
    for metric in ("AsyncEventsDropped", "DeadLetterDeliveries"):
        assert total(metric, "async-failing", "RetriesExhausted") == 3
        assert total(metric, "async-off", "ReservedConcurrencyZero") == 2
        assert total(metric, "async-failing", "ReservedConcurrencyZero") == total(metric, "async-off", "RetriesExhausted") == 0

    done = subprocess.run([sys.executable, "-m", "emulator.cli", "report", "--since", str(since), "--endpoint", emu.url,
                           "--out", str(tmp_path), "--threshold", "count(DLQ) == 5",
                           "--threshold", "count(AsyncEventsDropped{Reason=RetriesExhausted}) == 3"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr  # each dead letter counted once
    assert "  function async-failing (async): 3 arrived in its DLQ: retries exhausted 3\n" in done.stdout
    assert "  function async-off (async): 2 arrived in its DLQ: reserved concurrency 0 2\n" in done.stdout
    data = embedded((tmp_path / "report.html").read_text())
    functions = {f["function"]: f for f in data["functions"]}
    assert functions["async-failing"]["async_dropped_by_reason"] == {"RetriesExhausted": 3}
    assert functions["async-failing"]["dead_letter_by_reason"] == {"RetriesExhausted": 3}
    assert functions["async-off"]["async_dropped_by_reason"] == {"ReservedConcurrencyZero": 2}
    assert functions["async-off"]["dead_letter_by_reason"] == {"ReservedConcurrencyZero": 2}
    reasons = lines(panel(data, "function:async-failing:async-dropped"))
    assert {label: line["total"] for label, line in reasons.items()} == {"RetriesExhausted": 3}
