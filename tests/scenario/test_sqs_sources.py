"""SQS event source mappings driven through boto3 (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html).

Each function appends every event it receives to a file, so a test sees exactly what the
function saw. Visibility timeouts run on moto's real clock, so the queues here use short
ones (1–2 s) and the tests wait on the outcome (messages deleted, DLQ depth), never sleep.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pytest

from backend_testkit import RestartableMoto
from core_testkit import Gate, wait_until
from execution_testkit import EXECUTIONS, settings
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
WAIT_S = 20.0  # bound for waits that normally end within a few seconds

RECORDER = """
import json, os, time

def handler(event, context):
    line = (json.dumps(event) + "\\n").encode()
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    mode = os.environ.get("MODE", "")
    if mode == "fail":
        raise RuntimeError("cannot process this batch")
    if mode == "partial":
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"].startswith("bad")]}
    if mode == "unknown-id":
        return {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}
    if mode == "sleep":
        time.sleep(float(os.environ["SLEEP_S"]))
    return None
"""


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def queue(name: str, *, dlq: str | None = None, max_receive: int = 1, visibility: int = 30,
          fifo: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"QueueName": name, "VisibilityTimeout": visibility}
    if dlq:
        props["RedrivePolicy"] = {"deadLetterTargetArn": queue_arn(dlq), "maxReceiveCount": max_receive}
    if fifo:
        props.update(FifoQueue=True, ContentBasedDeduplication=True)
    return {"Type": "AWS::SQS::Queue", "Properties": props}


def consumer(out: Path, name: str, source: str, mode: str = "", event: dict | None = None, **props: Any) -> dict:
    events = {"Source": {"Type": "SQS", "Properties": {"Queue": queue_arn(source), **(event or {})}}}
    variables = {"OUT": str(out / f"{name}.jsonl"), "MODE": mode, "SLEEP_S": "0.5"}
    # One vCPU (1,769 MB: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html): a
    # container's cold start then stays within the 1-second visibility timeouts below.
    props.setdefault("MemorySize", 1769)
    # 1 s: no longer than the shortest visibility timeout here (Lambda refuses a mapping otherwise).
    props.setdefault("Timeout", 1)
    return inline_function(RECORDER, FunctionName=name, Environment={"Variables": variables}, Events=events, **props)


def events_of(out: Path, name: str) -> list[dict[str, Any]]:
    path = out / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def records_of(out: Path, name: str) -> list[dict[str, Any]]:
    return [record for event in events_of(out, name) for record in event["Records"]]


def depth(emu: EmulatorHandle, name: str) -> int:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                            "ApproximateNumberOfMessagesDelayed"))


def send(emu: EmulatorHandle, name: str, bodies: list[str], **extra: Any) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body, **extra} for i, body in enumerate(bodies[start:start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def mapping_stats(emu: EmulatorHandle, function: str) -> dict[str, Any]:
    for stats in emu.metrics()["event_source_mappings"].values():
        if stats["FunctionArn"].endswith(f":function:{function}"):
            return stats
    raise AssertionError(f"no mapping for {function}")


@pytest.fixture(scope="module", params=EXECUTIONS)
def execution(request: pytest.FixtureRequest) -> str:
    # Every mapping test runs on each execution backend: pollers and batches do not depend on it.
    return request.param


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, execution: str) -> Path:
    return tmp_path_factory.mktemp(f"sqs-events-{execution}")


@pytest.fixture(scope="module")
def emu(out: Path, execution: str) -> Iterator[EmulatorHandle]:
    template = {
        "ShapeQueue": queue("shape-q"),
        "ShapeFn": consumer(out, "shape", "shape-q"),
        "FifoQueue": queue("shape.fifo", fifo=True),
        "FifoFn": consumer(out, "fifo", "shape.fifo"),
        "WindowQueue": queue("window-q"),
        "WindowFn": consumer(out, "window", "window-q", event={"BatchSize": 25, "MaximumBatchingWindowInSeconds": 1,
                                                               "ScalingConfig": {"MaximumConcurrency": 2},
                                                               "Enabled": False}),
        "PartialDlq": queue("partial-dlq"),
        "PartialQueue": queue("partial-q", dlq="partial-dlq", visibility=1),
        "PartialFn": consumer(out, "partial", "partial-q", "partial",
                              {"FunctionResponseTypes": ["ReportBatchItemFailures"]}),
        "UnknownIdDlq": queue("unknown-id-dlq"),
        "UnknownIdQueue": queue("unknown-id-q", dlq="unknown-id-dlq", visibility=1),
        "UnknownIdFn": consumer(out, "unknown-id", "unknown-id-q", "unknown-id",
                                {"FunctionResponseTypes": ["ReportBatchItemFailures"]}),
        "FailDlq": queue("fail-dlq"),
        "FailQueue": queue("fail-q", dlq="fail-dlq", max_receive=2, visibility=1),
        "FailFn": consumer(out, "fail", "fail-q", "fail"),
    }
    with running_emulator(template, **settings(execution)) as handle:
        yield handle


def test_messages_reach_the_handler_in_lambdas_record_shape_and_are_deleted(emu: EmulatorHandle, out: Path) -> None:
    send(emu, "shape-q", ["hello"], MessageAttributes={
        "colour": {"DataType": "String", "StringValue": "blue"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })
    assert wait_until(lambda: mapping_stats(emu, "shape")["MessagesDeleted"] == 1, WAIT_S)
    [record] = records_of(out, "shape")
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                            "md5OfMessageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"]
    assert record["body"] == "hello"
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", queue_arn("shape-q"), REGION)
    attributes = record["attributes"]
    assert list(attributes) == ["ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"]
    assert all(isinstance(v, str) for v in attributes.values()) and attributes["ApproximateReceiveCount"] == "1"
    assert attributes["SentTimestamp"].isdigit() and len(attributes["SentTimestamp"]) == 13  # epoch ms
    assert record["messageAttributes"] == {
        "colour": {"stringValue": "blue", "binaryValue": None, "stringListValues": [], "binaryListValues": [],
                   "dataType": "String"},
        "blob": {"stringValue": None, "binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [],
                 "dataType": "Binary"},
    }
    assert wait_until(lambda: depth(emu, "shape-q") == 0, WAIT_S)


def test_fifo_records_carry_group_sequence_and_deduplication_and_keep_order(emu: EmulatorHandle, out: Path) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="shape.fifo")["QueueUrl"]
    for index in range(12):
        # An explicit deduplication id: moto 5.2 assigns a SequenceNumber only then (SQS always does).
        sqs.send_message(QueueUrl=url, MessageBody=f"m{index}", MessageGroupId="g1" if index % 2 else "g2",
                         MessageDeduplicationId=f"d{index}")
    assert wait_until(lambda: mapping_stats(emu, "fifo")["MessagesDeleted"] == 12, WAIT_S)
    records = records_of(out, "fifo")
    assert list(records[0]["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SequenceNumber",
                                              "MessageGroupId", "SenderId", "MessageDeduplicationId",
                                              "ApproximateFirstReceiveTimestamp"]
    for group, expected in (("g1", [f"m{i}" for i in range(1, 12, 2)]), ("g2", [f"m{i}" for i in range(0, 12, 2)])):
        assert [r["body"] for r in records if r["attributes"]["MessageGroupId"] == group] == expected
    assert all(len(event["Records"]) <= 10 for event in events_of(out, "fifo"))


def test_batch_over_ten_is_gathered_from_repeated_receives_within_the_window(emu: EmulatorHandle, out: Path) -> None:
    # 25 messages wait; two batch workers (MaximumConcurrency 2) each receive at most 10 at a
    # time, so at least one batch is built from several receives within its window.
    send(emu, "window-q", [f"w{i}" for i in range(25)])
    lam = emu.lambda_client
    [mapping] = lam.list_event_source_mappings(FunctionName="window")["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert wait_until(lambda: mapping_stats(emu, "window")["MessagesDeleted"] == 25, WAIT_S)
    sizes = [len(event["Records"]) for event in events_of(out, "window")]
    # One worker may gather all 25 before the other's first receive answers (a container's
    # cold start gives it time to): one or two batches, at least one of them over ten.
    assert sum(sizes) == 25 and len(sizes) <= 2
    assert max(sizes) > 10


def test_report_batch_item_failures_deletes_all_but_the_failed(emu: EmulatorHandle, out: Path) -> None:
    send(emu, "partial-q", ["good-1", "bad-1", "good-2", "bad-2"])
    assert wait_until(lambda: depth(emu, "partial-dlq") == 2, WAIT_S)
    assert wait_until(lambda: depth(emu, "partial-q") == 0, WAIT_S)
    delivered = [r["body"] for r in records_of(out, "partial")]
    assert sorted(delivered) == ["bad-1", "bad-2", "good-1", "good-2"]  # each delivered once
    stats = mapping_stats(emu, "partial")
    assert stats["MessagesDeleted"] == 2 and stats["BatchesPartiallyFailed"] >= 1
    assert wait_until(lambda: mapping_stats(emu, "partial")["DeadLetterArrivals"] == 2, WAIT_S)


def test_an_item_identifier_not_in_the_batch_fails_the_whole_batch(emu: EmulatorHandle, out: Path) -> None:
    send(emu, "unknown-id-q", ["a", "b", "c"])
    assert wait_until(lambda: depth(emu, "unknown-id-dlq") == 3, WAIT_S)
    stats = mapping_stats(emu, "unknown-id")
    assert stats["MessagesDeleted"] == 0 and stats["BatchesFailed"] >= 1


def test_a_failing_handler_sends_the_message_to_the_dlq_after_max_receive_count(emu: EmulatorHandle, out: Path) -> None:
    send(emu, "fail-q", ["poison"])
    assert wait_until(lambda: depth(emu, "fail-dlq") == 1, WAIT_S)
    counts = [r["attributes"]["ApproximateReceiveCount"] for r in records_of(out, "fail")]
    assert counts == ["1", "2"]  # received maxReceiveCount times, then redriven
    stats = mapping_stats(emu, "fail")
    assert stats["BatchesFailed"] == 2 and stats["MessagesDeleted"] == 0
    assert stats["MessagesReturnedAtMaxReceiveCount"] == 1
    assert emu.metrics()["functions"]["fail"]["Errors"] == 2
    sqs = emu.client("sqs")
    dlq = sqs.get_queue_url(QueueName="fail-dlq")["QueueUrl"]
    [moved] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert moved["Body"] == "poison"


def test_overpull_valid_messages_reach_the_dlq_and_maximum_concurrency_fixes_it(
        lambda_emulator_factory: Any, tmp_path: Path) -> None:
    """Five pollers feed a function with reserved concurrency 1. Throttled batches stay in
    flight until their visibility timeout, their receive count rises, and the redrive policy
    moves messages the handler never saw fail to the DLQ
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). With
    MaximumConcurrency equal to the reserved concurrency, nothing is throttled."""
    template = {
        "BugDlq": queue("bug-dlq"),
        "BugQueue": queue("bug-q", dlq="bug-dlq", max_receive=1, visibility=2),
        "Bug": consumer(tmp_path, "bug", "bug-q", "sleep", ReservedConcurrentExecutions=1),
        "FixDlq": queue("fix-dlq"),
        "FixQueue": queue("fix-q", dlq="fix-dlq", max_receive=1, visibility=2),
        "Fix": consumer(tmp_path, "fix", "fix-q", "sleep", {"ScalingConfig": {"MaximumConcurrency": 2}},
                        ReservedConcurrentExecutions=2),
    }
    emu = lambda_emulator_factory(template)
    send(emu, "bug-q", [f"bug-{i}" for i in range(50)])
    send(emu, "fix-q", [f"fix-{i}" for i in range(50)])

    def settled(name: str) -> bool:
        return depth(emu, f"{name}-q") == 0 and mapping_stats(emu, name)["BatchesInFlight"] == 0

    assert wait_until(lambda: settled("bug") and settled("fix"), 60.0)
    bug, fix = mapping_stats(emu, "bug"), mapping_stats(emu, "fix")
    functions = emu.metrics()["functions"]
    # the bug: valid messages in the DLQ, throttled batches, and a handler that never failed
    assert depth(emu, "bug-dlq") > 0
    assert bug["BatchesThrottled"] > 0 and bug["Pollers"] >= 5
    assert functions["bug"]["Errors"] == 0 and functions["bug"]["Throttles"] > 0
    assert bug["MessagesDeleted"] + depth(emu, "bug-dlq") == 50
    # the fix: every message processed once, nothing throttled, nothing in the DLQ
    assert depth(emu, "fix-dlq") == 0
    assert fix["MessagesDeleted"] == 50 and fix["BatchesThrottled"] == 0 and fix["Pollers"] == 2
    assert functions["fix"].get("Throttles", 0) == 0


# Held in Init (the cold start), which the function's Timeout does not bound (Init has its
# own 10 s: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html), so
# the batch can outlive a visibility timeout no shorter than that Timeout; bounded below it.
INIT_AT_GATE = """
import os, time
GATE = os.environ["GATE"]
open(os.path.join(GATE, "in-init"), "w").close()
deadline = time.monotonic() + 8
while not os.path.exists(os.path.join(GATE, "open")) and time.monotonic() < deadline:
    time.sleep(0.002)

