"""The Kinesis event a function receives and the on-failure record: exact AWS shapes.

Event records follow AWS's example event
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html); the on-failure record
with its `KinesisBatchInfo` follows AWS's example record
(https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html),
without the records themselves (SQS and SNS destinations).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Constant fields of every Kinesis event record (the example event, with-kinesis page above).
KINESIS_SCHEMA_VERSION = "1.0"
EVENT_SOURCE = "aws:kinesis"
EVENT_VERSION = "1.0"
EVENT_NAME = "aws:kinesis:record"
# Version of the on-failure record (the example record, on-failure page above).
ON_FAILURE_RECORD_VERSION = "1.0"


@dataclass(frozen=True)
class StreamRecord:
    """One record as GetRecords returned it, ready to be sent to a function.

    `event_json` is the record's serialised event entry, built once when read so that the
    6 MB batch cap is exact and batches cost a join.
    """

    sequence_number: str
    partition_key: str
    arrival: float  # ApproximateArrivalTimestamp, epoch seconds as Kinesis stored it
    event_json: str


@dataclass(frozen=True)
class EventContext:
    """What every record of a mapping shares."""

    stream_arn: str
    shard_id: str
    region: str
    invoke_identity_arn: str


def stream_record(raw: dict[str, Any], context: EventContext) -> StreamRecord:
    """A GetRecords entry (Data already base64 on the JSON wire) as an event record."""
    sequence = str(raw["SequenceNumber"])
    arrival = float(raw["ApproximateArrivalTimestamp"])
    entry = {
        "kinesis": {
            "kinesisSchemaVersion": KINESIS_SCHEMA_VERSION,
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence,
            "data": raw["Data"],
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": EVENT_SOURCE,
        "eventVersion": EVENT_VERSION,
        "eventID": f"{context.shard_id}:{sequence}",
        "eventName": EVENT_NAME,
        "invokeIdentityArn": context.invoke_identity_arn,
        "awsRegion": context.region,
        "eventSourceARN": context.stream_arn,
    }
    return StreamRecord(sequence, raw["PartitionKey"], arrival, json.dumps(entry, separators=(",", ":")))


def event_payload(records: Sequence[StreamRecord]) -> bytes:
    return ('{"Records":[' + ",".join(record.event_json for record in records) + "]}").encode()


def iso_millis(epoch: float) -> str:
    """2019-11-14T00:38:06.021Z, the timestamp format of the on-failure record."""
    seconds, millis = divmod(round(epoch * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass(frozen=True)
class LastAttempt:
    """What the last invocation of a failed batch returned, for `responseContext`."""

    status_code: int = 200
    function_error: str | None = None
    executed_version: str = "$LATEST"


def on_failure_record(
    records: Sequence[StreamRecord],
    *,
    context: EventContext,
    function_arn: str,
    condition: str,
    invoke_count: int,
    last: LastAttempt,
    now_wall: float,
    request_id: str | None = None,
    batch_info_key: str = "KinesisBatchInfo",
) -> dict[str, Any]:
    """The record sent to `DestinationConfig.OnFailure`; a DynamoDB stream's describes its
    batch under `DDBStreamBatchInfo`, with the same fields
    (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)."""
    response: dict[str, Any] = {"statusCode": last.status_code, "executedVersion": last.executed_version}
    if last.function_error:
        response["functionError"] = last.function_error
    return {
        "requestContext": {
            "requestId": request_id or str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": ON_FAILURE_RECORD_VERSION,
        "timestamp": iso_millis(now_wall),
        batch_info_key: {
            "shardId": context.shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": iso_millis(records[0].arrival),
            "approximateArrivalOfLastRecord": iso_millis(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": context.stream_arn,
        },
    }
