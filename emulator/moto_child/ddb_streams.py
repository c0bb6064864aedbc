"""moto's DynamoDB stream shard with its records in a StreamStore, and the stream operations
on it (imported only inside moto's process).

`FastStreamShard` replaces moto 5.2's `StreamShard` (moto's `Table.set_stream_specification`
builds shards through that name): each write appends one record, serialised once as the
API's JSON (emulator/moto_child/ddb_stream_store.py). The stream operations below serve
both moto's own request path (as replacements of `DynamoDBStreamsBackend` methods) and the
short path of emulator/moto_child/ddb_wire.py. Where moto and AWS differ, these follow AWS:

- one record per change: moto writes two INSERT records for an UpdateItem that creates its
  item (the bare key, then the item) and a record for a write that changes nothing; AWS
  writes none for "a PutItem or UpdateItem operation that does not change any data in an
  item" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html);
- the record's shape as AWS's: `eventVersion` "1.1", a 32-hex `eventID`, the table's
  Region in `awsRegion` (moto: always us-east-1), `ApproximateCreationDateTime` in whole
  epoch seconds ("rounded down to the closest second",
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html)
  and `SizeBytes` as AWS counts it (emulator/moto_child/ddb_items.py; moto's is the length
  of its JSON);
- sequence numbers of 26 digits, increasing across the process and its restarts (moto's
  restart at the same number in every table), a shard id of AWS's form;
- records are trimmed after 24 hours and iterators expire after 15 minutes
  (ExpiredIteratorException); an iterator or position older than the trim horizon is a
  TrimmedDataAccessException; an iterator we did not issue is a ValidationException (moto:
  a 500); a stream that is not enabled is a ResourceNotFoundException (moto: a 500);
- a failed TransactWriteItems leaves no records (moto restores its tables from copies; the
  records it appended are truncated here).

Every access to a store holds `DYNAMODB_LOCK` (emulator/moto_child/ddb_capacity_layer.py
holds it around every DynamoDB call; the streams calls take it here).

Left as moto has them: one shard per stream that never closes (AWS splits shards with the
table's partitions and rolls them over about every four hours), and no TTL deletions.
"""

from __future__ import annotations

import base64
import copy
import json
import hashlib
import math
import threading
import time
import uuid
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX
from moto.dynamodb.models import table as table_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.core.utils import utcnow

from emulator.moto_child.ddb_items import item_size
from emulator.moto_child.ddb_stream_store import (
    MAX_RECORDS_PER_GET,
    StreamIterator,
    StreamStore,
    decode_iterator,
    format_sequence_number,
    parse_sequence_number,
)
from emulator.moto_child.ddb_capacity import plain_item
from emulator.moto_child.kinesis_store import SequenceCounter

