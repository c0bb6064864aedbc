"""Helpers for the event-source scenario tests (SQS, Kinesis, DynamoDB Streams, SNS fan-out):
functions that append every event they receive to a file, reading those files back, queues in a
template, and event source mappings seen through the Lambda API and the emulator's metrics.

A recording function writes each event as one JSON line with a single O_APPEND write, so
concurrent invocations never interleave their lines; the test then sees exactly what the
function saw, in the order it saw it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function

REGION, ACCOUNT = "us-east-1", "123456789012"

# Handler code: `append_event(event)` writes the event to the file named by $OUT.
APPEND_EVENT = """
import json, os

def append_event(event):
    line = (json.dumps(event) + "\\n").encode()
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
"""

# A function that records every event and does nothing else.
RECORDER = APPEND_EVENT + """
def handler(event, context):
    append_event(event)
"""

# A stream consumer (Kinesis or DynamoDB Streams) that records every event, then behaves as
# $MODE says: "poison" fails a batch holding a record named "poison"; "partial" reports each
# record named "flaky…" as failed the first time it sees it; "slow" takes 30 ms. A record's
# name is its data (Kinesis) or its image's `name` attribute (DynamoDB).
STREAM_RECORDER = APPEND_EVENT + """
import base64, time

def name_of(record):
    if "kinesis" in record:
        return base64.b64decode(record["kinesis"]["data"]).decode()
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    return image.get("name", {}).get("S", "")

def sequence_number_of(record):
    if "kinesis" in record:
        return record["kinesis"]["sequenceNumber"]
    return record["dynamodb"]["SequenceNumber"]

def handler(event, context):
    append_event(event)
    names = [name_of(r) for r in event["Records"]]
    mode = os.environ.get("MODE", "")
    if mode == "poison" and "poison" in names:
        raise ValueError("cannot handle the poison record")
    if mode == "partial":
        failures = []
        for record, name in zip(event["Records"], names):
            marker = os.environ["OUT"] + "." + name
            if name.startswith("flaky") and not os.path.exists(marker):
                open(marker, "w").close()
                failures.append({"itemIdentifier": sequence_number_of(record)})
        return {"batchItemFailures": failures}
    if mode == "slow":
        time.sleep(0.03)
    return None
"""


def recorder(out: Path, name: str, **properties: Any) -> dict[str, Any]:
    """The function `name` running RECORDER, recording to `out/<name>.jsonl` (read by events_of)."""
    return inline_function(RECORDER, FunctionName=name, Environment={"Variables": {"OUT": str(out / f"{name}.jsonl")}},
                           **properties)


def stream_recorder(out: Path, mode: str = "", **properties: Any) -> dict[str, Any]:
    """A function resource running STREAM_RECORDER, recording to the file `out`."""
    return inline_function(STREAM_RECORDER, Environment={"Variables": {"OUT": str(out), "MODE": mode}}, **properties)


# -- reading what a function recorded ------------------------------------------------------------
def events_in(path: Path) -> list[dict[str, Any]]:
    """Every event recorded in `path`, in the order the function received them."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def records_in(path: Path) -> list[dict[str, Any]]:
    return [record for event in events_in(path) for record in event["Records"]]


def events_of(out: Path, name: str) -> list[dict[str, Any]]:
    """The events of the function `name` that records to `out/<name>.jsonl`."""
    return events_in(out / f"{name}.jsonl")


def records_of(out: Path, name: str) -> list[dict[str, Any]]:
    return records_in(out / f"{name}.jsonl")


# -- queues ------------------------------------------------------------------------------------
def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def queue(name: str, *, visibility: int = 30, dlq: str | None = None, max_receive: int = 1,
          fifo: bool = False) -> dict[str, Any]:
    """An AWS::SQS::Queue resource; `dlq` names its dead-letter queue. The visibility timeout's
    default is SQS's own (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html)."""
    props: dict[str, Any] = {"QueueName": name, "VisibilityTimeout": visibility}
    if dlq:
        props["RedrivePolicy"] = {"deadLetterTargetArn": queue_arn(dlq), "maxReceiveCount": max_receive}
    if fifo:
        props.update(FifoQueue=True, ContentBasedDeduplication=True)
    return {"Type": "AWS::SQS::Queue", "Properties": props}


def queue_url(emu: EmulatorHandle, name: str) -> str:
    return emu.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def depth(emu: EmulatorHandle, name: str) -> int:
    """Every message still on the queue: visible, in flight or delayed."""
    attributes = emu.client("sqs").get_queue_attributes(QueueUrl=queue_url(emu, name), AttributeNames=["All"])["Attributes"]
    return sum(int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                            "ApproximateNumberOfMessagesDelayed"))


def the_one_message(emu: EmulatorHandle, name: str, wait_s: float) -> Any:
    """The JSON body of the one message that arrives on the queue (an on-failure record)."""
    sqs = emu.client("sqs")
    url = queue_url(emu, name)
    messages = wait_until(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"), wait_s)
    assert messages and len(messages) == 1
    return json.loads(messages[0]["Body"])


# -- event source mappings ---------------------------------------------------------------------
def create_mapping(emu: EmulatorHandle, function: str, source_arn: str, wait_s: float, **settings: Any) -> str:
    """A stream mapping (from TRIM_HORIZON unless `settings` say otherwise), once it is Enabled."""
    answer = emu.lambda_client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=source_arn, **{"StartingPosition": "TRIM_HORIZON", **settings}
    )
    uuid = answer["UUID"]
    assert wait_until(lambda: mapping_state(emu, uuid) == "Enabled", wait_s)
    return uuid


def mapping_state(emu: EmulatorHandle, uuid: str) -> str:
    return emu.lambda_client.get_event_source_mapping(UUID=uuid)["State"]


def esm_metrics(emu: EmulatorHandle, uuid: str) -> dict[str, Any]:
    return emu.metrics()["event_source_mappings"][uuid]


def mapping_for(emu: EmulatorHandle, function: str) -> str:
    """The UUID of the function's one mapping."""
    found = emu.lambda_client.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    assert len(found) == 1
    return found[0]["UUID"]
