"""moto's Kinesis shard with its records in a ShardStore, and the stream operations on it
(imported only inside moto's process).

`FastShard` subclasses moto 5.2's `Shard`: hash-key ranges, parents, `is_open` and the
shard id stay moto's; the records live in a `ShardStore` (emulator/moto_child/kinesis_store.py)
and moto's `records` dict becomes a view of it, built on demand (only moto's resharding
reads it). The operations below serve both moto's own request path (as replacements of
`KinesisBackend` and `Stream` methods, returned by `backend_methods` / `stream_methods`)
and the short path of emulator/moto_child/kinesis_wire.py, which calls them directly.

Where moto and AWS differ, these follow AWS (the list, with sources, is in
emulator/moto_child/fast_kinesis.py). Every access to a shard's records holds
`STREAMS_LOCK`: one lock for every stream, as moto is GIL-bound anyway, and a put draws its
sequence numbers and appends them under it, so they increase in each shard.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends
from moto.core.exceptions import JsonRESTError
from moto.kinesis import models
from moto.kinesis.exceptions import (
    InvalidArgumentError,
    RecordSizeExceedsLimit,
    ResourceNotFoundError,
    ShardNotFoundError,
    TooManyRecords,
    TotalRecordsSizeExceedsLimit,
)

from emulator.moto_child.kinesis_store import (
    DEFAULT_RETENTION_HOURS,
    MAX_RECORDS_PER_GET,
    SEQUENCE_NUMBER_BASE,
    HashRanges,
    Page,
    SequenceCounter,
    ShardIterator,
    ShardStore,
    StoredRecord,
    decode_shard_iterator,
    format_sequence_number,
    parse_hash_key,
    parse_sequence_number,
    partition_hash,
)

STREAMS_LOCK = threading.RLock()
SEQUENCES = SequenceCounter()

# moto's own limits on PutRecords (moto/kinesis/models.py put_records), kept: 500 records,
# 1 MiB per record and 5 MiB per request, data plus partition key.
MAX_RECORDS_PER_PUT = 500
MAX_RECORD_BYTES = 1_048_576
MAX_PUT_BYTES = 5_242_880
MAX_PARTITION_KEY_LENGTH = 256
# https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html: stream-level
# metrics (IncomingBytes, IncomingRecords) have one-minute granularity.
METRIC_PERIOD_MS = 60_000
METRIC_NAMESPACE = "AWS/Kinesis"


def now_ms() -> int:
    return int(time.time() * 1000)


class ExpiredIteratorError(JsonRESTError):
    """https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html#API_GetRecords_Errors"""

    def __init__(self, iterator: ShardIterator, now: int) -> None:
        super().__init__(
            "ExpiredIteratorException",
            f"Iterator expired. The iterator was created at time {_aws_time(iterator.issued_ms)} while right now it is "
            f"{_aws_time(now)} which is further in the future than the tolerated delay of 300000 milliseconds.",
        )


