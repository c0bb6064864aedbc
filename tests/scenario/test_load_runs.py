"""`emulator load` end to end: the bundled example through the CLI (it starts its own
emulator), and runs against a running emulator whose exact counts are held with gates,
every figure of report.json checked against what the scenario makes certain."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import GATED_OK_SOURCE, Gate
from load_testkit import ECHO, RUN_TIMEOUT_S, gated_throttled_run
from emulator.load import runner
from emulator.load.scenario import build
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]


def series(report: dict[str, Any], metric: str, **dims: str) -> dict[str, Any] | None:
    for entry in report["emulator"]["timeline"]["series"]:
        if entry["metric"] == metric and entry["dimensions"] == dims:
            return entry
    return None


def total(report: dict[str, Any], metric: str, **dims: str) -> float:
    entry = series(report, metric, **dims)
    return 0 if entry is None else entry["summary"]["sum"]


# -- the bundled example, through the CLI --------------------------------------------------------
def test_bundled_example_scenario(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "load", str(ROOT / "examples/hello/load.yaml"),
                           "--out", str(out), "--no-display"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report:" in done.stdout and "(pass)" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "lambda-emulator/load-report@1" and report["verdict"] == "pass"
    client = report["client"]
    totals = client["totals"]
    # 2 s at 20/s, a ramp 20 -> 100 over 3 s (its area: 180), 3 s at 50/s with 1 s at 200/s.
    assert totals["expected_requests"] == 520
    assert (totals["offered"], totals["sent"], totals["dropped"], totals["responses"], totals["ok"]) == (520, 520, 0, 520, 520)
    assert (totals["throttled"], totals["errors"]) == (0, 0)
    assert [(p["name"], p["expected_requests"], p["offered"]) for p in client["phases"]] == [
        ("warm-up", 40, 40), ("ramp", 180, 180), ("spike", 300, 300)]
    assert client["series"]["offered"][:2] == [20, 20]
    assert max(client["series"]["offered"]) == 200  # the spike's second
    assert totals["latency_ms"]["count"] == 520
    # The emulator's side of the same run.
    assert total(report, "Invocations", FunctionName="hello") == 520
    assert series(report, "Duration", FunctionName="hello")["summary"]["count"] == 520
    assert total(report, "Throttles") == 0 and total(report, "Errors", FunctionName="hello") == 0
    assert total(report, "ColdStarts", FunctionName="hello") >= 1
    assert series(report, "ConcurrentExecutions", FunctionName="hello")["summary"]["max"] >= 1
    assert series(report, "AccountConcurrencyLimit")["summary"]["max"] == 1000
    assert [t["ok"] for t in report["thresholds"]] == [True, True, True, True]
    # The same figures as CSV: one file per series, and the client's seconds.
    with open(out / "client.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(row["offered"]) for row in rows) == 520
    with open(out / "series" / "AWS-Lambda_Invocations_FunctionName-hello.csv") as handle:
        assert sum(float(row["value"]) for row in csv.DictReader(handle)) == 520
    assert (out / "emulator.log").stat().st_size > 0


def test_a_failed_threshold_fails_the_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "load", "--template", str(ROOT / "examples/hello/template.yaml"),
                           "--function", "hello", "--rate", "20", "--duration", "1", "--no-display", "--out", str(tmp_path),
                           "--threshold", "count(Invocations) == 20", "--threshold", "count(Invocations) == 0"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == runner.EXIT_THRESHOLDS_FAILED, done.stdout + done.stderr
    assert "PASS count(Invocations) == 20" in done.stdout and "FAIL count(Invocations) == 0" in done.stdout


def test_usage_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("target: {function: hello}\nphases: [{rate: 10, duration: soon}]\n")
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "load", str(bad), "--no-display"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 2 and "duration" in done.stderr and "Traceback" not in done.stderr


# -- against a running emulator --------------------------------------------------------------------
@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    template = {
        "Gated": inline_function(GATED_OK_SOURCE, FunctionName="gated", ReservedConcurrentExecutions=2, Timeout=60),
        "Echo": inline_function(ECHO, FunctionName="echo"),
        "Consumer": inline_function(ECHO, FunctionName="consumer", Events={
            "Queue": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Orders", "Arn"]}, "BatchSize": 10}},
            "Stream": {"Type": "Kinesis", "Properties": {"Stream": {"Fn::GetAtt": ["Clicks", "Arn"]},
                                                          "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}}}),
        "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders", "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDlq", "Arn"]}, "maxReceiveCount": 3}}},
        "OrdersDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders-dlq"}},
        "Clicks": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "clicks", "ShardCount": 2}},
        "Alerts": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}},
    }
    with running_emulator(template, log_invocations=False) as handle:
        yield handle


def scenario(target: dict[str, Any], phases: list[dict[str, Any]], **keys: Any) -> Any:
    return build({"target": target, "phases": phases, **keys}, Path.cwd())


def run(emulator: EmulatorHandle, tmp_path: Path, sc: Any) -> runner.LoadResult:
    return runner.run(sc, out_dir=tmp_path / "report", endpoint=emulator.url, display=False)


def test_exact_throttles_at_a_reserved_concurrency_held_with_a_gate(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    gate = Gate(tmp_path / "gate")
    sc = scenario({"function": "gated", "payload": {"gate": gate.path}}, [{"rate": 200, "duration": 0.1}],
                  thresholds=["count(Throttles{FunctionName=gated}) == 18", "max(ConcurrentExecutions{FunctionName=gated}) == 2",
                              "count(client.Throttled{Reason=ReservedFunctionConcurrentInvocationLimitExceeded}) == 18",
                              "rate(Throttles) < 1%"])
    # 20 requests: two run and wait at the gate, so the other 18 are throttled, every one.
    result = gated_throttled_run(emulator, gate, sc, tmp_path / "report")
    report = result.report
    totals = report["client"]["totals"]
    assert (totals["sent"], totals["ok"], totals["throttled"]) == (20, 2, 18)
    assert totals["throttles_by_reason"] == {"ReservedFunctionConcurrentInvocationLimitExceeded": 18}
    assert total(report, "Throttles", FunctionName="gated", Reason="ReservedFunctionConcurrentInvocationLimitExceeded") == 18
    assert total(report, "Invocations", FunctionName="gated") == 2
    assert series(report, "ConcurrentExecutions", FunctionName="gated")["summary"]["max"] == 2
    assert [t["ok"] for t in report["thresholds"]] == [True, True, True, False]
    assert report["verdict"] == "fail" and result.exit_code == runner.EXIT_THRESHOLDS_FAILED
    with pytest.raises(AssertionError, match=r"rate\(Throttles\) < 1%"):
        result.assert_thresholds()


def test_event_invocations_are_received_and_aged(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    sc = scenario({"function": "echo", "invocation": "Event", "template": '{"n": {{sequence}}}'},
                  [{"rate": 50, "duration": 1}], settle="20s", thresholds=["count(AsyncEventsReceived) == 50"])
    result = run(emulator, tmp_path, sc)
    report = result.report
    assert report["client"]["totals"]["ok"] == 50  # 202 Accepted
    assert total(report, "AsyncEventsReceived", FunctionName="echo") == 50
    assert total(report, "Invocations", FunctionName="echo") == 50  # settle waited for the queue
    assert series(report, "AsyncEventAge", FunctionName="echo")["summary"]["count"] == 50
    assert result.passed


def test_sqs_target_counts_every_message_through_the_mapping(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    sc = scenario({"queue": "orders", "batch": 10, "template": '{"order": {{sequence}}}'}, [{"rate": 10, "duration": 2}],
                  settle="60s", thresholds=["count(DLQ) == 0", "count(NumberOfMessagesSent{QueueName=orders}) == 200"])
    result = run(emulator, tmp_path, sc)
    report = result.report
    assert report["client"]["totals"]["ok"] == 20  # SendMessageBatch calls
    assert total(report, "NumberOfMessagesSent", QueueName="orders") == 200
    mapping = [s for s in report["emulator"]["timeline"]["series"] if s["metric"] == "DeletedEventCount"
               and s["summary"]["sum"]]
    assert len(mapping) == 1 and mapping[0]["summary"]["sum"] == 200
    uuid = mapping[0]["dimensions"]["EventSourceMappingUUID"]
    assert total(report, "PolledEventCount", EventSourceMappingUUID=uuid) == 200
    assert total(report, "InvokedEventCount", EventSourceMappingUUID=uuid) == 200
    assert total(report, "NumberOfMessagesMovedToDLQ", QueueName="orders") == 0
    assert series(report, "ApproximateNumberOfMessagesByReceiveCount", QueueName="orders", ReceiveCount="0") is not None
    assert result.passed, [t["message"] for t in report["thresholds"]]


def test_kinesis_and_sns_targets(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    kinesis = run(emulator, tmp_path / "kinesis", scenario(
        {"stream": "clicks", "batch": 25, "template": '{"click": {{sequence}}}'}, [{"rate": 4, "duration": 1}], settle="30s",
        thresholds=["count(IncomingRecords) == 100", "max(IteratorAge) < 60s"]))
    report = kinesis.report
    assert report["client"]["totals"]["ok"] == 4
    assert total(report, "IncomingRecords", StreamName="clicks") == 100
    assert series(report, "GetRecords.IteratorAgeMilliseconds", StreamName="clicks") is not None
    assert kinesis.passed, [t["message"] for t in report["thresholds"]]
    sns = run(emulator, tmp_path / "sns", scenario({"topic": "alerts", "payload": "hello"}, [{"rate": 10, "duration": 1}]))
    assert (sns.report["client"]["totals"]["ok"], sns.report["client"]["totals"]["errors"]) == (10, 0)


def test_two_workers_send_the_schedule_exactly_once(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    result = run(emulator, tmp_path, scenario({"function": "echo", "template": '{"n": {{sequence}}}'},
                                              [{"kind": "ramp", "from": 50, "to": 150, "duration": 2}], workers=2))
    totals = result.report["client"]["totals"]
    assert (totals["offered"], totals["ok"]) == (200, 200)
    assert total(result.report, "Invocations", FunctionName="echo") == 200
    assert len(result.report["run"]["generator"]["worker_cpu_s"]) == 2


def test_a_url_target_through_the_api_gateway_front_door(tmp_path: Path) -> None:
    pong = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'pong'}\n"
    template = {
        "Rest": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "Name": "shop"}},
        "Http": {"Type": "AWS::Serverless::HttpApi"},
        "Pong": inline_function(pong, Events={
            "RestPing": {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Rest"}, "Path": "/ping", "Method": "GET"}},
            "HttpPing": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": "/ping", "Method": "GET"}}}),
    }
    with running_emulator(template, backend="none", log_invocations=False) as emulator:
        for path, stage in (("/Prod/ping", {"ApiName": "shop", "Stage": "Prod"}), ("/ping", None)):
            sc = scenario({"url": emulator.api_url + path, "method": "GET"}, [{"rate": 30, "duration": 1}], settle="3s",
                          thresholds=["count(AWS/ApiGateway:Count) == 30", "count(client.Errors) == 0"])
            result = run(emulator, tmp_path / path.strip("/").replace("/", "-"), sc)
            report = result.report
            assert report["client"]["totals"]["ok"] == 30
            if stage is not None:
                assert total(report, "Count", **stage) == 30 and total(report, "5XXError", **stage) == 0
                assert series(report, "Latency", **stage) is not None
            assert total(report, "Invocations", FunctionName="Pong") == 30
            assert result.passed, [t["message"] for t in report["thresholds"]]
