"""The poller of a DynamoDB Streams event source mapping (plugged into sources/base.py by name).

Lambda runs a DynamoDB stream mapping as it runs a Kinesis one (the same parameters,
retries, bisecting, partial batch responses and on-failure destinations:
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html), so this module only supplies a
`StreamSource` to the shared machinery (sources/kinesis_poller.py, sources/kinesis_shard.py):

- "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per
  second" (the page above): a 0.25 s poll interval, which is also the retry delay of a
  failed batch (README, "Choices where AWS is ambiguous");
- GetRecords returns at most 1,000 records (1 MB)
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html);
  no per-shard read rate is documented beyond "no more than two processes ... from the
  same shard", so no read limit is applied;
- the event record is the stream record as GetRecords returns it plus `eventSourceARN`
  (the example event on the page above); the lanes of a ParallelizationFactor are split by
  the item's partition key, so the changes of one item (and of one partition key) stay in
  order, as with Kinesis partition keys;
- the on-failure record describes the batch under `DDBStreamBatchInfo`
  (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html).

A stream ARN names its table's stream whatever its label (the label is the stream's
creation time, which a template's `Fn::GetAtt Table.StreamArn` cannot know); records carry
the mapping's EventSourceArn, as on AWS where the two are the same.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from emulator.backend.client import BackendError
from emulator.sources.base import PollerContext
from emulator.sources.kinesis_batching import ShardPosition
from emulator.sources.kinesis_poller import StreamMappingPoller, stream_shared
from emulator.sources.kinesis_records import EventContext, StreamRecord
from emulator.sources.mapping import EventSourceMapping
from emulator.sources.stream_source import ShardRead

log = logging.getLogger("emulator.sources.dynamodb")

# https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html: 4 polls per second.
POLL_INTERVAL_S = 0.25
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html
MAX_RECORDS_PER_GET_RECORDS = 1000
# DescribeStream returns at most 100 shards per call (the same reference, DescribeStream's Limit).
DESCRIBE_STREAM_LIMIT = 100
# Errors after which the reader takes a new iterator
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html#API_streams_GetRecords_Errors).
EXPIRED_ITERATOR = "ExpiredIteratorException"
TRIMMED_DATA = "TrimmedDataAccessException"


def event_record(raw: dict[str, Any], stream_arn: str, key_attribute: str | None) -> StreamRecord:
    """A GetRecords record as the function receives it, with the partition key it is laned by."""
    stream = raw.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    partition = keys.get(key_attribute) if key_attribute else None
    lane_key = json.dumps(partition if partition is not None else keys, sort_keys=True, separators=(",", ":"))
    entry = {**raw, "eventSourceARN": stream_arn}
    return StreamRecord(str(stream.get("SequenceNumber", "")), lane_key,
                        float(stream.get("ApproximateCreationDateTime") or 0.0),
                        json.dumps(entry, separators=(",", ":")))


class DynamoDBStreamSource:
    """DynamoDB Streams behind the shard workers (sources/stream_source.py)."""

    name = "dynamodb"
    poll_interval_s = POLL_INTERVAL_S
    max_records_per_call = MAX_RECORDS_PER_GET_RECORDS
    batch_info_key = "DDBStreamBatchInfo"
    expired_iterator_codes = frozenset({EXPIRED_ITERATOR, TRIMMED_DATA})

    def __init__(self, context: PollerContext, mapping: EventSourceMapping) -> None:
        self.backend = context.backend
        self.stream_arn = mapping.event_source_arn
        self.settings = mapping.settings
        self.key_attribute: str | None = None

    async def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.backend.dynamodb_streams(action, body)

    async def list_shards(self) -> list[str]:
        shards: list[str] = []
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "Limit": DESCRIBE_STREAM_LIMIT}
        while True:
            description = (await self._call("DescribeStream", request))["StreamDescription"]
            for key in description.get("KeySchema") or []:
                if key.get("KeyType") == "HASH":
                    self.key_attribute = key.get("AttributeName")
            shards += [shard["ShardId"] for shard in description.get("Shards") or []]
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    async def shard_iterator(self, shard_id: str, position: ShardPosition | None) -> str:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if position is None:
            request["ShardIteratorType"] = self.settings.starting_position or "LATEST"
        else:
            request.update(ShardIteratorType=position.iterator_type, SequenceNumber=position.sequence_number)
        try:
            return (await self._call("GetShardIterator", request))["ShardIterator"]
        except BackendError as error:
            if error.code != TRIMMED_DATA or position is None:
                raise
        # The position is older than the stream keeps (24 hours): those records are gone, as
        # they are on AWS; go on from the oldest record kept.
        log.warning("dynamodb stream %s, %s: records after %s were trimmed before they were read; continuing from "
                    "the oldest record kept", self.stream_arn, shard_id, position.sequence_number)
        request = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
        return (await self._call("GetShardIterator", request))["ShardIterator"]

    async def get_records(self, shard_id: str, iterator: str, limit: int, started: float) -> ShardRead:
        result = await self._call("GetRecords", {"ShardIterator": iterator, "Limit": limit})
        return ShardRead(result.get("Records") or [], result.get("NextShardIterator"))

    def may_read(self, shard_id: str, now: float) -> float | None:
        return None

    def to_record(self, raw: Any, context: EventContext) -> StreamRecord:
        return event_record(raw, self.stream_arn, self.key_attribute)


def create_poller(context: PollerContext, mapping: EventSourceMapping) -> StreamMappingPoller:
    shared = stream_shared(context, DynamoDBStreamSource.name)
    return StreamMappingPoller(context, mapping, DynamoDBStreamSource(context, mapping), shared)
