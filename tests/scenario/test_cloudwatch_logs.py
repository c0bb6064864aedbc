"""Function logs in CloudWatch Logs, where tools look for them
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html,
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html):
one group per function, one stream per execution environment, every line an event, and
the JSON format with its levels. Logs are shipped in batches every half second, so the
tests wait (bounded) for the events they expect.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import GATED_HANDLER_SOURCE, Gate, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

SOURCE = GATED_HANDLER_SOURCE + """
import logging, os
logger = logging.getLogger("app")
logger.setLevel(logging.DEBUG)

def handler(event, context):
    wait_at_gate(event, context)
    print("printed", event.get("n"))
    logger.debug("debug line")
    logger.warning("warning line", extra={"order": 7})
    if event.get("fail"):
        raise ValueError("boom")
    return {"group": os.environ["AWS_LAMBDA_LOG_GROUP_NAME"], "stream": context.log_stream_name}
"""
STREAM_NAME = re.compile(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}")
WAIT_S = 20.0


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Text": inline_function(SOURCE, FunctionName="text-fn"),
        "Json": inline_function(SOURCE, FunctionName="json-fn", LoggingConfig={
            "LogFormat": "JSON", "ApplicationLogLevel": "WARN", "LogGroup": "/custom/json-fn"}),
        "Quiet": inline_function(SOURCE, FunctionName="quiet-fn", LoggingConfig={
            "LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "DEBUG"}),
    }
    with running_emulator(template) as handle:
        yield handle


def events(emu: EmulatorHandle, group: str, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """At least `count` events of the group (waiting for the shipper), in time order."""
    logs = emu.client("logs")

    def fetch() -> list[dict[str, Any]]:
        try:
            found = logs.filter_log_events(logGroupName=group, **kwargs)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return found if len(found) >= count else []

    found = wait_until(fetch, WAIT_S)
    assert found, f"fewer than {count} events reached {group}"
    return found


def test_text_logs_have_a_group_per_function_and_a_stream_per_environment(emu: EmulatorHandle, tmp_path: Path) -> None:
    gate = Gate(tmp_path / "gate")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda n=n: results.append(emu.invoke("text-fn", {"gate": gate.path, "n": n})))
               for n in range(2)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: gate.arrived() == 2)
    gate.open()
    for thread in threads:
        thread.join(30)
    streams = {result["stream"] for result in results}
    assert len(streams) == 2 and all(STREAM_NAME.fullmatch(s) for s in streams)
    assert {result["group"] for result in results} == {"/aws/lambda/text-fn"}
    found = events(emu, "/aws/lambda/text-fn", 10)  # START, printed, warning, END, REPORT per invocation
    assert {e["logStreamName"] for e in found} == streams
    described = emu.client("logs").describe_log_streams(logGroupName="/aws/lambda/text-fn")["logStreams"]
    assert {s["logStreamName"] for s in described} == streams
    for stream in streams:
        messages = [e["message"] for e in found if e["logStreamName"] == stream]
        assert messages[0].startswith("START RequestId: ") and messages[-1].startswith("REPORT RequestId: ")
        assert messages[-2].startswith("END RequestId: ")
        assert any(m.startswith("printed ") for m in messages)
        assert any(m.startswith("[WARNING]\t") and m.endswith("\twarning line") for m in messages)
        assert any(m.startswith("[DEBUG]\t") for m in messages)  # Text logs are never filtered by level
    # filter-log-events with a pattern, as `aws logs filter-log-events --filter-pattern REPORT` does.
    reports = emu.client("logs").filter_log_events(logGroupName="/aws/lambda/text-fn", filterPattern="REPORT")["events"]
    assert len(reports) == 2


def test_json_format_writes_platform_events_and_filters_by_application_level(emu: EmulatorHandle) -> None:
    result = emu.invoke("json-fn", {"n": 1})
    assert result["group"] == "/custom/json-fn"
    found = events(emu, "/custom/json-fn", 3)
    records = [json.loads(e["message"]) for e in found]
    kinds = [r.get("type") or r.get("level") for r in records]
    # print() output is INFO and the debug record is below WARN: both filtered out.
    assert kinds == ["platform.start", "WARNING", "platform.report"]  # Python's level name, as AWS's runtime writes it
    start, warning, report = records
    assert start["record"]["version"] == "$LATEST"
    assert warning["message"] == "warning line" and warning["logger"] == "app" and warning["order"] == 7
    assert warning["requestId"] == start["record"]["requestId"] == report["record"]["requestId"]
    metrics = report["record"]["metrics"]
    assert set(metrics) >= {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"}
    assert report["record"]["status"] == "success"


def test_system_log_level_warn_leaves_out_the_platform_events(emu: EmulatorHandle) -> None:
    with pytest.raises(AssertionError):
        emu.invoke("quiet-fn", {"n": 2, "fail": True})
    found = events(emu, "/aws/lambda/quiet-fn", 4)
    messages = [e["message"] for e in found]
    assert not any('"type": "platform.' in m for m in messages)
    assert "printed 2" in messages
    assert any(json.loads(m).get("message") == "debug line" for m in messages if m.startswith("{"))
    error = [json.loads(m) for m in messages if '"log_level": "ERROR"' in m]
    assert error and error[0]["errorType"] == "ValueError"


def test_update_configuration_switches_new_environments_to_json(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    lam.update_function_configuration(FunctionName="text-fn", LoggingConfig={"LogFormat": "JSON"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="text-fn", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    stream = emu.invoke("text-fn", {"n": 3})["stream"]
    found = events(emu, "/aws/lambda/text-fn", 3, logStreamNames=[stream])
    assert json.loads(found[0]["message"])["type"] == "platform.start"
    lam.update_function_configuration(FunctionName="text-fn", LoggingConfig={"LogFormat": "Text"})


def test_nothing_is_sent_with_cloudwatch_logs_off(lambda_emulator_factory: Any) -> None:
    emu = lambda_emulator_factory({"Fn": inline_function(SOURCE, FunctionName="fn")}, cloudwatch_logs=False)
    emu.invoke("fn", {})
    assert emu.client("logs").describe_log_groups()["logGroups"] == []
    assert "cloudwatch" not in emu.metrics()["logs"]
