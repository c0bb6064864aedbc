"""One shard of a stream mapping (Kinesis or DynamoDB Streams): a reader task and
ParallelizationFactor lane tasks.

The reader calls GetRecords through the mapping's `StreamSource` (sources/stream_source.py)
at the cadence of kinesis_batching.next_poll_at, within the shard's read limits, and
deals each record to the lane of its partition key. Each lane runs one batch at a time,
in order: batching (kinesis_batching.take_batch), invoking through the Lambda service's
admission control, then the retry policy (kinesis_retry) decides. Records leave a lane
only when finished (processed, or handed to OnFailure), so the shard's checkpoint is the
oldest record any lane still holds. Every wait is on the one injected clock, so
--time-scale speeds the whole shard up alike.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from emulator.backend.client import BackendError
from emulator.sources.base import BACKEND_FAILURES
from emulator.errors import AwsError, TooManyRequests
from emulator.sources.kinesis_batching import (
    ShardPosition,
    TakeBatch,
    lane_of,
    next_poll_at,
    read_ahead_limit,
    shard_checkpoint,
    take_batch,
)
from emulator.sources.kinesis_records import EventContext, LastAttempt, StreamRecord, event_payload
from emulator.sources.kinesis_retry import (
    BatchStep,
    InvokeOutcome,
    InvokeReport,
    Segment,
    after_invoke,
    classify_response,
    expire_old_records,
)
from emulator.sources.stream_source import ShardRead

if TYPE_CHECKING:
    from emulator.sources.kinesis_poller import StreamMappingPoller

# LastProcessingResult values, as https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html shows them.
RESULT_OK = "OK"
RESULT_FUNCTION_FAILED = "PROBLEM: Function call failed"


@dataclass
class KinesisLane:
    """Records of one ParallelizationFactor lane, oldest first, and its pending batches."""

    index: int
    records: deque[StreamRecord] = field(default_factory=deque)
    segments: tuple[Segment, ...] = ()
    window_started_at: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False  # invoking a batch, or settling its outcome: stop() lets it finish
    task: asyncio.Task | None = None
    last_attempt: LastAttempt = field(default_factory=LastAttempt)

    def head(self, count: int) -> list[StreamRecord]:
        return list(islice(self.records, count))


class KinesisShardWorker:
    def __init__(self, owner: "StreamMappingPoller", shard_id: str, start: ShardPosition | None) -> None:
        self.owner = owner
        self.shard_id = shard_id
        self.start_position = start
        settings = owner.mapping.settings
        self.event_context = EventContext(owner.stream_arn, shard_id, owner.region, owner.invoke_identity_arn)
        self.lanes = [KinesisLane(index) for index in range(settings.parallelization_factor)]
        self.read_ahead = read_ahead_limit(settings.batch_size, settings.parallelization_factor)
        self.buffered = 0
        self.room = asyncio.Event()
        self.last_read: str | None = None
        self.anchored = start is not None  # resumes at a sequence number (not a new LATEST)
        self.iterator: str | None = None
        self.closed = False  # the shard is closed and fully read
        self.millis_behind_latest = 0
        self.iterator_age_ms = 0.0

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Get the first shard iterator (raises when the backend refuses)."""
        self.iterator = await self._new_iterator(self.start_position)

    def spawn(self) -> None:
        now = self.owner.clock.now()
        for lane in self.lanes:
            lane.window_started_at = now
            lane.task = self.owner.spawn(self._lane_loop(lane), f"{self.owner.source.name} {self.shard_id} lane {lane.index}")
        self.owner.spawn(self._read_loop(), f"{self.owner.source.name} {self.shard_id} reader")

    def checkpoint(self) -> ShardPosition | None:
        lowest = [lane.records[0].sequence_number if lane.records else None for lane in self.lanes]
        position = shard_checkpoint(lowest, self.last_read)
        return position if position is not None else self.start_position

    @property
    def in_flight(self) -> int:
        return sum(1 for lane in self.lanes if lane.busy)

    def busy_tasks(self) -> set[asyncio.Task]:
        return {lane.task for lane in self.lanes if lane.busy and lane.task is not None}

    def snapshot(self) -> dict[str, Any]:
        position = self.checkpoint()
        return {
            "IteratorAgeMilliseconds": int(self.iterator_age_ms),
            "MillisBehindLatest": self.millis_behind_latest,
            "BufferedRecords": self.buffered,
            "BatchesInFlight": self.in_flight,
            "Lanes": len(self.lanes),
            "Checkpoint": None if position is None else f"{position.iterator_type}:{position.sequence_number}",
        }

    # -- reading ----------------------------------------------------------------------------
    async def _new_iterator(self, position: ShardPosition | None) -> str:
        return await self.owner.source.shard_iterator(self.shard_id, position)

    def _read_position(self) -> ShardPosition | None:
        """Where reading continues with a new iterator: after the newest record read."""
        if self.last_read is not None:
            return ShardPosition("AFTER_SEQUENCE_NUMBER", self.last_read)
        return self.start_position

    async def _read_loop(self) -> None:
        owner = self.owner
        source = owner.source
        clock = owner.clock
        next_at = clock.now()
        while not self.closed and not owner.stopping:
            room = self.read_ahead - self.buffered
            if room <= 0:
                self.room.clear()
                await self.room.wait()
                continue
            await owner.sleep_until(next_at)
            started = clock.now()
            retry_at = source.may_read(self.shard_id, started)
            if retry_at is not None:
                owner.counters["ReadThrottles"] += 1  # ProvisionedThroughputExceeded on AWS
                next_at = retry_at
                continue
            requested = min(room, source.max_records_per_call)
            result = await self._get_records(requested, started)
            if result is None:
                # AWS documents no back-off for a failing GetRecords: one poll interval.
                next_at = clock.now() + source.poll_interval_s
                continue
            fetched = self._accept(result)
            if not fetched and self.buffered == 0:
                self.iterator_age_ms = 0.0  # caught up: nothing read, nothing pending
            next_at = next_poll_at(started, fetched, requested, self.millis_behind_latest, source.poll_interval_s)

    async def _get_records(self, limit: int, started: float) -> ShardRead | None:
        owner = self.owner
        owner.counters["GetRecordsCalls"] += 1
        try:
            if self.iterator is None:
                self.iterator = await self._new_iterator(self._read_position())
            result = await owner.source.get_records(self.shard_id, self.iterator, limit, started)
        except BACKEND_FAILURES as error:
            # Iterators expire (Kinesis: 5 min, DynamoDB Streams: 15 min): take a new one.
            if isinstance(error, BackendError) and error.code in owner.source.expired_iterator_codes:
                self.iterator = None
                return None
            owner.counters["GetRecordsErrors"] += 1
            owner.outage.failed(f"GetRecords on {self.shard_id}", error)
            return None
        owner.outage.answered()
        return result

    def _accept(self, result: ShardRead) -> int:
        owner = self.owner
        self.millis_behind_latest = result.millis_behind_latest
        if result.truncated:
            # The answer stopped short for size: re-read the rest from after what was kept.
            self.iterator = None
            self.millis_behind_latest = max(self.millis_behind_latest, 1)
        else:
            self.iterator = result.next_iterator
            self.closed = self.iterator is None  # null once a closed shard is fully read
        lanes = len(self.lanes)
        kept = 0
        record = None
        for entry in result.records:
            record = owner.source.to_record(entry, self.event_context)
            if not owner.passes(record):
                continue  # filtered out: skipped, and passed by the checkpoint like a processed record
            lane = self.lanes[lane_of(record.partition_key, lanes)]
            lane.records.append(record)
            lane.wake.set()
            kept += 1
        if record is not None:
            self.buffered += kept
            self.last_read = record.sequence_number
            owner.counters["RecordsRead"] += len(result.records)
            if not self.anchored or kept < len(result.records):
                # The first records of a LATEST or AT_TIMESTAMP start: from here on the shard
                # resumes at a sequence number, not at a new "latest". Filtered-out records
                # move the checkpoint too, as no batch will.
                self.anchored = True
                owner.advance_checkpoint(self.shard_id, self.checkpoint())
        return len(result.records)

    # -- processing -------------------------------------------------------------------------
    async def _lane_loop(self, lane: KinesisLane) -> None:
        owner = self.owner
        settings = owner.mapping.settings
        clock = owner.clock
        while not owner.stopping:
            if not lane.segments:
                sizes = [len(r.event_json) for r in islice(lane.records, settings.batch_size + 1)]
                decision = take_batch(
                    sizes, settings.batch_size, settings.maximum_batching_window_s, lane.window_started_at, clock.now()
                )
                if not isinstance(decision, TakeBatch):
                    await self._wait_for_records(lane, decision.until)
                    continue
                lane.segments = (Segment(decision.count),)
            lane.busy = True
            try:
                step = await self._run_head(lane)
            finally:
                lane.busy = False
            if owner.stopping:
                return
            if not lane.segments:
                # The next batching window begins when the invocation completes:
                # https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html
                lane.window_started_at = clock.now()
            if step.retry_at is not None:
                await owner.sleep_until(step.retry_at)

    async def _run_head(self, lane: KinesisLane) -> BatchStep:
        """Invoke the lane's head batch (unless its records are too old) and settle the outcome."""
        owner, clock = self.owner, self.owner.clock
        head = lane.head(lane.segments[0].count)
        arrivals = [owner.emulated_arrival(r.arrival) for r in head]
        # Arrival stamps are epoch times: record ages are measured on the wall timeline.
        expired = expire_old_records(lane.segments, arrivals, owner.retry_settings, clock.wall())
        if expired is not None:
            owner.counters["RecordsExpired"] += expired.fail
            await self._apply(lane, expired)
            return expired
        self.iterator_age_ms = max(0.0, clock.wall() - arrivals[-1]) * 1000
        report = await self._invoke(lane, head)
        step = after_invoke(lane.segments, report, owner.retry_settings, clock.now())
        await self._apply(lane, step)
        return step

    async def _wait_for_records(self, lane: KinesisLane, until: float | None) -> None:
        lane.wake.clear()
        if until is None:
            await lane.wake.wait()
            return
        try:
            await asyncio.wait_for(lane.wake.wait(), self.owner.clock.to_real(until - self.owner.clock.now()))
        except asyncio.TimeoutError:
            pass

    async def _invoke(self, lane: KinesisLane, batch: list[StreamRecord]) -> InvokeReport:
        owner = self.owner
        mapping = owner.mapping
        try:
            result = await owner.context.functions.invoke(mapping.function_arn, event_payload(batch))
        except TooManyRequests:
            # A throttle is retried and does not count towards MaximumRetryAttempts:
            # https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
            owner.counters["ThrottledBatches"] += 1
            owner.counters["FailedInvokeEventCount"] += len(batch)
            lane.last_attempt = LastAttempt(status_code=429)
            return InvokeReport(InvokeOutcome.NOT_INVOKED)
        except AwsError as error:
            owner.counters["InvokeErrors"] += 1
            owner.counters["FailedInvokeEventCount"] += len(batch)
            lane.last_attempt = LastAttempt(status_code=error.status)
            owner.log.warning("%s mapping %s: invoke failed before the function ran: %s", owner.source.name, mapping.uuid,
                              error.message)
            return InvokeReport(InvokeOutcome.NOT_INVOKED)
        owner.counters["BatchesInvoked"] += 1
        owner.counters["InvokedEventCount"] += len(batch)
        lane.last_attempt = LastAttempt(200, result.function_error, result.executed_version)
        report = classify_response(
            result.function_error,
            result.payload,
            [r.sequence_number for r in batch],
            mapping.settings.report_batch_item_failures,
        )
        if report.outcome is InvokeOutcome.SUCCESS:
            owner.processing_result(RESULT_OK)
        else:
            owner.counters["FunctionErrors"] += 1
            owner.counters["FailedInvokeEventCount"] += len(batch)
            owner.processing_result(RESULT_FUNCTION_FAILED)
        return report

    async def _apply(self, lane: KinesisLane, step: BatchStep) -> None:
        owner = self.owner
        counters = owner.counters
        for _ in range(step.commit):
            lane.records.popleft()
        counters["RecordsProcessed"] += step.commit
        counters["Bisections"] += int(step.bisected)
        counters["Retries"] += int(step.retried)
        failed = [lane.records.popleft() for _ in range(step.fail)]
        lane.segments = step.segments
        finished = step.commit + step.fail
        if finished:
            self.buffered -= finished
            self.room.set()
        if failed:
            assert step.condition is not None
            await owner.send_on_failure(self.event_context, failed, str(step.condition), step.failed_invokes, lane.last_attempt)
        if finished:
            owner.advance_checkpoint(self.shard_id, self.checkpoint())


def emulated_arrival_mapper(clock_wall: float, real_wall: float, scale: float) -> Callable[[float], float]:
    """Maps a real epoch time (Kinesis arrival stamps come from the backend's clock) to the
    emulated timeline, so that record ages run at --time-scale like every other timer."""
    if not math.isfinite(scale):
        return lambda arrival: arrival  # a VirtualClock: arrivals are already on its timeline
    return lambda arrival: clock_wall + (arrival - real_wall) * scale