DYNAMODB_LOCK = threading.RLock()
# Sequence numbers go on increasing across restarts of the moto process (the counter starts at
# the time, in microseconds): a poller's iterator from before a restart then points before
# every new record, and is told TrimmedDataAccessException, not silence.
SEQUENCES = SequenceCounter(time.time_ns() // 1000)
EVENT_VERSION = "1.1"
EVENT_SOURCE = "aws:dynamodb"
_SUPPRESS = threading.local()  # a write whose record is made by its caller (update_item below)


def now_ms() -> int:
    return int(time.time() * 1000)


class StreamError(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + code, message)


# -- values in the API's JSON ------------------------------------------------------------------------
def wire_value(value: DynamoType) -> dict[str, Any]:
    """A moto DynamoType as the API writes it (binaries base64, maps and lists nested)."""
    kind, inner = value.type, value.value
    if kind == "M":
        return {"M": {name: wire_value(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [wire_value(member) for member in inner]}
    if kind == "B":
        return {"B": _base64(inner)}
    if kind == "BS":
        return {"BS": [_base64(member) for member in inner]}
    return {kind: inner}


def _base64(value: Any) -> str:
    return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)


def wire_item(attrs: dict[str, DynamoType]) -> dict[str, Any]:
    return {name: wire_value(value) for name, value in attrs.items()}


# -- the shard ----------------------------------------------------------------------------------------
class FastStreamShard:
    """A table's stream shard (moto's StreamShard interface: id, table, created_on, to_json, add)."""

    def __init__(self, account_id: str, table: Any) -> None:
        self.account_id = account_id
        self.table = table
        self.created_on = utcnow()
        # AWS's shard ids look like "shardId-00000001414576573621-f55eea83". Ours is the same
        # for a table across restarts of the moto process (the one shard never closes), so a
        # mapping's shard worker finds its shard again when the backend comes back.
        digest = hashlib.md5(table.table_arn.encode(), usedforsecurity=False).hexdigest()[:8]
        self.id = f"shardId-{1:020d}-{digest}"
        with DYNAMODB_LOCK:
            self.store = StreamStore(SEQUENCES.last)

    def __deepcopy__(self, memo: dict[int, Any]) -> "FastStreamShard":
        # moto copies whole tables before a transaction (to restore them if it fails); the
        # stream stays one, and a failed transaction's records are truncated instead.
        return self

    def to_json(self) -> dict[str, Any]:
        return {"ShardId": self.id,
                "SequenceNumberRange": {"StartingSequenceNumber": format_sequence_number(self.store.starting_sequence + 1)}}

    def add(self, old: Any, new: Any) -> None:
        if getattr(_SUPPRESS, "active", False):
            return
        append_change(self, old, new)


def append_change(shard: FastStreamShard, old: Any, new: Any) -> None:
    """Record one change of an item (old and new are moto Items, either may be None)."""
    if old is None and new is None:
        return
    if old is not None and new is not None and plain_item(old.attrs) == plain_item(new.attrs):
        return  # nothing changed: no record
    table = shard.table
    view = (table.stream_specification or {}).get("StreamViewType", "KEYS_ONLY")
    source = new if new is not None else old
    keys = {name: source.attrs[name] for name in table.table_key_attrs if name in source.attrs}
    size = item_size(keys)
    created = now_ms()
    with DYNAMODB_LOCK:
        sequence = SEQUENCES.take()
        stream: dict[str, Any] = {"ApproximateCreationDateTime": math.floor(created / 1000), "Keys": wire_item(keys)}
        if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
            stream["NewImage"] = wire_item(new.attrs)
            size += item_size(new.attrs)
        if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
            stream["OldImage"] = wire_item(old.attrs)
            size += item_size(old.attrs)
        stream.update({"SequenceNumber": format_sequence_number(sequence), "SizeBytes": size, "StreamViewType": view})
        record_body = {
            "eventID": uuid.uuid4().hex,
            "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
            "eventVersion": EVENT_VERSION,
            "eventSource": EVENT_SOURCE,
            "awsRegion": table.region_name,
            "dynamodb": stream,
        }
        shard.store.append(sequence, created, json.dumps(record_body, separators=(",", ":")))
        shard.store.trim(created)


# -- the stream operations -------------------------------------------------------------------------
def table_of_stream(dynamodb_backend: Any, stream_arn: Any) -> Any:
    """The table whose stream an ARN names (any label: AWS's labels are creation times, and a
    template's `Fn::GetAtt Table.StreamArn` cannot know it)."""
    parts = str(stream_arn).split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    segments = resource.split("/")
    if len(segments) < 4 or segments[0] != "table" or segments[2] != "stream":
        raise StreamError("ValidationException", f"Invalid StreamArn: {stream_arn}")
    table = dynamodb_backend.tables.get(segments[1])
    if table is None or not isinstance(table.stream_shard, FastStreamShard):
        raise StreamError("ResourceNotFoundException", f"Requested resource not found: Stream: {stream_arn} not found")
    return table


def new_iterator(dynamodb_backend: Any, stream_arn: Any, shard_id: Any, iterator_type: Any, sequence_number: Any) -> str:
    table = table_of_stream(dynamodb_backend, stream_arn)
    shard: FastStreamShard = table.stream_shard
    if shard_id != shard.id:
        raise StreamError("ResourceNotFoundException", f"Requested resource not found: Shard: {shard_id} in Stream: "
                                                       f"{stream_arn} not found")
    with DYNAMODB_LOCK:
        store = shard.store
        if iterator_type == "TRIM_HORIZON":
            after = max(store.starting_sequence, store.trimmed_through)
        elif iterator_type == "LATEST":
            after = store.newest_sequence
        elif iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            offset = parse_sequence_number(sequence_number)
            if offset is None:
                raise StreamError("ValidationException", f"Invalid SequenceNumber: {sequence_number}")
            after = offset - 1 if iterator_type == "AT_SEQUENCE_NUMBER" else offset
            if after < store.trimmed_through:
                raise StreamError("TrimmedDataAccessException", "The operation attempted to read past the oldest "
                                                                "stream record in a shard.")
        else:
            raise StreamError("ValidationException", f"1 validation error detected: Value '{iterator_type}' at "
                                                     "'shardIteratorType' failed to satisfy constraint: Member must "
                                                     "satisfy enum value set: [AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, "
                                                     "AT_SEQUENCE_NUMBER, LATEST]")
    return StreamIterator(str(stream_arn), shard.id, after, now_ms()).encode()


def read(dynamodb_backend: Any, token: Any, limit: Any) -> tuple[list[str], str]:
    """(records' JSON texts, next iterator) for GetRecords."""
    if limit is None:
        limit = MAX_RECORDS_PER_GET
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RECORDS_PER_GET:
        raise StreamError("ValidationException", f"1 validation error detected: Value '{limit}' at 'limit' failed to "
                                                 f"satisfy constraint: Member must have value between 1 and "
                                                 f"{MAX_RECORDS_PER_GET}")
    iterator = decode_iterator(token)
    if iterator is None:
        raise StreamError("ValidationException", "Invalid ShardIterator")
    now = now_ms()
    if iterator.expired(now):
        raise StreamError("ExpiredIteratorException", "Iterator expired. The iterator was created at "
                                                      f"{iterator.issued_ms / 1000:.3f}; iterators expire after 15 minutes.")
    table = table_of_stream(dynamodb_backend, iterator.stream_arn)
    shard: FastStreamShard = table.stream_shard
    if iterator.shard_id != shard.id:
        raise StreamError("ResourceNotFoundException", f"Requested resource not found: Shard: {iterator.shard_id} not found")
    with DYNAMODB_LOCK:
        shard.store.trim(now)
        page = shard.store.read(iterator.after, limit)
    if page.trimmed:
        raise StreamError("TrimmedDataAccessException", "The operation attempted to read past the oldest stream "
                                                        "record in a shard.")
    return page.records, iterator._replace(after=page.after, issued_ms=now).encode()


# -- moto's own paths ------------------------------------------------------------------------------
class _IteratorAnswer:
    def __init__(self, token: str) -> None:
        self.arn = token


def streams_backend_methods() -> dict[str, Any]:
    """Replacements of DynamoDBStreamsBackend methods, for moto's own request path."""

    def describe_stream(self: Any, arn: str) -> dict[str, Any]:
        table = table_of_stream(self.dynamodb, arn)
        return {
            "StreamArn": arn, "StreamLabel": table.latest_stream_label, "StreamStatus": "ENABLED",
            "StreamViewType": table.stream_specification["StreamViewType"],
            "CreationRequestDateTime": table.stream_shard.created_on, "TableName": table.name,
            "KeySchema": table.schema, "Shards": [table.stream_shard.to_json()],
        }

    def get_shard_iterator(self: Any, arn: str, shard_id: str, shard_iterator_type: str,
                           sequence_number: Any = None) -> _IteratorAnswer:
        text = None if sequence_number is None else str(sequence_number)
        return _IteratorAnswer(new_iterator(self.dynamodb, arn, shard_id, shard_iterator_type, text))

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        records, following = read(self.dynamodb, iterator_arn, limit)
        return {"Records": [_with_raw_binaries(json.loads(text)) for text in records], "NextShardIterator": following}

    return {"describe_stream": describe_stream, "get_shard_iterator": get_shard_iterator, "get_records": get_records}


def _with_raw_binaries(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record with its binaries as bytes: moto's serializer base64-encodes them
    (the short path sends the stored JSON, already encoded, as it is)."""
    def raw(value: Any) -> Any:
        kind, inner = next(iter(value.items()))
        if kind == "B":
            return {"B": base64.b64decode(inner)}
        if kind == "BS":
            return {"BS": [base64.b64decode(member) for member in inner]}
        if kind == "M":
            return {"M": {name: raw(member) for name, member in inner.items()}}
        if kind == "L":
            return {"L": [raw(member) for member in inner]}
        return value

    stream = record.get("dynamodb", {})
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream:
            stream[image] = {name: raw(value) for name, value in stream[image].items()}
    return record


def backend_methods(original_update_item: Any, original_transact: Any) -> dict[str, Any]:
    """DynamoDBBackend.update_item and transact_write_items, so that each change writes
    exactly one record and a failed transaction none."""

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        shard = table.stream_shard
        if not isinstance(shard, FastStreamShard):
            return original_update_item(self, table_name, key, *args, **kwargs)
        hash_value, range_value = _key_values(table, key)
        before = table.get_item(hash_value, range_value) if hash_value is not None else None
        before = copy.deepcopy(before)
        _SUPPRESS.active = True
        try:
            item = original_update_item(self, table_name, key, *args, **kwargs)
        finally:
            _SUPPRESS.active = False
        append_change(shard, before, item)
        return item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        lengths = {}
        for entry in transact_items:
            operation = next(iter(entry.values()), None) if isinstance(entry, dict) else None
            table = self.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            if table is not None and isinstance(table.stream_shard, FastStreamShard):
                lengths[id(table.stream_shard)] = (table.stream_shard, len(table.stream_shard.store))
        try:
            original_transact(self, transact_items)
        except BaseException:
            with DYNAMODB_LOCK:
                for shard, length in lengths.values():
                    shard.store.truncate(length)
            raise

    return {"update_item": update_item, "transact_write_items": transact_write_items}


def _key_values(table: Any, key: Any) -> tuple[Any, Any]:
    if not isinstance(key, dict) or table.hash_key_attr not in key:
        return None, None
    try:
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in key else None
    except (TypeError, AttributeError, KeyError, ValueError):
        return None, None
    if table.range_key_attr and range_value is None:
        return None, None
    return hash_value, range_value


def install_shard_class() -> None:
    table_models.StreamShard = FastStreamShard  # type: ignore[misc]
