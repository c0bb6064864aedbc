"""The poller of a stream event source mapping, and the Kinesis source (plugged into
sources/base.py by name; DynamoDB Streams plugs its own source in sources/dynamodb_poller.py).

`StreamMappingPoller` runs one `KinesisShardWorker` per shard of the stream, each with
ParallelizationFactor lanes (one batch at a time per shard, times ParallelizationFactor:
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html); what differs between
Kinesis and DynamoDB Streams is its `StreamSource` (sources/stream_source.py). What outlives
a poller lives in `StreamShared`, one per place pollers run and source kind: the shard read
limits, shared by every mapping on a stream as a shard's limits are shared by its consumers
(https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html); and in
`context.checkpoints` (sources/checkpoints.py), each mapping's shard checkpoints, advanced
as records are read and finished, so that an Update, a Disable/Enable or a new poller
process resumes where the mapping stopped, as AWS does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from emulator.backend.client import BackendError
from emulator.patterns.event_filter import MAX_FILTERS_ON_REQUEST, compile_filters, keeps_event_json
from emulator.policy.delivery_retry import Delivered, RetryDeliveryAt, new_delivery_state
from emulator.service.delivery_retries import deliver_until_deadline
from emulator.service.destinations import Destinations
from emulator.tasks import OwnedTasks
from emulator.sources.base import STOP_DRAIN_S, BackendOutage, PollerContext
from emulator.sources.kinesis_batching import POLL_INTERVAL_S, ShardPosition
from emulator.sources.kinesis_limits import MAX_RECORDS_PER_GET_RECORDS, ShardReadLimits, cap_response, record_bytes
from emulator.sources.kinesis_records import EventContext, LastAttempt, StreamRecord, on_failure_record, stream_record
from emulator.sources.kinesis_retry import INFINITE, StreamRetrySettings
from emulator.sources.kinesis_shard import KinesisShardWorker, emulated_arrival_mapper
from emulator.sources.mapping import EventSourceMapping
from emulator.sources.stream_source import ShardRead, StreamSource

# shapes.py gives every function this execution role; a Kinesis event record's
# invokeIdentityArn is the role (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html).
EXECUTION_ROLE_NAME = "lambda-emulator-role"
# A stream keeps its records 24 hours unless its retention was raised
# (https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html): how long
# an on-failure record of a mapping without MaximumRecordAgeInSeconds is retried at most.
STREAM_RETENTION_S = 24 * 3600
# Kinesis error codes the reader handles
# (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html#API_GetRecords_Errors).
EXPIRED_ITERATOR = "ExpiredIteratorException"
# Counters of a mapping, in /_emulator/metrics order.
COUNTERS = (
    "RecordsRead", "BatchesInvoked", "RecordsProcessed", "FunctionErrors", "ThrottledBatches", "InvokeErrors",
    "Retries", "Bisections", "RecordsExpired", "OnFailureRecordsSent", "OnFailureDeliveryRetries",
    "OnFailureDeliveryFailures", "RecordsDiscarded", "GetRecordsCalls", "GetRecordsErrors", "ReadThrottles",
    # Records, as AWS's event source mapping metrics count them
    # (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).
    "InvokedEventCount", "FailedInvokeEventCount", "OnFailureDestinationDeliveredEventCount", "FilteredOutEventCount",
)


@dataclass
class StreamShared:
    """Stream state that outlives one poller: the shard read limits. (Checkpoints live in
    `context.checkpoints`, which outlive the poller process too: sources/checkpoints.py.)"""

    read_limits: ShardReadLimits = field(default_factory=ShardReadLimits)


def stream_shared(context: PollerContext, kind: str) -> StreamShared:
    """The shared state of one source kind (PollerContext.shared is keyed by kind)."""
    shared = context.shared.get(kind)
    if shared is None:
        shared = context.shared[kind] = StreamShared()
    return shared


class KinesisSource:
    """Kinesis Data Streams behind the shard workers (sources/stream_source.py)."""

    name = "kinesis"
    poll_interval_s = POLL_INTERVAL_S
    max_records_per_call = MAX_RECORDS_PER_GET_RECORDS
    batch_info_key = "KinesisBatchInfo"
    expired_iterator_codes = frozenset({EXPIRED_ITERATOR})

    def __init__(self, context: PollerContext, mapping: EventSourceMapping, read_limits: ShardReadLimits) -> None:
        self.backend = context.backend
        self.stream_arn = mapping.event_source_arn
        self.settings = mapping.settings
        self.read_limits = read_limits

    async def list_shards(self) -> list[str]:
        return [shard["ShardId"] for shard in await self.backend.kinesis_list_shards(self.stream_arn)]

    async def shard_iterator(self, shard_id: str, position: ShardPosition | None) -> str:
        backend, settings = self.backend, self.settings
        if position is not None:
            return await backend.kinesis_shard_iterator(
                self.stream_arn, shard_id, position.iterator_type, sequence_number=position.sequence_number
            )
        if settings.starting_position == "AT_TIMESTAMP":
            return await backend.kinesis_shard_iterator(
                self.stream_arn, shard_id, "AT_TIMESTAMP", timestamp=settings.starting_position_timestamp
            )
        return await backend.kinesis_shard_iterator(self.stream_arn, shard_id, settings.starting_position or "LATEST")

    async def get_records(self, shard_id: str, iterator: str, limit: int, started: float) -> ShardRead:
        result = await self.backend.kinesis_get_records(self.stream_arn, iterator, limit)
        raw = result.get("Records") or []
        sizes = [record_bytes(r["Data"], r["PartitionKey"]) for r in raw]
        keep = cap_response(sizes)  # one answer holds at most 10 MB (kinesis_limits)
        self.read_limits.charge(self.stream_arn, shard_id, started, sum(sizes[:keep]))
        return ShardRead(raw[:keep], result.get("NextShardIterator"), int(result.get("MillisBehindLatest") or 0),
                         truncated=keep < len(raw))

    def may_read(self, shard_id: str, now: float) -> float | None:
        decision = self.read_limits.acquire(self.stream_arn, shard_id, now)
        return None if decision.granted else decision.retry_at

    def to_record(self, raw: Any, context: EventContext) -> StreamRecord:
        return stream_record(raw, context)


def create_poller(context: PollerContext, mapping: EventSourceMapping) -> "StreamMappingPoller":
    shared = stream_shared(context, KinesisSource.name)
    return StreamMappingPoller(context, mapping, KinesisSource(context, mapping, shared.read_limits), shared)


class StreamMappingPoller:
    def __init__(
        self, context: PollerContext, mapping: EventSourceMapping, source: StreamSource, shared: StreamShared,
        real_wall: Callable[[], float] = time.time,
    ) -> None:
        self.context = context
        self.mapping = mapping
        self.source = source
        self.log = logging.getLogger(f"emulator.sources.{source.name}")
        self.clock = context.clock
        self.region = context.region
        self.stream_arn = mapping.event_source_arn
        self.invoke_identity_arn = f"arn:aws:iam::{context.account_id}:role/{EXECUTION_ROLE_NAME}"
        self._checkpoints = context.checkpoints
        settings = mapping.settings
        self.retry_settings = StreamRetrySettings(
            maximum_retry_attempts=settings.maximum_retry_attempts,
            maximum_record_age_s=settings.maximum_record_age_s,
            bisect_on_function_error=settings.bisect_batch_on_function_error,
            report_batch_item_failures=settings.report_batch_item_failures,
            retry_delay_s=source.poll_interval_s,
        )
        # FilterCriteria (checked when the mapping was made): records no filter matches are
        # skipped, never sent (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
        self.event_filter = compile_filters(settings.filter_criteria, mapping.kind, MAX_FILTERS_ON_REQUEST)
        self.emulated_arrival = emulated_arrival_mapper(self.clock.wall(), real_wall(), self.clock.scale)
        self.destinations = Destinations(context.backend, _no_lambda_destination, _no_lambda_destination)
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self.workers: list[KinesisShardWorker] = []
        self.stopping = False
        self.outage = BackendOutage(self.log, self.stream_arn)  # GetRecords failures of every shard
        self._tasks = OwnedTasks(f"{source.name} mapping {self.mapping.uuid}", context.report_error)

    # -- the SourcePoller contract (sources/base.py) ---------------------------------------------
    async def start(self) -> None:
        for shard_id in await self.source.list_shards():
            start = self._checkpoints.position(self.mapping.uuid, shard_id)
            worker = KinesisShardWorker(self, shard_id, start)
            await worker.open()
            self.workers.append(worker)
        for worker in self.workers:
            worker.spawn()

    async def stop(self) -> None:
        self.stopping = True
        busy = set().union(*(worker.busy_tasks() for worker in self.workers))
        for task in self._tasks:
            if task not in busy:
                task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=STOP_DRAIN_S)
        await self._tasks.cancel_all()
        for worker in self.workers:
            self.advance_checkpoint(worker.shard_id, worker.checkpoint())

    def snapshot(self) -> dict[str, Any]:
        shards = {worker.shard_id: worker.snapshot() for worker in self.workers}
        ages = [shard["IteratorAgeMilliseconds"] for shard in shards.values()]
        return {
            "Pollers": 0 if self.stopping else sum(len(worker.lanes) for worker in self.workers),
            "BatchesInFlight": sum(worker.in_flight for worker in self.workers),
            # CloudWatch's IteratorAge of a mapping is the oldest of its shards.
            "IteratorAgeMilliseconds": max(ages, default=0),
            **dict(self.counters),
            "Shards": shards,
        }

    # -- services for the shard workers ---------------------------------------------------------
    def processing_result(self, result: str) -> None:
        """The mapping's LastProcessingResult (values as the Kinesis page shows them:
        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html); the manager hears of
        changes."""
        if self.mapping.last_processing_result != result:
            self.mapping.last_processing_result = result
            self.context.processing_result(self.mapping.uuid, result)

    def passes(self, record: StreamRecord) -> bool:
        """Whether the mapping's filters let the record through; counted when they do not."""
        if self.event_filter is None or keeps_event_json(self.event_filter, record.event_json):
            return True
        self.counters["FilteredOutEventCount"] += 1
        return False

    def advance_checkpoint(self, shard_id: str, position: ShardPosition | None) -> None:
        """Where the shard resumes if this poller stops or its process dies now."""
        if position is not None:
            self._checkpoints.advance(self.mapping.uuid, shard_id, position)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        return self._tasks.spawn(coro, name)

    async def sleep_until(self, when: float) -> None:
        delay = self.clock.to_real(when - self.clock.now())
        if delay > 0:
            await asyncio.sleep(delay)

    async def send_on_failure(
        self, event_context: EventContext, records: list[StreamRecord], condition: str, invokes: int, last: LastAttempt
    ) -> None:
        """The batch's metadata (not its records) goes to OnFailure; then move on
        (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html,
        https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)."""
        destination = self.mapping.settings.on_failure_destination
        if not destination:
            self.counters["RecordsDiscarded"] += len(records)
            self.log.warning(
                "%s mapping %s: %d record(s) of %s discarded (%s) with no on-failure destination",
                self.source.name, self.mapping.uuid, len(records), event_context.shard_id, condition,
            )
            return
        record = on_failure_record(
            records,
            context=event_context,
            function_arn=self.mapping.function_arn,
            condition=condition,
            invoke_count=invokes,
            last=last,
            # The real wall clock, as the async queue's records have it: under --time-scale the
            # clock's `wall` runs fast, and the record would be stamped in the future.
            now_wall=time.time(),
            batch_info_key=self.source.batch_info_key,
        )
        body = json.dumps(record)
        # AWS does not document what a failed delivery does to the shard (README, "Choices
        # where AWS is ambiguous"): the shard waits while it is retried on the schedule of
        # the async queue's deliveries (emulator/policy/delivery_retry.py), until the records
        # are too old to matter (their MaximumRecordAgeInSeconds, else the stream's
        # retention); then they are counted as discarded and the shard moves on.
        state = new_delivery_state(self._records_expire_at(records), self.clock.wall())

        def retrying(failure: str, decision: RetryDeliveryAt) -> None:
            self.counters["OnFailureDeliveryRetries"] += 1
            if decision.state.attempts == 1:  # the first failure says what is wrong; the retries stay quiet
                self.log.warning("stream mapping %s: on-failure delivery failed (%s); retrying until %.0f s from now",
                            self.mapping.uuid, failure, decision.state.deadline - self.clock.wall())

        decision, failure = await deliver_until_deadline(
            lambda: self.destinations.deliver_raw(destination, body, None), state,
            now=self.clock.wall, to_real=self.clock.to_real, rng=self.context.rng, on_retry=retrying,
        )
        if isinstance(decision, Delivered):
            self.counters["OnFailureRecordsSent"] += 1
            self.counters["OnFailureDestinationDeliveredEventCount"] += len(records)
            return
        self.counters["OnFailureDeliveryFailures"] += 1
        self.counters["RecordsDiscarded"] += len(records)
        self.log.warning("stream mapping %s: %d record(s) of %s discarded: the on-failure delivery to %s failed %d "
                    "time(s), the last: %s", self.mapping.uuid, len(records), event_context.shard_id, destination,
                    decision.state.attempts, failure)

    def _records_expire_at(self, records: list[StreamRecord]) -> float:
        """When the oldest of `records` is too old to deliver, on the wall timeline."""
        max_age = self.mapping.settings.maximum_record_age_s
        lifetime = STREAM_RETENTION_S if max_age == INFINITE else max_age
        return min(self.emulated_arrival(r.arrival) for r in records) + lifetime


def _no_lambda_destination(*_: Any) -> Any:
    # A stream mapping's OnFailure is SQS, SNS or S3, never a function (DestinationConfig in the
    # Lambda API model: https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
    raise BackendError("lambda", 400, "a function is not an on-failure destination of an event source mapping")