class KinesisValidationError(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class SerializationError(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("SerializationException", message)


def _aws_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")


def _naive_utc(ms: int) -> datetime:
    # moto's timestamps are naive UTC datetimes (moto.core.utils.utcnow).
    return datetime.fromtimestamp(ms / 1000, timezone.utc).replace(tzinfo=None)


# -- the shard -------------------------------------------------------------------------------------
class FastShard(models.Shard):
    @property
    def store(self) -> ShardStore:
        return self.__dict__["_fast_store"]

    @property  # type: ignore[override]
    def records(self) -> OrderedDict[int, Any]:
        """moto's view: sequence number -> moto `Record`, oldest first (built on demand)."""
        with STREAMS_LOCK:
            return OrderedDict((r.sequence, _moto_record(r)) for r in self.store)

    @records.setter
    def records(self, records: Mapping[int, Any]) -> None:
        # Shard.__init__ assigns an empty dict; moto's SplitShard empties a shard this way.
        with STREAMS_LOCK:
            if "_fast_store" not in self.__dict__:
                self.__dict__["_fast_store"] = ShardStore(SEQUENCES.take())
            self.store.clear()
            for record in records.values():
                self.put_record(record.partition_key, record.data, record.explicit_hash_key)

    def put_record(self, partition_key: str, data: str, explicit_hash_key: str) -> str:
        """moto's Shard.put_record (data base64, as moto keeps it)."""
        blob = base64.b64decode(data or "")
        with STREAMS_LOCK:
            sequence = SEQUENCES.take()
            self.store.append(sequence, partition_key, blob, now_ms(), explicit_hash_key or None)
        return format_sequence_number(sequence)

    def get_records(self, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        after = parse_sequence_number(str(last_sequence_id))
        with STREAMS_LOCK:
            page = self.store.read(self.store.starting_sequence if after is None else after,
                                   limit or MAX_RECORDS_PER_GET, now_ms())
        return [_moto_record(r) for r in page.records], format_sequence_number(page.after), page.millis_behind_latest  # type: ignore[return-value]

    def get_min_sequence_number(self) -> int:
        return int(format_sequence_number(self.store.starting_sequence))

    def get_max_sequence_number(self) -> int:
        with STREAMS_LOCK:
            return int(format_sequence_number(self.store.newest_sequence))

    def get_sequence_number_at(self, at_timestamp: float) -> int:
        with STREAMS_LOCK:
            return int(format_sequence_number(self.store.after_time(int(float(at_timestamp) * 1000))))

    def to_json(self) -> dict[str, Any]:
        # AWS: StartingSequenceNumber is the shard's from its creation; EndingSequenceNumber
        # (closed shards) its last (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SequenceNumberRange.html).
        response: dict[str, Any] = {
            "HashKeyRange": {"EndingHashKey": str(self.ending_hash), "StartingHashKey": str(self.starting_hash)},
            "SequenceNumberRange": {"StartingSequenceNumber": format_sequence_number(self.store.starting_sequence)},
            "ShardId": self.shard_id,
        }
        if self.parent:
            response["ParentShardId"] = self.parent
        if self.adjacent_parent:
            response["AdjacentParentShardId"] = self.adjacent_parent
        if not self.is_open:
            with STREAMS_LOCK:
                response["SequenceNumberRange"]["EndingSequenceNumber"] = format_sequence_number(self.store.newest_sequence)
        return response


def _moto_record(record: StoredRecord) -> Any:
    """A moto `Record` for a stored one (moto's `__init__` would stamp the time now)."""
    moto_record = object.__new__(models.Record)
    moto_record.partition_key = record.partition_key
    moto_record.data = base64.b64encode(record.data).decode("ascii")
    moto_record.sequence_number = int(format_sequence_number(record.sequence))
    moto_record.explicit_hash_key = record.explicit_hash_key
    moto_record.created_at_datetime = _naive_utc(record.arrival_ms)
    moto_record.created_at = record.arrival_ms / 1000
    return moto_record


def fast_shard(stream: Any, shard_id: str) -> FastShard:
    shard = stream.shards.get(shard_id)
    if not isinstance(shard, FastShard):
        raise ShardNotFoundError(shard_id, stream="", account_id=stream.account_id)
    return shard


def retention_hours(stream: Any) -> int:
    return int(stream.retention_period_hours or DEFAULT_RETENTION_HOURS)


# -- routing ----------------------------------------------------------------------------------------
def _routes(stream: Any) -> HashRanges:
    # Shards are added (never removed) whenever one closes (split, merge), so the number of
    # shards tells whether the table is current.
    cached = stream.__dict__.get("_fast_routes")
    if cached is None or cached[0] != len(stream.shards):
        ranges = [(s.starting_hash, s.ending_hash, s) for s in stream.shards.values() if s.is_open]
        cached = stream.__dict__["_fast_routes"] = (len(stream.shards), HashRanges(ranges))
    return cached[1]


def shard_for_key(stream: Any, partition_key: Any, explicit_hash_key: Any, routes: HashRanges | None = None) -> FastShard:
    """Stream.get_shard_for_key with moto's checks, among open shards, both range ends included."""
    if not isinstance(partition_key, str) or len(partition_key) > MAX_PARTITION_KEY_LENGTH:
        raise InvalidArgumentError("partition_key")
    if explicit_hash_key:
        hash_key = parse_hash_key(explicit_hash_key)
        if hash_key is None:
            raise InvalidArgumentError("explicit_hash_key")
    else:
        hash_key = partition_hash(partition_key)
    shard = (routes or _routes(stream)).shard_for(hash_key)
    if shard is None:
        raise InvalidArgumentError(f"No open shard of stream {stream.stream_name} holds hash key {hash_key}.")
    return shard  # type: ignore[return-value]


# -- writing --------------------------------------------------------------------------------------
class Prepared(NamedTuple):
    """A PutRecords' records, checked and routed: (shard, partition key, data, explicit hash key)."""

    records: list[tuple[FastShard, str, bytes, str | None]]
    size: int  # data plus partition keys, the request's IncomingBytes


def prepare_records(stream: Any, entries: Any) -> Prepared:
    """Check and route every entry of a PutRecords before any is stored (moto's checks, in
    moto's order, then AWS's on the data), so a rejected request stores nothing."""
    if not isinstance(entries, list):
        raise KinesisValidationError("1 validation error detected: Value null at 'records' failed to satisfy "
                                     "constraint: Member must not be null")
    if len(entries) > MAX_RECORDS_PER_PUT:
        raise TooManyRecords
    blobs = []
    total = 0
    too_large = 0
    for position, entry in enumerate(entries, 1):
        blob = _blob(entry.get("Data") if isinstance(entry, dict) else None, position)
        key = entry.get("PartitionKey")
        size = len(blob) + (len(key) if isinstance(key, str) else 0)
        total += size
        if size > MAX_RECORD_BYTES and not too_large:
            too_large = position
        blobs.append(blob)
    if total > MAX_PUT_BYTES:
        raise TotalRecordsSizeExceedsLimit
    if too_large:
        raise RecordSizeExceedsLimit(position=too_large)
    routes = _routes(stream)
    records = []
    for entry, blob in zip(entries, blobs):
        key, explicit = entry.get("PartitionKey"), entry.get("ExplicitHashKey")
        records.append((shard_for_key(stream, key, explicit, routes), key, blob, explicit or None))
    return Prepared(records, total)


def _blob(data: Any, position: int) -> bytes:
    if data is None:
        raise KinesisValidationError(f"1 validation error detected: Value null at 'records.{position}.member.data' "
                                     "failed to satisfy constraint: Member must not be null")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, TypeError, ValueError):
        raise SerializationError(f"Data of record {position} is not valid base64.") from None


def store_records(backend: Any, stream: Any, prepared: Prepared) -> list[dict[str, str]]:
    """Append prepared records in request order; PutRecords' result entries. Also trims the
    shards written to and counts the stream's Incoming* metrics."""
    now = now_ms()
    hours = retention_hours(stream)
    results = []
    shard_ids: dict[FastShard, str] = {}
    base = SEQUENCE_NUMBER_BASE
    with STREAMS_LOCK:
        sequence = SEQUENCES.take(len(prepared.records))
        for shard, partition_key, blob, explicit_hash_key in prepared.records:
            shard_id = shard_ids.get(shard)
            if shard_id is None:
                shard.store.trim(now, hours)
                shard_id = shard_ids[shard] = shard.shard_id
            shard.store.append(sequence, partition_key, blob, now, explicit_hash_key)
            results.append({"SequenceNumber": str(base + sequence), "ShardId": shard_id})
            sequence += 1
        count_incoming(backend, stream.stream_name, prepared.size, len(prepared.records), now)
    return results


def count_incoming(backend: Any, stream_name: str, incoming_bytes: int, incoming_records: int, now: int) -> None:
    """IncomingBytes / IncomingRecords, one data point per stream per minute.

    moto adds two data points to CloudWatch for every put call and keeps them forever (and
    scans all of them per query); these are aggregated per minute as AWS reports them, so
    the Sum, SampleCount, Minimum and Maximum per minute are what moto's would give."""
    totals = backend.__dict__.setdefault("_incoming_totals", {}).setdefault(stream_name, [0, 0])
    totals[0] += incoming_records  # read by emulator/moto_child/queue_metrics.py
    totals[1] += incoming_bytes
    cloudwatch = cloudwatch_backends[backend.account_id][backend.region_name]
    minute = now // METRIC_PERIOD_MS
    current = backend.__dict__.setdefault("_fast_incoming", {})
    entry = current.get(stream_name)
    if entry is None or entry[0] is not cloudwatch or entry[1] != minute:
        dimensions = [{"Name": "StreamName", "Value": stream_name}]
        stamp = _naive_utc(minute * METRIC_PERIOD_MS)
        data = [MetricAggregatedDatum(METRIC_NAMESPACE, name, float(value), float(value), 1, float(value), dimensions, stamp, unit)
                for name, value, unit in (("IncomingBytes", incoming_bytes, "Bytes"), ("IncomingRecords", incoming_records, "Count"))]
        cloudwatch.metric_data.extend(data)
        current[stream_name] = (cloudwatch, minute, data)
        return
    for datum, value in zip(entry[2], (incoming_bytes, incoming_records)):
        datum.sum += value
        datum.sample_count += 1
        datum.min = min(datum.min, value)
        datum.max = max(datum.max, value)


# -- reading ----------------------------------------------------------------------------------------
def new_shard_iterator(stream: Any, shard_id: str, iterator_type: Any, starting_sequence_number: Any,
                       timestamp: Any) -> str:
    """GetShardIterator (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html)."""
    shard = stream.shards.get(shard_id) if isinstance(shard_id, str) else None
    if not isinstance(shard, FastShard):
        raise ResourceNotFoundError(
            message=f"Shard {shard_id} in stream {stream.stream_name} under account {stream.account_id} does not exist"
        )
    now = now_ms()
    with STREAMS_LOCK:
        store = shard.store
        store.trim(now, retention_hours(stream))
        if iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            offset = parse_sequence_number(starting_sequence_number)
            if offset is None:
                raise InvalidArgumentError(
                    f"StartingSequenceNumber {starting_sequence_number} used in GetShardIterator on shard {shard_id} in "
                    f"stream {stream.stream_name} under account {stream.account_id} is invalid."
                )
            after = offset - 1 if iterator_type == "AT_SEQUENCE_NUMBER" else offset
        elif iterator_type == "TRIM_HORIZON":
            after = store.starting_sequence
        elif iterator_type == "LATEST":
            after = store.newest_sequence
        elif iterator_type == "AT_TIMESTAMP":
            after = store.after_time(_timestamp_ms(timestamp))
        else:
            raise InvalidArgumentError(f"Invalid ShardIteratorType: {iterator_type}")
    return ShardIterator(stream.stream_name, shard_id, after, now).encode()


def _timestamp_ms(timestamp: Any) -> int:
    """An AT_TIMESTAMP Timestamp: epoch seconds (what the SDKs send) or an ISO 8601 string."""
    if isinstance(timestamp, datetime):
        value = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        return int(float(timestamp) * 1000)
    if isinstance(timestamp, str):
        try:
            return int(float(timestamp) * 1000)
        except ValueError:
            try:
                return _timestamp_ms(datetime.fromisoformat(timestamp.replace("Z", "+00:00")))
            except ValueError:
                pass
    raise InvalidArgumentError("The timestamp parameter is required for the AT_TIMESTAMP shard iterator type "
                               "and must be a time stamp.")


def read_records(backend: Any, stream_arn: Any, token: Any, limit: Any) -> tuple[str | None, Page]:
    """GetRecords: the page after the iterator's position, and the next iterator (None once a
    closed shard is read to its end)."""
    if limit is None:
        limit = MAX_RECORDS_PER_GET
    if not isinstance(limit, int) or isinstance(limit, bool) or limit > MAX_RECORDS_PER_GET:
        # The API reference: "If you specify a value that is greater than 10,000, GetRecords
        # throws InvalidArgumentException."
        raise InvalidArgumentError(f"Limit {limit} is invalid: it must be an integer from 1 to {MAX_RECORDS_PER_GET}.")
    if limit < 1:
        raise KinesisValidationError(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                                     "constraint: Member must have value greater than or equal to 1")
    iterator = decode_shard_iterator(token)
    if iterator is None:
        raise InvalidArgumentError("Invalid ShardIterator.")
    now = now_ms()
    if iterator.expired(now):
        raise ExpiredIteratorError(iterator, now)
    stream = backend.describe_stream(stream_arn=stream_arn, stream_name=iterator.stream_name)
    shard = fast_shard(stream, iterator.shard_id)
    with STREAMS_LOCK:
        shard.store.trim(now, retention_hours(stream))
        page = shard.store.read(iterator.after, limit, now)
        closed = not shard.is_open and page.at_end
    following = None if closed else ShardIterator(iterator.stream_name, iterator.shard_id, page.after, now).encode()
    return following, page


class _WireRecord:
    """What KinesisResponse.get_records asks of a record: to_json()."""

    __slots__ = ("record",)

    def __init__(self, record: StoredRecord) -> None:
        self.record = record

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {"Data": r.data, "PartitionKey": r.partition_key, "SequenceNumber": format_sequence_number(r.sequence),
                "ApproximateArrivalTimestamp": _naive_utc(r.arrival_ms)}


# -- moto's methods, replaced ---------------------------------------------------------------------------
def backend_methods() -> dict[str, Any]:
    """Replacements for KinesisBackend's record operations (moto's request path)."""

    def get_shard_iterator(self: Any, stream_arn: Any, stream_name: Any, shard_id: str, shard_iterator_type: Any,
                           starting_sequence_number: Any, at_timestamp: Any) -> str:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        return new_shard_iterator(stream, shard_id, shard_iterator_type, starting_sequence_number, at_timestamp)

    def get_records(self: Any, stream_arn: Any, shard_iterator: Any, limit: Any) -> tuple[str | None, list[Any], int]:
        following, page = read_records(self, stream_arn, shard_iterator, limit)
        return following, [_WireRecord(r) for r in page.records], page.millis_behind_latest

    def put_records(self: Any, stream_arn: Any, stream_name: Any, records: Any) -> dict[str, Any]:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        results = store_records(self, stream, prepare_records(stream, records))
        return {"FailedRecordCount": 0, "Records": results}

    def put_record(self: Any, stream_arn: Any, stream_name: Any, partition_key: Any, explicit_hash_key: Any,
                   data: Any) -> tuple[str, str]:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        entry = {"PartitionKey": partition_key, "Data": data, "ExplicitHashKey": explicit_hash_key}
        [result] = store_records(self, stream, prepare_records(stream, [entry]))
        return result["SequenceNumber"], result["ShardId"]

    return {"get_shard_iterator": get_shard_iterator, "get_records": get_records,
            "put_records": put_records, "put_record": put_record}


def stream_methods() -> dict[str, Any]:
    """Replacements for Stream's routing and put (moto's CloudWatch Logs subscriptions,
    resharding and CloudFormation put through these)."""

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        return shard_for_key(self, partition_key, explicit_hash_key)

    def put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> tuple[str, str]:
        shard = shard_for_key(self, partition_key, explicit_hash_key)
        blob = base64.b64decode(data or "")
        now = now_ms()
        with STREAMS_LOCK:
            shard.store.trim(now, retention_hours(self))
            sequence = SEQUENCES.take()
            shard.store.append(sequence, partition_key, blob, now, explicit_hash_key or None)
        return format_sequence_number(sequence), shard.shard_id

    return {"get_shard_for_key": get_shard_for_key, "put_record": put_record}
