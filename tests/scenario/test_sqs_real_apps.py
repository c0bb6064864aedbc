"""Event-source behaviours real code depends on (issue 10), through boto3: FIFO partial
batch responses honoured per message group (with AWS Lambda Powertools' own
SqsFifoPartialProcessor), the visibility-timeout rule of CreateEventSourceMapping,
DeadLetterQueueSourceArn and message move tasks (DLQ redrive), FIFO SequenceNumbers, and
SNS's SignatureVersion in the envelopes it delivers to SQS.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import wait_until
from source_testkit import ACCOUNT, REGION, depth, queue_arn, queue_url
from source_testkit import queue as sqs_queue
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

WAIT_S = 30.0

POWERTOOLS_FIFO = """
import os
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

processor = SqsFifoPartialProcessor(skip_group_on_error=True)

def record_handler(record):
    if record.body.startswith("bad"):
        raise ValueError("cannot process " + record.body)
    with open(os.environ["OUT"], "a") as out:
        out.write(record.body + "\\n")

def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
"""
RECORDER = """
import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            out.write(json.dumps(record) + "\\n")
    if any(r["body"].startswith("poison") for r in event["Records"]):
        raise ValueError("poison")
"""


# Short visibility timeouts unless a test says otherwise: a failed message comes back within a second.
queue = functools.partial(sqs_queue, visibility=1)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-apps")


@pytest.fixture(scope="module")
def emu(out: Path) -> Iterator[EmulatorHandle]:
    template = {
        "GroupsDlq": queue("groups-dlq.fifo", fifo=True),
        "Groups": queue("groups.fifo", dlq="groups-dlq.fifo", max_receive=2, fifo=True),
        "Powertools": inline_function(POWERTOOLS_FIFO, FunctionName="powertools-fifo", Timeout=1,
                                      Environment={"Variables": {"OUT": str(out / "powertools.txt")}}),
        "RedriveDlq": queue("redrive-dlq"),
        "Redrive": queue("redrive-q", dlq="redrive-dlq", max_receive=1),
        "Recorder": inline_function(RECORDER, FunctionName="recorder", Timeout=1,
                                    Environment={"Variables": {"OUT": str(out / "recorder.jsonl")}},
                                    Events={"Q": {"Type": "SQS", "Properties": {"Queue": queue_arn("redrive-q")}}}),
        "ManualDlq": queue("manual-dlq"),
        "ManualSource": queue("manual-src", dlq="manual-dlq", max_receive=1),
        "Ordered": queue("ordered.fifo", fifo=True, visibility=30),
        "Slow": inline_function(RECORDER, FunctionName="slow", Timeout=60),
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "notices"}},
        "Inbox": queue("inbox", visibility=30),
        "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": queue_arn("inbox")}},
    }
    with running_emulator(template) as handle:
        yield handle


def test_fifo_partial_failures_are_honoured_per_message_group(emu: EmulatorHandle, out: Path) -> None:
    """Group A's first message fails; Powertools skips the rest of group A and processes
    group B. Group B's messages are processed exactly once (before the fix, everything after
    the first failure came back, so b1 and b2 ran again)."""
    sqs = emu.client("sqs")
    entries = [("bad-a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")]
    sqs.send_message_batch(QueueUrl=queue_url(emu, "groups.fifo"), Entries=[
        {"Id": str(i), "MessageBody": body, "MessageGroupId": group} for i, (body, group) in enumerate(entries)])
    lam = emu.lambda_client
    lam.create_event_source_mapping(FunctionName="powertools-fifo", EventSourceArn=queue_arn("groups.fifo"), BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    assert wait_until(lambda: depth(emu, "groups-dlq.fifo") == 2 and depth(emu, "groups.fifo") == 0, WAIT_S)
    processed = (out / "powertools.txt").read_text().splitlines()
    assert sorted(processed) == ["b1", "b2"]


def test_a_mapping_on_a_queue_with_a_shorter_visibility_timeout_is_refused(emu: EmulatorHandle) -> None:
    with pytest.raises(ClientError) as excinfo:
        emu.lambda_client.create_event_source_mapping(FunctionName="slow", EventSourceArn=queue_arn("ordered.fifo"))
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValueException", "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds")


def test_a_template_mapping_with_a_shorter_visibility_timeout_stops_start_up(tmp_path: Path) -> None:
    template = {
        "Short": queue("short-q", visibility=5),
        "Fn": inline_function(RECORDER, Timeout=10, Events={"Q": {"Type": "SQS", "Properties": {"Queue": queue_arn("short-q")}}}),
    }
    with pytest.raises(Exception) as excinfo:
        with running_emulator(template):
            pass
    assert "Queue visibility timeout: 5 seconds is less than Function timeout: 10 seconds" in str(excinfo.value)


def test_redriven_messages_carry_their_source_and_a_move_task_returns_them(emu: EmulatorHandle) -> None:
    sqs = emu.client("sqs")
    source = queue_url(emu, "manual-src")
    sqs.send_message(QueueUrl=source, MessageBody="poison-1")
    assert sqs.receive_message(QueueUrl=source)["Messages"]  # its one receive (maxReceiveCount 1)
    # Once visible again (1 s), the next receive moves it to the DLQ instead of returning it.
    assert wait_until(lambda: not sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1).get("Messages")
                      and depth(emu, "manual-dlq") == 1, WAIT_S)
    [moved] = sqs.receive_message(QueueUrl=queue_url(emu, "manual-dlq"), MessageSystemAttributeNames=["All"],
                                  VisibilityTimeout=0)["Messages"]
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn("manual-src")
    named = sqs.receive_message(QueueUrl=queue_url(emu, "manual-dlq"), VisibilityTimeout=0,
                                MessageSystemAttributeNames=["DeadLetterQueueSourceArn"])["Messages"]
    assert named[0]["Attributes"] == {"DeadLetterQueueSourceArn": queue_arn("manual-src")}
    task = sqs.start_message_move_task(SourceArn=queue_arn("manual-dlq"))
    assert task["TaskHandle"]

    def finished() -> dict[str, Any] | None:
        [result] = sqs.list_message_move_tasks(SourceArn=queue_arn("manual-dlq"))["Results"]
        return result if result["Status"] == "COMPLETED" else None

    result = wait_until(finished, WAIT_S)
    assert result and result["ApproximateNumberOfMessagesMoved"] == 1 and result["ApproximateNumberOfMessagesToMove"] == 1
    assert "TaskHandle" not in result and result["SourceArn"] == queue_arn("manual-dlq")
    assert depth(emu, "manual-dlq") == 0
    [back] = sqs.receive_message(QueueUrl=source, MessageSystemAttributeNames=["All"])["Messages"]
    assert back["Body"] == "poison-1" and back["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "DeadLetterQueueSourceArn" not in back["Attributes"]


def test_a_redriven_batch_reaches_the_dlq_with_its_source(emu: EmulatorHandle, out: Path) -> None:
    """The same through a Lambda consumer: the failed message is moved by the redrive policy."""
    emu.client("sqs").send_message(QueueUrl=queue_url(emu, "redrive-q"), MessageBody="poison-2")
    assert wait_until(lambda: depth(emu, "redrive-dlq") == 1, WAIT_S)
    [moved] = emu.client("sqs").receive_message(QueueUrl=queue_url(emu, "redrive-dlq"), MessageSystemAttributeNames=["All"],
                                                VisibilityTimeout=0)["Messages"]
    assert moved["Body"] == "poison-2" and moved["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn("redrive-q")


def test_message_move_tasks_answer_sqs_errors(emu: EmulatorHandle) -> None:
    sqs = emu.client("sqs")
    with pytest.raises(ClientError) as excinfo:
        sqs.start_message_move_task(SourceArn=queue_arn("inbox"))
    assert excinfo.value.response["Error"]["Message"] == "Source queue must be configured as a Dead Letter Queue."
    with pytest.raises(ClientError) as excinfo:
        sqs.start_message_move_task(SourceArn=queue_arn("no-such-queue"))
    assert excinfo.value.response["Error"]["Code"] in ("ResourceNotFoundException", "ResourceNotFound")
    with pytest.raises(ClientError):
        sqs.cancel_message_move_task(TaskHandle="not-a-task")


def test_fifo_sequence_numbers_on_send_and_in_records(emu: EmulatorHandle, out: Path) -> None:
    sqs = emu.client("sqs")
    first = sqs.send_message(QueueUrl=queue_url(emu, "ordered.fifo"), MessageBody="one", MessageGroupId="g")
    second = sqs.send_message_batch(QueueUrl=queue_url(emu, "ordered.fifo"), Entries=[
        {"Id": "1", "MessageBody": "two", "MessageGroupId": "g"}])["Successful"][0]
    numbers = [first["SequenceNumber"], second["SequenceNumber"]]
    assert all(n.isdigit() and len(n) == 20 for n in numbers) and int(numbers[0]) < int(numbers[1])
    received = sqs.receive_message(QueueUrl=queue_url(emu, "ordered.fifo"), MaxNumberOfMessages=10,
                                   MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Attributes"]["SequenceNumber"] for m in received] == numbers


def test_sns_envelopes_delivered_to_sqs_use_signature_version_1(emu: EmulatorHandle) -> None:
    sns, sqs = emu.client("sns"), emu.client("sqs")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:notices"
    sns.publish(TopicArn=topic, Message="hello", Subject="greeting")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=topic, Message="hello again")
    bodies = wait_until(lambda: (m := sqs.receive_message(QueueUrl=queue_url(emu, "inbox"), MaxNumberOfMessages=10)
                                 .get("Messages", [])) and len(m) == 2 and m, WAIT_S)
    envelopes = sorted((json.loads(m["Body"]) for m in bodies), key=lambda e: e["Message"])
    assert [(e["Message"], e["SignatureVersion"]) for e in envelopes] == [("hello", "1"), ("hello again", "2")]
    assert envelopes[0]["Type"] == "Notification" and envelopes[0]["Subject"] == "greeting"
