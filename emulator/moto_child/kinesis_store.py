"""The records of one Kinesis shard, indexed so that a put is O(1) and a read O(log n + page).

moto 5.2 keeps a shard as an ordered dict and rescans it on every call: each put copies
every key to find the last sequence number, each GetRecords walks the shard from its first
record to the iterator's position (docs/backend.md, "Kinesis"). This store keeps a
shard's records in append order in four columns (sequence numbers and arrival times in
integer arrays, partition keys and data in lists), so that:

- a put appends (sequence numbers are handed out in increasing order by the caller);
- a read finds the iterator's position by binary search on the sequence numbers and copies
  at most one page;
- AT_TIMESTAMP finds its position by binary search on the arrival times, which the store
  keeps non-decreasing;
- records older than the retention period are trimmed from the front and freed at once
  (their slots are cleared; the columns are compacted when half of them is trimmed).

Also here, pure as well: sequence numbers (AWS's 56-digit decimal strings), the routing
of a partition key to a shard's hash-key range, and shard iterators (an opaque token that
carries the position and the time it was issued, so it can expire). Time is passed in
(`now_ms`, epoch milliseconds): no clock, no I/O, no locking; the caller holds the lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Iterator, NamedTuple

# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html: "The maximum
# number of records that can be returned per call is 10,000" (Limit defaults to it) and
# "The maximum size of data that GetRecords can return is 10 MiB".
MAX_RECORDS_PER_GET = 10_000
MAX_BYTES_PER_GET = 10 * 1024 * 1024
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html: "A shard
# iterator expires 5 minutes after it is returned to the requester."
SHARD_ITERATOR_LIFETIME_MS = 5 * 60 * 1000
# https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html: "A Kinesis
# data stream stores records from 24 hours by default".
DEFAULT_RETENTION_HOURS = 24
MS_PER_HOUR = 3_600_000
# Sequence numbers on AWS are decimal strings of 56 digits, e.g.
# "49590338271490256608559692538361571095921575989136588898"
# (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html, the example event), and
# the API allows up to 129 digits (the SequenceNumber pattern in
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html).
# Ours are this base plus a counter: 56 digits, increasing, so they compare the same as
# strings and as numbers.
SEQUENCE_NUMBER_BASE = 49 * 10**54
_SEQUENCE_NUMBER_RE = re.compile(r"0|[1-9][0-9]{0,128}")
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html: ExplicitHashKey
# pattern; hash keys are 128-bit (MD5 of the partition key).
_HASH_KEY_RE = re.compile(r"0|[1-9][0-9]{0,38}")
HASH_KEY_LIMIT = 2**128
# Trimmed slots are compacted away once at least this many, and half the columns, are trimmed.
_COMPACT_MIN = 1024


# -- sequence numbers ------------------------------------------------------------------------
def format_sequence_number(offset: int) -> str:
    return str(SEQUENCE_NUMBER_BASE + offset)


def parse_sequence_number(text: object) -> int | None:
    """The store's offset of a sequence number as the API accepts it, or None if malformed.
    Numbers below the base (another emulator's, moto's) give negative offsets: they sort
    before every record."""
    if not isinstance(text, str) or not _SEQUENCE_NUMBER_RE.fullmatch(text):
        return None
    return int(text) - SEQUENCE_NUMBER_BASE


class SequenceCounter:
    """Hands out increasing offsets. One for the whole process, so sequence numbers are
    unique across every stream, as AWS's are within a stream."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def take(self, count: int = 1) -> int:
        """The first of `count` new consecutive offsets."""
        first = self.last + 1
        self.last += count
        return first


