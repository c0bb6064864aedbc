"""SQS event records, the 6 MB batch cap and the partial batch response rules
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""

from __future__ import annotations

import json

import pytest

from emulator.sources.sqs_records import (
    MAX_BATCH_PAYLOAD_BYTES, BatchPayload, PendingMessage, failed_item_ids, pending_message, retry_ids, sqs_record,
)

ARN = "arn:aws:sqs:us-east-2:123456789012:my-queue"
IDS = ["id1", "id2", "id3", "id4"]


def receive_entry(**extra: object) -> dict:
    entry = {
        "MessageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "MD5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "Body": "Test message.",
        "Attributes": {"SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185",
                       "ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
    }
    entry.update(extra)
    return entry


def test_record_matches_the_documented_example():
    # AWS's example event (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), field for field and in order
    assert json.dumps(sqs_record(receive_entry(), queue_arn=ARN, region="us-east-2")) == json.dumps({
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": "Test message.",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"},
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-2",
    })


def test_message_attributes_take_lambdas_shape_and_add_their_md5():
    entry = receive_entry(MessageAttributes={"n": {"DataType": "Number", "StringValue": "7"}},
                          MD5OfMessageAttributes="abc")
    record = sqs_record(entry, queue_arn=ARN, region="us-east-2")
    assert record["messageAttributes"] == {"n": {"stringValue": "7", "binaryValue": None, "stringListValues": [],
                                                 "binaryListValues": [], "dataType": "Number"}}
    assert record["md5OfMessageAttributes"] == "abc"
    assert list(record).index("md5OfMessageAttributes") == list(record).index("messageAttributes") + 1


def test_fifo_attributes_follow_the_documented_order():
    attributes = {"MessageDeduplicationId": "1", "MessageGroupId": "1", "SequenceNumber": "18849496460467696128",
                  "SenderId": "S", "SentTimestamp": "1", "ApproximateReceiveCount": "1",
                  "ApproximateFirstReceiveTimestamp": "2"}
    record = sqs_record(receive_entry(Attributes=attributes), queue_arn=ARN + ".fifo", region="us-east-2")
    assert list(record["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId",
                                          "SenderId", "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp"]


def test_batch_payload_is_the_records_envelope_and_respects_the_cap():
    small = pending_message(receive_entry(), queue_arn=ARN, region="us-east-2")
    payload = BatchPayload()
    payload.add(small)
    payload.add(small)
    encoded = payload.encode()
    assert len(encoded) == payload.size
    assert json.loads(encoded)["Records"][1]["body"] == "Test message."
    big = PendingMessage("big", "h", None, 1, b"x" * (MAX_BATCH_PAYLOAD_BYTES - payload.size))
    assert not payload.fits(big)
    assert BatchPayload().fits(PendingMessage("big", "h", None, 1, b"x" * (MAX_BATCH_PAYLOAD_BYTES - 20)))


@pytest.mark.parametrize("payload", [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}',
                                     b'{"statusCode": 200}'])
def test_complete_success(payload):
    assert failed_item_ids(payload, IDS) == frozenset()


@pytest.mark.parametrize("payload", [
    b"not json",
    b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
    b'{"batchItemFailures": [{"itemIdentifier": null}]}',
    b'{"batchItemFailures": [{"itemIdentifer": "id2"}]}',  # a bad key name
    b'{"batchItemFailures": [{"itemIdentifier": "id9"}]}',  # not in the batch
    b'{"batchItemFailures": [{"itemIdentifier": "id2"}, {"itemIdentifier": "id9"}]}',
    b'{"batchItemFailures": "id2"}',
    b'"ok"',
])
def test_complete_failure(payload):
    assert failed_item_ids(payload, IDS) is None


def test_partial_failure_names_the_failed_messages():
    payload = b'{"batchItemFailures": [{"itemIdentifier": "id2"}, {"itemIdentifier": "id4"}]}'
    assert failed_item_ids(payload, IDS) == {"id2", "id4"}


def test_standard_queue_retries_only_the_failed():
    assert retry_ids([(i, None) for i in IDS], frozenset({"id2", "id4"}), fifo=False) == {"id2", "id4"}


def test_fifo_queue_retries_from_the_first_failure_on_within_one_group():
    one_group = [(i, "g") for i in IDS]
    assert retry_ids(one_group, frozenset({"id2"}), fifo=True) == {"id2", "id3", "id4"}
    assert retry_ids(one_group, frozenset(), fifo=True) == frozenset()


def test_fifo_queue_deletes_what_other_groups_processed():
    """Powertools' SqsFifoPartialProcessor(skip_group_on_error=True) reports the failed
    group's messages only: the other group's must not come back."""
    order = [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A")]
    assert retry_ids(order, frozenset({"a2", "a3"}), fifo=True) == {"a2", "a3"}
    # A later message of a failed group stays even when the answer leaves it out.
    assert retry_ids(order, frozenset({"a1"}), fifo=True) == {"a1", "a2", "a3"}
    assert retry_ids(order, frozenset({"b1", "a3"}), fifo=True) == {"b1", "b2", "a3"}