def handler(event, context):
    return None
"""


def test_a_batch_that_outlives_its_visibility_timeout_is_attributed_when_its_message_is_dead_lettered(
        lambda_emulator_factory: Any, tmp_path: Path) -> None:
    """A message received at its queue's maxReceiveCount whose batch is still running when
    the visibility timeout ends is received again by another poller, and that receive moves
    it to the DLQ. The batch then succeeds, its delete fails (the handle is no longer the
    latest), and the mapping counts the message as DLQ-bound for that reason: every DLQ
    arrival has a cause."""
    gate = Gate(tmp_path / "gate")
    template = {
        "SlowDlq": queue("slow-dlq"),
        "SlowQueue": queue("slow-q", dlq="slow-dlq", max_receive=1, visibility=1),
        "Slow": inline_function(INIT_AT_GATE, FunctionName="slow", Timeout=1, MemorySize=1769,
                                Environment={"Variables": {"GATE": gate.path}},
                                Events={"Source": {"Type": "SQS", "Properties": {"Queue": queue_arn("slow-q")}}}),
    }
    emu = lambda_emulator_factory(template)
    send(emu, "slow-q", ["late"])
    # The batch waits in Init while its visibility timeout runs out and the redrive happens.
    assert wait_until(lambda: gate.arrived() == 1 and depth(emu, "slow-dlq") == 1, WAIT_S)
    assert depth(emu, "slow-q") == 0
    gate.open()
    assert wait_until(lambda: mapping_stats(emu, "slow")["DeleteFailures"] == 1, WAIT_S)
    stats = mapping_stats(emu, "slow")
    assert stats["Invocations"] == 1 and stats["BatchesSucceeded"] == 1 and stats["MessagesDeleted"] == 0
    assert stats["DeadLetterBoundByCause"] == {"VisibilityTimeoutExpired": 1}
    assert stats["MessagesReturnedAtMaxReceiveCount"] == 1
    assert emu.metrics()["functions"]["slow"].get("Errors", 0) == 0


def test_pollers_survive_a_backend_that_dies_and_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The backend (here a moto server the test owns, behind --aws-endpoint) is killed while
    the pollers wait in their long polls: they count the failures, log them once, back off,
    and process what arrives once it answers again. No poller task dies (a dead task is a
    background error, raised when the block ends)."""
    template = {"RestartQueue": queue("restart-q", visibility=2), "Restart": consumer(tmp_path, "restart", "restart-q")}
    with RestartableMoto() as moto, running_emulator(template, aws_endpoint=moto.url) as emu:
        send(emu, "restart-q", ["before"])
        assert wait_until(lambda: mapping_stats(emu, "restart")["MessagesDeleted"] == 1, WAIT_S)
        caplog.clear()
        moto.kill()
        assert wait_until(lambda: mapping_stats(emu, "restart")["BackendErrors"] >= 5, WAIT_S)
        moto.start()
        emu.client("sqs").create_queue(QueueName="restart-q", Attributes={"VisibilityTimeout": "2"})
        send(emu, "restart-q", ["after-1", "after-2"])
        assert wait_until(lambda: mapping_stats(emu, "restart")["MessagesDeleted"] == 3, WAIT_S)
        assert sorted(r["body"] for r in records_of(tmp_path, "restart")) == ["after-1", "after-2", "before"]
        emu.check()
        assert mapping_stats(emu, "restart")["Pollers"] >= 2
        warnings = [r for r in caplog.records if r.name.startswith("emulator.sources") and r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per burst, not once per failed call
        assert "restart-q" in warnings[0].getMessage()
