"""Asynchronous invocation: retries on the one clock, destinations, DLQ
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html).

These run with --time-scale 60, so AWS's 1- and 2-minute retry delays take 1 and 2 s.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from core_testkit import GATED_HANDLER_SOURCE, Gate, wait_until
from emulator.pytest_plugin import inline_function

pytestmark = pytest.mark.scenario

RECORDING_FAILER = GATED_HANDLER_SOURCE + """
import json, os, time
def handler(event, context):
    with open(os.environ["ATTEMPTS_FILE"], "a") as f:
        f.write(json.dumps({"id": context.aws_request_id, "t": time.time()}) + "\\n")
    wait_at_gate(event, context)  # held only if the event names a gate
    if event.get("fail", True):
        raise RuntimeError("always fails")
    return {"ok": event}
"""

# Each invocation holds its slot at the test's gate (core_testkit.Gate) until the test
# opens it (or the emulator kills the environment): in-flight counts are exact, not timed.
BLOCKER = GATED_HANDLER_SOURCE + """
def handler(event, context):
    wait_at_gate(event, context)
    return {}
"""


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    from emulator.pytest_plugin import start_emulator

    attempts = tmp_path_factory.mktemp("attempts") / "attempts.jsonl"
    env = {"Variables": {"ATTEMPTS_FILE": str(attempts)}}
    handle = start_emulator(
        {
            "Failer": inline_function(RECORDING_FAILER, Environment=env, Timeout=120),  # may be held at a gate
            "Target": inline_function(RECORDING_FAILER, Environment=env),
            "Blocker": inline_function(BLOCKER, Timeout=300),
        },
        time_scale=60,
    )
    handle.attempts_file = attempts
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(emu):
    emu.reset()
    emu.attempts_file.write_text("")
    yield
    emu.check()


def make_queue(emu, name: str) -> tuple[str, str]:
    sqs = emu.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive_one(emu, url: str, timeout: float = 20.0) -> dict:
    sqs = emu.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])
        if messages:
            return messages[0]
    raise AssertionError(f"nothing arrived in {url} within {timeout} s")


def attempts(emu) -> list[dict]:
    return [json.loads(line) for line in emu.attempts_file.read_text().splitlines()]


def test_failing_event_is_attempted_three_times_then_recorded_on_failure(emu):
    url, arn = make_queue(emu, "failures")
    emu.lambda_client.put_function_event_invoke_config(FunctionName="Failer", DestinationConfig={"OnFailure": {"Destination": arn}})
    response = emu.lambda_client.invoke(FunctionName="Failer", InvocationType="Event", Payload=json.dumps({"order": 7}))
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    record = json.loads(receive_one(emu, url)["Body"])
    seen = attempts(emu)
    assert len(seen) == 3 and {a["id"] for a in seen} == {request_id}
    # 1 and 2 emulated minutes at time scale 60: the third attempt ~3 s after the first.
    assert seen[2]["t"] - seen[0]["t"] >= 2.9
    assert seen[1]["t"] - seen[0]["t"] >= 0.95
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["functionArn"].endswith(":function:Failer:$LATEST")
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "always fails"
    # The message can be received before the emulator has read SendMessage's answer and counted it.
    assert wait_until(lambda: function_metric(emu, "Failer", "DestinationDeliveries") == 1, 20)
    metrics = emu.metrics()["functions"]["Failer"]
    assert metrics["AsyncEventsRetried"] == 2


def test_maximum_retry_attempts_zero_and_on_success(emu):
    failures_url, failures_arn = make_queue(emu, "failures0")
    success_url, success_arn = make_queue(emu, "successes")
    lam = emu.lambda_client
    lam.put_function_event_invoke_config(
        FunctionName="Failer",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failures_arn}, "OnSuccess": {"Destination": success_arn}},
    )
    lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=json.dumps({"fail": False, "n": 1}))
    success = json.loads(receive_one(emu, success_url)["Body"])
    assert success["requestContext"]["condition"] == "Success"
    assert success["responsePayload"] == {"ok": {"fail": False, "n": 1}}
    lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=json.dumps({"n": 2}))
    failure = json.loads(receive_one(emu, failures_url)["Body"])
    assert failure["requestContext"]["approximateInvokeCount"] == 1
    assert len(attempts(emu)) == 2


def test_dead_letter_queue_gets_the_original_event_with_attributes(emu):
    url, arn = make_queue(emu, "dlq")
    lam = emu.lambda_client
    # DeadLetterConfig is part of the function's configuration; set it as the template would.
    version = emu.server.registry.functions["Failer"].latest
    from dataclasses import replace

    emu.server.registry.functions["Failer"].latest = replace(version, spec=replace(version.spec, dead_letter_arn=arn))
    lam.put_function_event_invoke_config(FunctionName="Failer", MaximumRetryAttempts=0)
    response = lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=json.dumps({"k": "v"}))
    message = receive_one(emu, url)
    assert json.loads(message["Body"]) == {"k": "v"}
    attributes = message["MessageAttributes"]
    assert attributes["RequestID"]["StringValue"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"]["StringValue"] == "always fails"


def test_reserved_zero_sends_events_straight_to_the_destination(emu):
    url, arn = make_queue(emu, "throttled")
    lam = emu.lambda_client
    lam.put_function_concurrency(FunctionName="Failer", ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(FunctionName="Failer", DestinationConfig={"OnFailure": {"Destination": arn}})
    lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=b"{}")
    record = json.loads(receive_one(emu, url)["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["responseContext"]["statusCode"] == 429
    assert attempts(emu) == []
    assert emu.metrics()["functions"]["Failer"]["AsyncEventsRetried"] == 0


def test_throttled_events_back_off_until_they_are_too_old(emu, gate):
    url, arn = make_queue(emu, "aged")
    lam = emu.lambda_client
    lam.put_function_concurrency(FunctionName="Failer", ReservedConcurrentExecutions=1)
    # MaximumEventAgeInSeconds 60 is 1 s at time scale 60; a synchronous call holds the
    # only slot at the test's gate until the event's failure record has arrived, so every
    # attempt of the event is throttled until it is too old.
    lam.put_function_event_invoke_config(
        FunctionName="Failer", MaximumEventAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    with ThreadPoolExecutor(1) as pool:
        blocker = pool.submit(lam.invoke, FunctionName="Failer", Payload=json.dumps({"fail": False, "gate": gate.path}))
        assert wait_until(lambda: gate.arrived() == 1, 10), "the blocking call never started"
        lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=b"{}")
        record = json.loads(receive_one(emu, url)["Body"])
        gate.open()
        assert blocker.result()["StatusCode"] == 200
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    metrics = emu.metrics()["functions"]["Failer"]
    assert metrics["AsyncEventsExpired"] == 1
    assert metrics["Throttles"] >= 3  # retried after 1, 2, 4, 8, 16, 32 emulated seconds


def test_event_invoke_config_api(emu):
    lam = emu.lambda_client
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName="Target")
    lam.put_function_event_invoke_config(FunctionName="Target", MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120)
    updated = lam.update_function_event_invoke_config(FunctionName="Target", MaximumRetryAttempts=0)
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 120)
    replaced = lam.put_function_event_invoke_config(FunctionName="Target", MaximumEventAgeInSeconds=300)
    assert replaced["MaximumRetryAttempts"] == 2  # Put overwrites: unset fields go back to defaults
    listed = lam.list_function_event_invoke_configs(FunctionName="Target")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["$LATEST"]
    with pytest.raises(ClientError) as caught:  # botocore checks minimums itself; maximums are ours
        lam.put_function_event_invoke_config(FunctionName="Target", MaximumEventAgeInSeconds=21_601)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "maximumEventAgeInSeconds" in str(caught.value)
    lam.delete_function_event_invoke_config(FunctionName="Target")
    assert lam.list_function_event_invoke_configs(FunctionName="Target")["FunctionEventInvokeConfigs"] == []


def test_async_destination_to_another_function(emu):
    lam = emu.lambda_client
    target_arn = lam.get_function(FunctionName="Target")["Configuration"]["FunctionArn"]
    lam.put_function_event_invoke_config(
        FunctionName="Failer", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": target_arn}}
    )
    lam.put_function_event_invoke_config(FunctionName="Target", MaximumRetryAttempts=0)
    lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=b'{"fail": true}')
    assert wait_until(lambda: len(attempts(emu)) >= 2, 15), "the destination function was never invoked"
    assert emu.metrics()["functions"]["Failer"]["DestinationDeliveries"] == 1


def function_metric(emu, function: str, name: str) -> int:
    return emu.metrics()["functions"].get(function, {}).get(name, 0)


@pytest.fixture
def gate(tmp_path):
    gate = Gate(tmp_path / "gate")
    yield gate
    gate.open()  # whatever still waits there goes


def held_events(lam, gate: Gate, count: int, function: str = "Blocker") -> None:
    payload = json.dumps({"gate": gate.path, "gate_limit_s": 120})
    for _ in range(count):
        lam.invoke(FunctionName=function, InvocationType="Event", Payload=payload)


def test_reset_reports_every_pending_async_event_it_drops_and_keeps_the_count(emu, gate, caplog):
    lam = emu.lambda_client
    lam.put_function_concurrency(FunctionName="Blocker", ReservedConcurrentExecutions=2)
    held_events(lam, gate, 50)
    # Two events in flight (held at the gate), 48 queued behind them.
    assert wait_until(lambda: gate.arrived() == 2, 20)
    before = emu.metrics()["async_queue"]["dropped_pending"]["reset"]
    with caplog.at_level(logging.WARNING, logger="emulator.async"):
        emu.reset()
    after = emu.metrics()["async_queue"]
    assert after["dropped_pending"]["reset"]["total"] == before["total"] + 50
    assert after["dropped_pending"]["reset"]["by_function"]["Blocker"] == before["by_function"].get("Blocker", 0) + 50
    assert after["pending"] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "emulator.async"]
    assert any("dropped 50 pending async event(s) (48 queued, 2 running" in line and "Blocker: 50" in line for line in lines), lines
    # The count survives the next reset too.
    emu.reset()
    assert emu.metrics()["async_queue"]["dropped_pending"]["reset"]["total"] == before["total"] + 50


def test_shutdown_reports_every_pending_async_event_it_drops(tmp_path, gate, caplog):
    from emulator.pytest_plugin import start_emulator

    handle = start_emulator(
        {"Blocker": inline_function(BLOCKER, Timeout=300, ReservedConcurrentExecutions=2)},
        backend="none",
        shutdown_timeout=0.5,
    )
    try:
        held_events(handle.lambda_client, gate, 10)
        assert wait_until(lambda: gate.arrived() == 2, 20)
        with caplog.at_level(logging.WARNING, logger="emulator.async"):
            handle.stop()  # the two held attempts outlive the 0.5 s drain
    finally:
        gate.open()
        handle.stop()
    assert handle.server.metrics.pending_dropped_snapshot()["shutdown"] == {"total": 10, "by_function": {"Blocker": 10}}
    lines = [r.getMessage() for r in caplog.records if r.name == "emulator.async"]
    assert any("dropped 10 pending async event(s) (8 queued, 2 running" in line and "Blocker: 10" in line for line in lines), lines


def test_a_failed_destination_delivery_is_retried_until_it_succeeds(emu):
    config = emu.config
    # The destination queue does not exist yet: every delivery fails until the test creates it.
    arn = f"arn:aws:sqs:{config.region}:{config.account_id}:created-late"
    lam = emu.lambda_client
    lam.put_function_event_invoke_config(
        FunctionName="Failer", MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    response = lam.invoke(FunctionName="Failer", InvocationType="Event", Payload=json.dumps({"late": True}))
    assert wait_until(lambda: function_metric(emu, "Failer", "DestinationDeliveryFailures") >= 2, 20)
    url, created_arn = make_queue(emu, "created-late")
    assert created_arn == arn
    record = json.loads(receive_one(emu, url)["Body"])
    assert record["requestContext"]["requestId"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert record["requestPayload"] == {"late": True}
    # The message can be received before the emulator has read SendMessage's answer and counted it.
    assert wait_until(lambda: function_metric(emu, "Failer", "DestinationDeliveries") == 1, 20)
    metrics = emu.metrics()["functions"]["Failer"]
    assert metrics["DestinationDeliveryAttempts"] == metrics["DestinationDeliveryFailures"] + 1
    assert metrics["DestinationDeliveriesDropped"] == 0
    assert metrics["AsyncEventsDropped"] == 0


def test_async_events_wait_for_the_functions_concurrency_instead_of_throttling(emu, gate):
    lam = emu.lambda_client
    lam.put_function_concurrency(FunctionName="Blocker", ReservedConcurrentExecutions=2)
    held_events(lam, gate, 20)
    assert wait_until(lambda: gate.arrived() == 2, 20)
    gate.open()
    assert wait_until(lambda: function_metric(emu, "Blocker", "AsyncEventsSucceeded") == 20, 60)
    metrics = emu.metrics()["functions"]["Blocker"]
    # Nothing else uses Blocker's two slots, so no attempt needs to be throttled: the queue
    # holds the other 18 events back instead of sending them into a full reservation.
    assert metrics["Throttles"] == 0
    assert metrics["ConcurrentExecutionsPeak"] == 2
    assert (metrics["Invocations"], gate.arrived()) == (20, 20)
