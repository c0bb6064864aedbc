"""What a stream event source (Kinesis, DynamoDB Streams) gives its shard workers.

The shard workers (sources/kinesis_shard.py) and the mapping poller (sources/kinesis_poller.py)
run every stream mapping alike: lanes per ParallelizationFactor, batching, retries,
bisecting, checkpoints, on-failure records (Lambda documents the same parameters and
behaviour for both: https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html and
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html). What differs is behind a
`StreamSource`: how shards are listed and read, the cadence, the read limits, the event
record's shape and the name of the batch description in the on-failure record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from emulator.sources.kinesis_batching import ShardPosition
    from emulator.sources.kinesis_records import EventContext, StreamRecord


@dataclass(frozen=True)
class ShardRead:
    """One GetRecords answer, as a shard worker needs it."""

    records: list[Any]  # the source's raw records, oldest first
    next_iterator: str | None  # None: the shard is closed and read to its end
    millis_behind_latest: int = 0
    # The answer stopped short of the shard's end for size (the worker continues at once,
    # from after the last record, with a new iterator).
    truncated: bool = False


class StreamSource(Protocol):
    name: str  # "kinesis", "dynamodb": log lines, task names, the poller's shared state
    poll_interval_s: float  # the base polling rate of a shard
    max_records_per_call: int  # GetRecords' Limit ceiling
    batch_info_key: str  # "KinesisBatchInfo" / "DDBStreamBatchInfo" in the on-failure record
    expired_iterator_codes: frozenset[str]  # errors after which a new iterator is taken

    async def list_shards(self) -> list[str]: ...

    async def shard_iterator(self, shard_id: str, position: "ShardPosition | None") -> str:
        """An iterator at `position`, or at the mapping's StartingPosition when None."""
        ...

    async def get_records(self, shard_id: str, iterator: str, limit: int, started: float) -> ShardRead: ...

    def may_read(self, shard_id: str, now: float) -> float | None:
        """None when a GetRecords on the shard may start now, else when it may (read limits)."""
        ...

    def to_record(self, raw: Any, context: "EventContext") -> "StreamRecord": ...