# -- routing ------------------------------------------------------------------------------------
def partition_hash(partition_key: str) -> int:
    """https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html: "An MD5 hash
    function is used to map partition keys to 128-bit integer values"."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big")


def parse_hash_key(text: object) -> int | None:
    if not isinstance(text, str) or not _HASH_KEY_RE.fullmatch(text):
        return None
    value = int(text)
    return value if value < HASH_KEY_LIMIT else None


class HashRanges:
    """The open shards of a stream by hash-key range; each range includes both ends."""

    def __init__(self, ranges: list[tuple[int, int, object]]) -> None:
        ordered = sorted(ranges, key=lambda r: r[0])
        self._starts = [start for start, _, _ in ordered]
        self._ends = [end for _, end, _ in ordered]
        self._shards = [shard for _, _, shard in ordered]

    def shard_for(self, hash_key: int) -> object | None:
        index = bisect_right(self._starts, hash_key) - 1
        if index < 0 or hash_key > self._ends[index]:
            return None
        return self._shards[index]


# -- shard iterators ------------------------------------------------------------------------------
class ShardIterator(NamedTuple):
    stream_name: str
    shard_id: str
    after: int  # read the records whose sequence offset is greater than this
    issued_ms: int

    def encode(self) -> str:
        text = f"{self.stream_name}:{self.shard_id}:{self.after}:{self.issued_ms}"
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.issued_ms > SHARD_ITERATOR_LIFETIME_MS


def decode_shard_iterator(token: object) -> ShardIterator | None:
    """The iterator a token stands for, or None for anything we did not issue."""
    if not isinstance(token, str):
        return None
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    parts = text.split(":")
    # Stream names and shard ids cannot hold ':' ([a-zA-Z0-9_.-]+).
    if len(parts) != 4 or not parts[0] or not parts[1]:
        return None
    try:
        return ShardIterator(parts[0], parts[1], int(parts[2]), int(parts[3]))
    except ValueError:
        return None


# -- the records of one shard ------------------------------------------------------------------
class StoredRecord(NamedTuple):
    sequence: int  # offset: format_sequence_number() gives the wire form
    arrival_ms: int
    partition_key: str
    data: bytes
    explicit_hash_key: str | None


@dataclass
class Page:
    """What one GetRecords call returns from a shard, column by column (the wire path
    formats them without building a record object each)."""

    sequences: list[int]
    arrivals: list[int]
    keys: list[str]
    data: list[bytes]
    after: int  # the position after the page: the next iterator reads from here
    millis_behind_latest: int
    at_end: bool  # nothing left to read after the page (now)

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def records(self) -> list[StoredRecord]:
        return [StoredRecord(*fields, None) for fields in zip(self.sequences, self.arrivals, self.keys, self.data)]


def record_size(partition_key: str, data: bytes) -> int:
    """A record's size as the limits count it: its data blob plus its partition key
    (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html)."""
    return len(data) + len(partition_key)


class ShardStore:
    def __init__(self, starting_sequence: int) -> None:
        self.starting_sequence = starting_sequence  # below every record of the shard
        self._sequences = array("q")
        self._arrivals = array("q")
        self._keys: list[str | None] = []
        self._data: list[bytes | None] = []
        self._explicit: dict[int, str] = {}  # sequence -> ExplicitHashKey, for the few that have one
        self._head = 0  # index of the oldest record not trimmed

    def __len__(self) -> int:
        return len(self._sequences) - self._head

    def __iter__(self) -> Iterator[StoredRecord]:
        """Every record kept, oldest first."""
        return iter(self._slice(self._head, len(self._sequences)))

    @property
    def capacity(self) -> int:
        """Slots held: the records kept and trimmed ones not yet compacted away (their data
        is released at once)."""
        return len(self._sequences)

    @property
    def newest_sequence(self) -> int:
        """The last record's offset; the starting sequence of an empty shard."""
        return self._sequences[-1] if len(self) else self.starting_sequence

    @property
    def oldest_sequence(self) -> int | None:
        return self._sequences[self._head] if len(self) else None

    # -- writing ------------------------------------------------------------------------------
    def append(self, sequence: int, partition_key: str, data: bytes, now_ms: int,
               explicit_hash_key: str | None = None) -> int:
        """Store a record; returns its arrival time. `sequence` must exceed the last one.

        AWS stamps arrivals "with millisecond precision" and does not promise they increase
        (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html); the
        store keeps them non-decreasing within a shard so AT_TIMESTAMP is a binary search."""
        arrivals = self._arrivals
        if arrivals and now_ms < arrivals[-1]:
            now_ms = arrivals[-1]
        self._sequences.append(sequence)
        arrivals.append(now_ms)
        self._keys.append(partition_key)
        self._data.append(data)
        if explicit_hash_key is not None:
            self._explicit[sequence] = explicit_hash_key
        return now_ms

    def clear(self) -> None:
        self._sequences = array("q")
        self._arrivals = array("q")
        self._keys, self._data, self._explicit, self._head = [], [], {}, 0

    def trim(self, now_ms: int, retention_hours: int) -> int:
        """Free the records older than the retention period; returns how many."""
        cutoff = now_ms - retention_hours * MS_PER_HOUR
        arrivals, head, end = self._arrivals, self._head, len(self._arrivals)
        if head == end or arrivals[head] >= cutoff:
            return 0
        stop = bisect_left(arrivals, cutoff, head, end)
        keys, data, explicit = self._keys, self._data, self._explicit
        for index in range(head, stop):
            keys[index] = data[index] = None
            if explicit:
                explicit.pop(self._sequences[index], None)
        self._head = stop
        if stop >= _COMPACT_MIN and stop * 2 >= end:
            del self._sequences[:stop], self._arrivals[:stop], self._keys[:stop], self._data[:stop]
            self._head = 0
        return stop - head

    # -- positions ------------------------------------------------------------------------------
    def after_time(self, timestamp_ms: int) -> int:
        """The position (an `after` offset) of the first record that arrived at or after the
        timestamp; before the oldest record when the timestamp is older (TRIM_HORIZON)."""
        index = bisect_left(self._arrivals, timestamp_ms, self._head, len(self._arrivals))
        return self._sequences[index - 1] if index > self._head else self.starting_sequence

    # -- reading ------------------------------------------------------------------------------------
    def read(self, after: int, limit: int, now_ms: int, max_bytes: int = MAX_BYTES_PER_GET) -> Page:
        """Up to `limit` records after the position, within `max_bytes` (at least one record).

        MillisBehindLatest follows the API's definition, "how far behind current time the
        consumer is" and 0 only when "there are no new records to process at this moment":
        the age of the first record left unread, at least 1 while one is left."""
        sequences, end = self._sequences, len(self._sequences)
        start = bisect_right(sequences, after, self._head, end)
        stop = min(end, start + limit)
        keys, data = self._keys[start:stop], self._data[start:stop]
        size = 0
        for index, (key, blob) in enumerate(zip(keys, data)):
            size += len(blob) + len(key)  # type: ignore[arg-type]
            if size > max_bytes and index:
                stop = start + index
                del keys[index:], data[index:]
                break
        behind = max(1, now_ms - self._arrivals[stop]) if stop < end else 0
        return Page(sequences[start:stop].tolist(), self._arrivals[start:stop].tolist(), keys, data,  # type: ignore[arg-type]
                    sequences[stop - 1] if stop > start else after, behind, stop == end)

    def _slice(self, start: int, stop: int) -> list[StoredRecord]:
        explicit = self._explicit
        return [
            StoredRecord(sequence, arrival, key, blob, explicit.get(sequence) if explicit else None)  # type: ignore[arg-type]
            for sequence, arrival, key, blob in zip(
                self._sequences[start:stop], self._arrivals[start:stop], self._keys[start:stop], self._data[start:stop]
            )
        ]
