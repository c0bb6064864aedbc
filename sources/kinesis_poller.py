"""The poller of a Kinesis event source mapping (plugged into sources/base.py by name).

One `KinesisShardWorker` per shard of the stream, each with ParallelizationFactor lanes
(one batch at a time per shard, times ParallelizationFactor:
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html). What outlives a poller
lives in `KinesisShared`, one per place pollers run: the shard read limits, shared by every
mapping on a stream as a shard's limits are shared by its consumers
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
from emulator.sources.kinesis_batching import ShardPosition
from emulator.sources.kinesis_limits import ShardReadLimits
from emulator.sources.kinesis_records import EventContext, LastAttempt, StreamRecord, on_failure_record
from emulator.sources.kinesis_retry import INFINITE, StreamRetrySettings
from emulator.sources.kinesis_shard import KinesisShardWorker, emulated_arrival_mapper
from emulator.sources.mapping import EventSourceMapping

log = logging.getLogger("emulator.sources.kinesis")

# shapes.py gives every function this execution role; a Kinesis event record's
# invokeIdentityArn is the role (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html).
EXECUTION_ROLE_NAME = "lambda-emulator-role"
# Key of the Kinesis state in PollerContext.shared.
SHARED_KEY = "kinesis"
# A stream keeps its records 24 hours unless its retention was raised
# (https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html): how long
# an on-failure record of a mapping without MaximumRecordAgeInSeconds is retried at most.
STREAM_RETENTION_S = 24 * 3600
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
class KinesisShared:
    """Kinesis state that outlives one poller: the shard read limits."""

    read_limits: ShardReadLimits = field(default_factory=ShardReadLimits)


def kinesis_shared(context: PollerContext) -> KinesisShared:
    shared = context.shared.get(SHARED_KEY)
    if shared is None:
        shared = context.shared[SHARED_KEY] = KinesisShared()
    return shared


def create_poller(context: PollerContext, mapping: EventSourceMapping) -> "KinesisMappingPoller":
    return KinesisMappingPoller(context, mapping)


class KinesisMappingPoller:
    def __init__(
        self, context: PollerContext, mapping: EventSourceMapping, real_wall: Callable[[], float] = time.time
    ) -> None:
        self.context = context
        self.mapping = mapping
        self.clock = context.clock
        self.region = context.region
        self.stream_arn = mapping.event_source_arn
        self.invoke_identity_arn = f"arn:aws:iam::{context.account_id}:role/{EXECUTION_ROLE_NAME}"
        self.read_limits = kinesis_shared(context).read_limits
        self._checkpoints = context.checkpoints
        settings = mapping.settings
        self.retry_settings = StreamRetrySettings(
            maximum_retry_attempts=settings.maximum_retry_attempts,
            maximum_record_age_s=settings.maximum_record_age_s,
            bisect_on_function_error=settings.bisect_batch_on_function_error,
            report_batch_item_failures=settings.report_batch_item_failures,
        )
        # FilterCriteria (checked when the mapping was made): records no filter matches are
        # skipped, never sent (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
        self.event_filter = compile_filters(settings.filter_criteria, mapping.kind, MAX_FILTERS_ON_REQUEST)
        self.emulated_arrival = emulated_arrival_mapper(self.clock.wall(), real_wall(), self.clock.scale)
        self.destinations = Destinations(context.backend, _no_lambda_destination, _no_lambda_destination)
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self.workers: list[KinesisShardWorker] = []
        self.stopping = False
        self.outage = BackendOutage(log, self.stream_arn)  # GetRecords failures of every shard
        self._tasks = OwnedTasks(f"kinesis mapping {self.mapping.uuid}", context.report_error)

    # -- the SourcePoller contract (sources/base.py) ---------------------------------------------
    async def start(self) -> None:
        shards = await self.context.backend.kinesis_list_shards(self.stream_arn)
        for shard in shards:
            start = self._checkpoints.position(self.mapping.uuid, shard["ShardId"])
            worker = KinesisShardWorker(self, shard["ShardId"], start)
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
        (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html)."""
        destination = self.mapping.settings.on_failure_destination
        if not destination:
            self.counters["RecordsDiscarded"] += len(records)
            log.warning(
                "kinesis mapping %s: %d record(s) of %s discarded (%s) with no on-failure destination",
                self.mapping.uuid, len(records), event_context.shard_id, condition,
            )
            return
        record = on_failure_record(
            records,
            context=event_context,
            function_arn=self.mapping.function_arn,
            condition=condition,
            invoke_count=invokes,
            last=last,
            now_wall=self.clock.wall(),
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
                log.warning("kinesis mapping %s: on-failure delivery failed (%s); retrying until %.0f s from now",
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
        log.warning("kinesis mapping %s: %d record(s) of %s discarded: the on-failure delivery to %s failed %d "
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
