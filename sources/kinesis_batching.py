"""Kinesis polling cadence, batching and ParallelizationFactor lanes: pure policies.

* Cadence (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html): Lambda polls
  each shard "at a base rate of once per second" and, "when more records are available,
  keeps processing batches until it catches up": `next_poll_at`.
* Batching (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html):
  invoke when the batching window expires, BatchSize is reached or the payload reaches
  6 MB; the next window begins when the previous invocation completes: `take_batch`.
* Lanes (the Kinesis page above): with ParallelizationFactor > 1 a shard is processed by up
  to PF concurrent batches while keeping order per partition key: `lane_of` sends every key
  to one lane, each lane runs one batch at a time, in order.
* Checkpoint: the shard may resume after a record only when every lane has finished every
  record up to it: `shard_checkpoint`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Base polling rate per shard: https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
POLL_INTERVAL_S = 1.0
# The invocation payload cap of an event source mapping (fixed):
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html
MAX_BATCH_PAYLOAD_BYTES = 6 * 1024 * 1024
# Bytes of `{"Records":[` + `]}` around the records, joined by commas.
PAYLOAD_ENVELOPE_BYTES = len('{"Records":[]}')
# Inference, not AWS: how many batches per lane a shard reads ahead of processing. A
# blocked lane therefore stops the shard's reads once this much is buffered, which is
# what makes a poison record hold the shard (as on AWS, where a failing batch blocks its
# shard: https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html)
# and the iterator age grow.
READ_AHEAD_BATCHES = 2
# Inference: never fewer than this read ahead, so small batches still let one GetRecords
# call fetch many records (5 calls/s per shard would otherwise cap a shard at
# 5 × BatchSize records/s; AWS's reads are not limited by BatchSize).
MIN_READ_AHEAD_RECORDS = 1_000


# -- cadence ---------------------------------------------------------------------------------
def next_poll_at(last_poll_at: float, fetched: int, requested: int, millis_behind_latest: int,
                 interval_s: float = POLL_INTERVAL_S) -> float:
    """When to call GetRecords next: at once while catching up, else one interval later
    (Kinesis: 1 s; DynamoDB Streams: 4 polls per second,
    https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html).

    "Catching up" is a non-empty answer that either filled the request or reports the
    shard still behind its latest record (AWS keeps going "until it catches up"). The
    read limits still apply to an immediate call (kinesis_limits).
    """
    if fetched > 0 and (fetched >= requested or millis_behind_latest > 0):
        return last_poll_at
    return last_poll_at + interval_s


def read_ahead_limit(batch_size: int, parallelization_factor: int) -> int:
    """Most records a shard holds read but not yet finished."""
    return max(batch_size * parallelization_factor * READ_AHEAD_BATCHES, MIN_READ_AHEAD_RECORDS)


# -- batching --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TakeBatch:
    count: int  # invoke now with this many records from the head of the lane


@dataclass(frozen=True)
class WaitForBatch:
    until: float | None  # the window's end; None: nothing buffered, wait for records


def fitting_prefix(record_sizes: Sequence[int], batch_size: int, max_bytes: int = MAX_BATCH_PAYLOAD_BYTES) -> int:
    """How many leading records fit in one invocation: at most BatchSize and 6 MB of
    payload; at least one, so an oversized record reaches the function and fails there."""
    total = PAYLOAD_ENVELOPE_BYTES
    for index, size in enumerate(record_sizes[:batch_size]):
        total += size + (1 if index else 0)
        if total > max_bytes:
            return max(1, index)
    return min(len(record_sizes), batch_size)


def take_batch(
    record_sizes: Sequence[int], batch_size: int, window_s: float, window_started_at: float, now: float
) -> TakeBatch | WaitForBatch:
    """The first of window expiry, BatchSize reached or payload full triggers a batch.

    `record_sizes` are the serialised sizes of the lane's buffered records, in order.
    """
    if not record_sizes:
        return WaitForBatch(None)
    count = fitting_prefix(record_sizes, batch_size)
    full = count >= batch_size or count < len(record_sizes)
    window_end = window_started_at + window_s
    if full or window_s <= 0 or now >= window_end:
        return TakeBatch(count)
    return WaitForBatch(window_end)


# -- lanes -----------------------------------------------------------------------------------
def lane_of(partition_key: str, lanes: int) -> int:
    """The lane of a partition key: MD5 of the key, as Kinesis maps keys to shards
    (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html: "MD5 hash
    function is used to map partition keys to 128-bit integer values").
    The lane split itself is not documented; any stable function of the key keeps the
    documented guarantee (order per partition key)."""
    if lanes <= 1:
        return 0
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big") % lanes


@dataclass(frozen=True)
class ShardPosition:
    """Where a shard resumes: a GetShardIterator type and its sequence number
    (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html)."""

    iterator_type: str  # AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER
    sequence_number: str


def shard_checkpoint(lowest_unfinished: Iterable[str | None], last_read: str | None) -> ShardPosition | None:
    """The position from which the shard resumes after a stop (Update, Disable, restart).

    `lowest_unfinished` holds, per lane, the sequence number of its oldest record not yet
    finished (None when the lane has nothing pending); `last_read` is the newest record
    read. Resuming there re-delivers records that other lanes already finished: at least
    once, as an event source mapping promises ("at least once":
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html).
    None: nothing was read yet.
    """
    pending = [seq for seq in lowest_unfinished if seq is not None]
    if pending:
        return ShardPosition("AT_SEQUENCE_NUMBER", min(pending, key=int))
    if last_read is not None:
        return ShardPosition("AFTER_SEQUENCE_NUMBER", last_read)
    return None
