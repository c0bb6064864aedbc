"""Kinesis shard read limits, which moto does not enforce (docs/measurements.md).

A pure policy, time passed in: `acquire_read(state, now)` says whether a GetRecords call on
a shard may run now, and `charge_read(state, now, bytes)` books what it returned. The state
is per shard and shared by every consumer of the shard (the read limits are per shard:
https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html, and Lambda
"shares" them with other consumers: https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html),
so all mappings on one stream draw from the same `ShardReadLimits` registry entry.

The byte budget is a debt: a response of `n` bytes makes the shard unreadable for
`n / 2 MiB` seconds from when it was returned. That one rule gives both documented
behaviours: 2 MB/s on average, and after a 10 MB response, calls within the next 5 s
throw ProvisionedThroughputExceededException
(https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Per shard, shared by all consumers of the standard iterator:
# https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
MAX_READ_CALLS_PER_SECOND = 5
READ_CALL_WINDOW_S = 1.0
READ_BYTES_PER_SECOND = 2 * 1024 * 1024
# One GetRecords returns at most 10,000 records and 10 MB:
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html
MAX_RECORDS_PER_GET_RECORDS = 10_000
MAX_BYTES_PER_GET_RECORDS = 10 * 1024 * 1024


@dataclass(frozen=True)
class ShardReadState:
    """What the shard's read limits remember: recent call times and the byte debt."""

    recent_calls: tuple[float, ...] = ()  # start times of calls within the last window
    bytes_free_at: float = -math.inf  # the byte budget is paid off at this time


@dataclass(frozen=True)
class ReadDecision:
    state: ShardReadState
    granted: bool
    # When refused: the earliest time a call can be granted.
    retry_at: float = 0.0


def acquire_read(state: ShardReadState, now: float) -> ReadDecision:
    """May a GetRecords call start at `now`? Granting it books the call."""
    calls = tuple(t for t in state.recent_calls if t > now - READ_CALL_WINDOW_S)
    trimmed = ShardReadState(calls, state.bytes_free_at)
    if now < state.bytes_free_at:
        return ReadDecision(trimmed, False, state.bytes_free_at)
    if len(calls) >= MAX_READ_CALLS_PER_SECOND:
        return ReadDecision(trimmed, False, calls[0] + READ_CALL_WINDOW_S)
    return ReadDecision(ShardReadState(calls + (now,), state.bytes_free_at), True, now)


def charge_read(state: ShardReadState, now: float, response_bytes: int) -> ShardReadState:
    """Book the bytes a granted call returned."""
    if response_bytes <= 0:
        return state
    start = max(now, state.bytes_free_at)
    return ShardReadState(state.recent_calls, start + response_bytes / READ_BYTES_PER_SECOND)


def record_bytes(data_base64: str, partition_key: str) -> int:
    """Bytes a record counts for against the read limits: its data blob plus partition key
    (the quotas page above counts the partition key towards record size)."""
    padding = data_base64[-2:].count("=")
    return (len(data_base64) * 3) // 4 - padding + len(partition_key.encode())


def cap_response(sizes: list[int], max_bytes: int = MAX_BYTES_PER_GET_RECORDS) -> int:
    """How many leading records of a response fit in one GetRecords answer (10 MB).

    At least one: Kinesis always returns a record that alone is under its size limit.
    """
    total = 0
    for index, size in enumerate(sizes):
        total += size
        if total > max_bytes:
            return max(1, index)
    return len(sizes)


@dataclass
class ShardReadLimits:
    """The read-limit state of every shard, keyed by (stream ARN, shard id)."""

    states: dict[tuple[str, str], ShardReadState] = field(default_factory=dict)
    throttled_calls: dict[tuple[str, str], int] = field(default_factory=dict)

    def acquire(self, stream_arn: str, shard_id: str, now: float) -> ReadDecision:
        key = (stream_arn, shard_id)
        decision = acquire_read(self.states.get(key, ShardReadState()), now)
        self.states[key] = decision.state
        if not decision.granted:
            self.throttled_calls[key] = self.throttled_calls.get(key, 0) + 1
        return decision

    def charge(self, stream_arn: str, shard_id: str, now: float, response_bytes: int) -> None:
        key = (stream_arn, shard_id)
        self.states[key] = charge_read(self.states.get(key, ShardReadState()), now, response_bytes)

    def clear(self) -> None:
        self.states.clear()
        self.throttled_calls.clear()
