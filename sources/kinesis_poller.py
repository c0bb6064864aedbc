"""The poller of a Kinesis event source mapping (plugged into sources/base.py by name).

One `KinesisShardWorker` per shard of the stream, each with ParallelizationFactor lanes
(one batch at a time per shard, times ParallelizationFactor:
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html). What outlives a poller
lives in `KinesisShared`, one per SourceManager: the shard read limits, shared by every
mapping on a stream as a shard's limits are shared by its consumers
(https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html), and each
mapping's checkpoints, so that an Update or a Disable/Enable resumes where the mapping
stopped, as AWS does.
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
from emulator.service.destinations import Destinations
from emulator.tasks import OwnedTasks
from emulator.sources.base import STOP_DRAIN_S, BackendOutage, PollerContext
from emulator.sources.kinesis_batching import ShardPosition
from emulator.sources.kinesis_limits import ShardReadLimits
from emulator.sources.kinesis_records import EventContext, LastAttempt, StreamRecord, on_failure_record
from emulator.sources.kinesis_retry import StreamRetrySettings
from emulator.sources.kinesis_shard import KinesisShardWorker, emulated_arrival_mapper
from emulator.sources.mapping import EventSourceMapping

log = logging.getLogger("emulator.sources.kinesis")

# shapes.py gives every function this execution role; a Kinesis event record's
# invokeIdentityArn is the role (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html).
EXECUTION_ROLE_NAME = "lambda-emulator-role"
# Key of the Kinesis state in PollerContext.shared.
SHARED_KEY = "kinesis"
# Counters of a mapping, in /_emulator/metrics order.
COUNTERS = (
    "RecordsRead", "BatchesInvoked", "RecordsProcessed", "FunctionErrors", "ThrottledBatches", "InvokeErrors",
    "Retries", "Bisections", "RecordsExpired", "OnFailureRecordsSent", "OnFailureDeliveryFailures",
    "RecordsDiscarded", "GetRecordsCalls", "GetRecordsErrors", "ReadThrottles",
)


@dataclass
class KinesisShared:
    """Kinesis state that outlives one poller: read limits and checkpoints per mapping."""

    read_limits: ShardReadLimits = field(default_factory=ShardReadLimits)
    checkpoints: dict[str, dict[str, ShardPosition]] = field(default_factory=dict)


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
        shared = kinesis_shared(context)
        self.read_limits = shared.read_limits
        self._checkpoints = shared.checkpoints.setdefault(mapping.uuid, {})
        settings = mapping.settings
        self.retry_settings = StreamRetrySettings(
            maximum_retry_attempts=settings.maximum_retry_attempts,
            maximum_record_age_s=settings.maximum_record_age_s,
            bisect_on_function_error=settings.bisect_batch_on_function_error,
            report_batch_item_failures=settings.report_batch_item_failures,
        )
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
            worker = KinesisShardWorker(self, shard["ShardId"], self._checkpoints.get(shard["ShardId"]))
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
            position = worker.checkpoint()
            if position is not None:
                self._checkpoints[worker.shard_id] = position

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
            # The real wall clock, as the async queue's records have it: under --time-scale the
            # clock's `wall` runs fast, and the record would be stamped in the future.
            now_wall=time.time(),
        )
        delivered = await self.destinations.send_raw(destination, json.dumps(record), None)
        if delivered:
            self.counters["OnFailureRecordsSent"] += 1
        else:
            # AWS does not document what a failed delivery does to the shard; the records are
            # counted as discarded and the shard moves on (README, "Choices where AWS is
            # ambiguous").
            self.counters["OnFailureDeliveryFailures"] += 1
            self.counters["RecordsDiscarded"] += len(records)


def _no_lambda_destination(*_: Any) -> Any:
    # A stream mapping's OnFailure is SQS, SNS or S3, never a function (DestinationConfig in the
    # Lambda API model: https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
    raise BackendError("lambda", 400, "a function is not an on-failure destination of an event source mapping")
