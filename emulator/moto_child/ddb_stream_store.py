"""The records of one DynamoDB stream shard, indexed, and its shard iterators (pure).

moto 5.2 keeps a table's stream records as a list of objects that it serialises on every
read through its generic serializer (~0.8 s per GetRecords of 1,000 records, so a reader
keeps up with ~1,300 writes/s), keeps every record forever and every shard iterator it
ever issued (docs/benchmarks.md, "DynamoDB streams"). This store keeps each record as the
JSON text of its API form, written once when the record is made, in append order:

- an append is O(1); a read finds its position by binary search on the sequence numbers
  and joins at most one page of ready-made JSON;
- records older than the retention period ("data in a DynamoDB stream persists for 24
  hours", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html)
  are trimmed from the front and freed;
- a shard iterator is a token that carries its position and when it was issued, so
  nothing is stored per iterator and it can expire ("a shard iterator expires 15 minutes
  after it is returned to the requester",
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).

Sequence numbers are a base plus a counter shared by the process: 26 digits like AWS's
("21258800000000008186106757"), increasing in every shard, at most 40 digits and at least
21 (the API's limits, https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html).
Time is passed in (`now_ms`, epoch milliseconds); the caller holds the lock.
"""

from __future__ import annotations

import base64
import binascii
import re
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NamedTuple

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html: 24 hours.
RETENTION_MS = 24 * 3_600_000
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html
SHARD_ITERATOR_LIFETIME_MS = 15 * 60_000
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html:
# "up to 1 MB of data or 1000 stream records, whichever comes first"; Limit 1-1000.
MAX_RECORDS_PER_GET = 1000
MAX_BYTES_PER_GET = 1024 * 1024
SEQUENCE_NUMBER_BASE = 2 * 10**25
_SEQUENCE_RE = re.compile(r"[0-9]{1,40}")
_COMPACT_MIN = 1024
# The iterator token: "<stream ARN>|1|<base64 of shard id:after:issued ms>", in the shape of
# AWS's ("arn:aws:dynamodb:...:table/T/stream/2019-09-09T07:25:52.507|1|AAAA...").
_TOKEN_SEPARATOR = "|1|"


def format_sequence_number(offset: int) -> str:
    return str(SEQUENCE_NUMBER_BASE + offset)


def parse_sequence_number(text: object) -> int | None:
    """The store offset of a sequence number, or None if it is not one."""
    if not isinstance(text, str) or not _SEQUENCE_RE.fullmatch(text):
        return None
    return int(text) - SEQUENCE_NUMBER_BASE


class StreamIterator(NamedTuple):
    stream_arn: str
    shard_id: str
    after: int  # read the records whose offset is greater than this
    issued_ms: int

    def encode(self) -> str:
        position = f"{self.shard_id}:{self.after}:{self.issued_ms}".encode()
        return self.stream_arn + _TOKEN_SEPARATOR + base64.b64encode(position).decode("ascii")

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.issued_ms > SHARD_ITERATOR_LIFETIME_MS


def decode_iterator(token: object) -> StreamIterator | None:
    """The iterator a token stands for; None for anything this store did not issue."""
    if not isinstance(token, str) or _TOKEN_SEPARATOR not in token:
        return None
    arn, _, encoded = token.rpartition(_TOKEN_SEPARATOR)
    try:
        shard_id, after, issued = base64.b64decode(encoded, validate=True).decode().split(":")
        return StreamIterator(arn, shard_id, int(after), int(issued))
    except (binascii.Error, ValueError):
        return None


@dataclass
class StreamPage:
    records: list[str]  # each record's JSON text
    after: int  # the position after the page
    trimmed: bool  # the position was older than the oldest record kept


class StreamStore:
    """The records of one shard. Offsets increase; `starting_sequence` is below them all."""

    def __init__(self, starting_sequence: int) -> None:
        self.starting_sequence = starting_sequence
        self._sequences = array("q")
        self._created = array("q")
        self._json: list[str | None] = []
        self._head = 0
        self.trimmed_through = starting_sequence  # the newest offset trimmed away

    def __len__(self) -> int:
        return len(self._sequences) - self._head

    @property
    def newest_sequence(self) -> int:
        return self._sequences[-1] if len(self) else max(self.starting_sequence, self.trimmed_through)

    @property
    def capacity(self) -> int:
        return len(self._sequences)

    def append(self, sequence: int, created_ms: int, record_json: str) -> None:
        self._sequences.append(sequence)
        self._created.append(created_ms)
        self._json.append(record_json)

    def truncate(self, length: int) -> None:
        """Drop the records appended after the store held `length` (a transaction that
        failed: its records were never written). `length` as `len(store)` returned it."""
        keep = self._head + length
        del self._sequences[keep:], self._created[keep:], self._json[keep:]

    def trim(self, now_ms: int, retention_ms: int = RETENTION_MS) -> int:
        """Free records older than the retention period; returns how many."""
        cutoff = now_ms - retention_ms
        created, head, end = self._created, self._head, len(self._created)
        if head == end or created[head] >= cutoff:
            return 0
        stop = bisect_left(created, cutoff, head, end)
        for index in range(head, stop):
            self._json[index] = None
        self.trimmed_through = self._sequences[stop - 1]
        self._head = stop
        if stop >= _COMPACT_MIN and stop * 2 >= end:
            del self._sequences[:stop], self._created[:stop], self._json[:stop]
            self._head = 0
        return stop - head

    def read(self, after: int, limit: int, max_bytes: int = MAX_BYTES_PER_GET) -> StreamPage:
        """Up to `limit` records after the position and within `max_bytes` (at least one)."""
        trimmed = after < self.trimmed_through
        sequences, end = self._sequences, len(self._sequences)
        start = bisect_right(sequences, after, self._head, end)
        stop = min(end, start + limit)
        texts = self._json[start:stop]
        size = 0
        for index, text in enumerate(texts):
            size += len(text)  # type: ignore[arg-type]
            if size > max_bytes and index:
                stop = start + index
                del texts[index:]
                break
        return StreamPage(texts, sequences[stop - 1] if stop > start else after, trimmed)  # type: ignore[arg-type]
