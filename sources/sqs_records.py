"""The SQS event a function receives, and how its answer is read: exact AWS shapes, pure.

* `sqs_record` turns a ReceiveMessage entry (SQS JSON protocol) into an event record
  (AWS's example event: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html;
  `messageAttributes` entries in the shape real Lambda events show, observed).
* `BatchPayload` builds `{"Records": [...]}` record by record against the 6 MB cap.
* `retry_ids` reads a `ReportBatchItemFailures` answer
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html) and says
  which messages stay on the queue for another try.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# AWS's example event (the with-sqs page above).
EVENT_SOURCE = "aws:sqs"
# The order of the string attributes in AWS's examples (FIFO adds three).
ATTRIBUTE_ORDER = (
    "AWSTraceHeader", "ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId",
    "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp", "DeadLetterQueueSourceArn",
)
# An invocation payload never exceeds 6 MB (the synchronous Invoke limit):
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html
MAX_BATCH_PAYLOAD_BYTES = 6 * 1024 * 1024
_ENVELOPE = (b'{"Records":[', b"]}")


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # The shape real Lambda events show (observed in captured events; AWS's examples carry
    # no attributes): camelCase, both scalar values, empty list values.
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": list(value.get("BinaryListValues") or []),
        "dataType": value.get("DataType"),
    }


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One `Records[]` entry from one ReceiveMessage entry."""
    raw_attributes = message.get("Attributes") or {}
    attributes = {name: str(raw_attributes[name]) for name in ATTRIBUTE_ORDER if name in raw_attributes}
    attributes.update({k: str(v) for k, v in raw_attributes.items() if k not in attributes})
    raw_message_attributes = message.get("MessageAttributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {name: _message_attribute(v) for name, v in raw_message_attributes.items()},
    }
    if raw_message_attributes and message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["md5OfBody"] = message.get("MD5OfBody")
    record["eventSource"] = EVENT_SOURCE
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


@dataclass
class PendingMessage:
    """A received message on its way into a batch, with its serialised record."""

    message_id: str
    receipt_handle: str
    group_id: str | None
    receive_count: int
    record_json: bytes


def pending_message(message: Mapping[str, Any], *, queue_arn: str, region: str) -> PendingMessage:
    return pending_from_record(sqs_record(message, queue_arn=queue_arn, region=region))


def pending_from_record(record: Mapping[str, Any]) -> PendingMessage:
    attributes = record["attributes"]
    return PendingMessage(
        record["messageId"], record["receiptHandle"], attributes.get("MessageGroupId"),
        int(attributes.get("ApproximateReceiveCount", "1")), json.dumps(record).encode(),
    )


@dataclass
class BatchPayload:
    """`{"Records": [...]}` under construction; `fits` keeps it within the 6 MB cap."""

    limit: int = MAX_BATCH_PAYLOAD_BYTES
    messages: list[PendingMessage] = field(default_factory=list)
    size: int = len(_ENVELOPE[0]) + len(_ENVELOPE[1])

    def fits(self, message: PendingMessage) -> bool:
        extra = len(message.record_json) + (1 if self.messages else 0)
        return self.size + extra <= self.limit

    def add(self, message: PendingMessage) -> None:
        self.size += len(message.record_json) + (1 if self.messages else 0)
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)

    def encode(self) -> bytes:
        return _ENVELOPE[0] + b",".join(m.record_json for m in self.messages) + _ENVELOPE[1]


def failed_item_ids(payload: bytes, batch_ids: Sequence[str]) -> frozenset[str] | None:
    """The message ids a `ReportBatchItemFailures` answer marks failed (the error-handling
    page above).

    Empty set: complete success (an empty or null `batchItemFailures`, an empty or null
    response). None: the whole batch failed (invalid JSON; an `itemIdentifier` that is
    empty, null, under another key, or not a message of the batch). A JSON value that is
    not an object (a bare string, number or list) cannot be read as the response shape:
    treated as invalid, which AWS does not document (README, "Choices where AWS is
    ambiguous").
    """
    text = payload.strip()
    if not text:
        return frozenset()
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if body is None:
        return frozenset()
    if not isinstance(body, dict):
        return None
    failures = body.get("batchItemFailures")
    if failures is None:
        return frozenset()
    if not isinstance(failures, list):
        return None
    known = set(batch_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return None
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier or identifier not in known:
            return None
        failed.add(identifier)
    return frozenset(failed)


def retry_ids(order: Sequence[tuple[str, str | None]], failed: frozenset[str], *, fifo: bool) -> frozenset[str]:
    """Which messages stay on the queue after a partial failure. `order`: (message id,
    message group id) in batch order.

    Standard queues: exactly the failed ones. FIFO: the handler's list is honoured group by
    group (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting:
    the function "should stop processing messages after the first failure and return all
    failed and unprocessed messages"); messages of other groups that it reported processed
    are deleted, as on AWS, so they are not delivered twice. Within a group, a message after
    a failed one is kept too even if the answer omits it: deleting it would run it ahead of
    the failed one, breaking the group's order (README, "Choices where AWS is ambiguous").
    """
    if not fifo or not failed:
        return failed
    keep: set[str] = set()
    stopped: set[str | None] = set()  # groups with a failure so far
    for message_id, group in order:
        if message_id in failed:
            stopped.add(group)
        if group in stopped:
            keep.add(message_id)
    return frozenset(keep)
