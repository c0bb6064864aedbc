"""emulator.sources.kinesis_records: the event and on-failure shapes
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html,
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html)."""

from __future__ import annotations

import json
import math

from emulator.sources.kinesis_records import (
    EventContext,
    LastAttempt,
    event_payload,
    iso_millis,
    on_failure_record,
    stream_record,
)
from emulator.sources.kinesis_shard import emulated_arrival_mapper

CONTEXT = EventContext(
    stream_arn="arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
    shard_id="shardId-000000000006",
    region="us-east-2",
    invoke_identity_arn="arn:aws:iam::123456789012:role/lambda-role",
)
RAW = {
    "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
    "ApproximateArrivalTimestamp": 1545084650.987,
    "Data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
    "PartitionKey": "1",
}


def test_the_event_record_is_the_documented_example() -> None:
    record = stream_record(RAW, CONTEXT)
    assert json.loads(event_payload([record])) == {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
                    "approximateArrivalTimestamp": 1545084650.987},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-2",
        "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
    }]}


def test_payload_size_is_the_sum_of_its_records() -> None:
    records = [stream_record({**RAW, "SequenceNumber": str(n)}, CONTEXT) for n in range(3)]
    payload = event_payload(records)
    assert len(payload) == len('{"Records":[]}') + sum(len(r.event_json) for r in records) + 2
    assert [r["kinesis"]["sequenceNumber"] for r in json.loads(payload)["Records"]] == ["0", "1", "2"]


def test_the_on_failure_record_describes_the_batch_without_its_data() -> None:
    first = stream_record({**RAW, "SequenceNumber": "100", "ApproximateArrivalTimestamp": 1573691884.835}, CONTEXT)
    last = stream_record({**RAW, "SequenceNumber": "200", "ApproximateArrivalTimestamp": 1573691885.58}, CONTEXT)
    record = on_failure_record(
        [first, last], context=CONTEXT, function_arn="arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        condition="RetryAttemptsExhausted", invoke_count=3, last=LastAttempt(200, "Unhandled", "$LATEST"),
        now_wall=1573691886.021, request_id="c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
    )
    assert record == {
        "requestContext": {"requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
                           "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2019-11-14T00:38:06.021Z",
        "KinesisBatchInfo": {"shardId": "shardId-000000000006", "startSequenceNumber": "100",
                             "endSequenceNumber": "200",
                             "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
                             "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
                             "batchSize": 2,
                             "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"},
    }
    assert "data" not in json.dumps(record)


def test_a_throttled_last_attempt_has_no_function_error() -> None:
    record = on_failure_record(
        [stream_record(RAW, CONTEXT)], context=CONTEXT, function_arn="arn", condition="RecordAgeExceeded",
        invoke_count=0, last=LastAttempt(429), now_wall=0.0,
    )
    assert record["responseContext"] == {"statusCode": 429, "executedVersion": "$LATEST"}


def test_iso_millis() -> None:
    assert iso_millis(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_millis(1573691884.835) == "2019-11-14T00:38:04.835Z"


def test_arrivals_move_to_the_emulated_timeline_at_its_scale() -> None:
    # emulated wall 5,000 when the real wall read 1,000, ten times faster
    to_emulated = emulated_arrival_mapper(clock_wall=5_000.0, real_wall=1_000.0, scale=10.0)
    assert to_emulated(1_000.0) == 5_000.0
    assert to_emulated(994.0) == 4_940.0  # arrived 6 real seconds ago: 60 emulated seconds old
    identity = emulated_arrival_mapper(clock_wall=5_000.0, real_wall=1_000.0, scale=math.inf)
    assert identity(123.0) == 123.0
