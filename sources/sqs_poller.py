"""The SQS poller of one event source mapping: concurrent batch workers, as Lambda runs them.

A controller task asks the scaling policy (sources/sqs_scaling.py) for a target once per
decision interval and keeps that many batch workers. Each worker loops:

1. gather a batch (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html,
   https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): ReceiveMessage up to 10 at
   a time (long poll), repeated while a batching window is open, until BatchSize, the
   window or the 6 MB cap; received messages stay invisible meanwhile;
2. invoke the function synchronously through `LambdaService.invoke`, the same admission
   control as every other caller. A throttle is retried with back-off until the batch's
   visibility timeout would expire
   (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html), then
   dropped: the messages become visible again with a higher receive count, and a redrive
   policy moves them to the DLQ exactly as on AWS — the "overpull" problem (Zac Charles,
   https://zaccharles.medium.com/does-maximum-concurrency-solve-the-lambda-sqs-issue-3c19701e6e75);
3. on success delete the batch; on a function error leave it for its visibility timeout;
   with ReportBatchItemFailures delete all but the failed messages (the error-handling
   page above).

With FilterCriteria, a received message that no filter matches is deleted at once and
never sent (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).

The controller also watches the queue's dead-letter queue, if it has one, for metrics.
All backend I/O is async (aiohttp); every wait goes through the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple, Protocol

from emulator.errors import AwsError, TooManyRequests
from emulator.patterns.event_filter import MAX_FILTERS_ON_REQUEST, SQS, compile_filters
from emulator.tasks import OwnedTasks
from emulator.sources.base import BACKEND_FAILURES, STOP_DRAIN_S, BackendOutage, BatchResult, PollerContext
from emulator.sources.mapping import EventSourceMapping
from emulator.policy.backoff import doubling_step, equal_jitter, full_jitter
from emulator.sources.sqs_records import (
    BatchPayload, PendingMessage, failed_item_ids, pending_from_record, retry_ids, sqs_record,
)
from emulator.sources.sqs_scaling import (
    DECISION_INTERVAL_S, PollWindow, SqsScalingConfig, SqsScalingState, decide, initial_state,
)

log = logging.getLogger("emulator.sources.sqs")

# At most 10 messages per ReceiveMessage, long polls up to 20 s:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
MAX_MESSAGES_PER_RECEIVE = 10
LONG_POLL_S = 20
# With a batching window, when window + function timeout exceed the queue's visibility
# timeout, the effective one is window + timeout + 30 s. AWS's 2022 SQS page said so
# (https://github.com/awsdocs/aws-lambda-developer-guide/blob/38e9014eba7b2de5dff7e353de675d991e58947d/doc_source/with-sqs.md);
# the current one (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html) was not
# rechecked for it.
EFFECTIVE_VISIBILITY_MARGIN_S = 30
# Throttled batches are retried "gradually" until their visibility timeout runs out
# (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). AWS gives
# no delays (README, "Choices where AWS is ambiguous"); we use the shape of the async
# queue's throttle retries (exponential from 1 s), capped at one minute, with full jitter
# (emulator/policy/backoff.py): up to 1,000 batches throttled at once must not come back
# at once.
THROTTLE_RETRY_INITIAL_S = 1.0
THROTTLE_RETRY_MAX_S = 60.0
# Why a message received at its queue's maxReceiveCount was not deleted, so that the next
# receive moves it to the DLQ (DeadLetterBoundByCause; the report's "DLQ: why"): its batch
# was throttled until given up (never ran), failed (function error, partial failure), ran
# past the visibility timeout (the message was received again, i.e. moved, before the
# delete: ReceiptHandleIsInvalid), or something else (the function was gone, the mapping
# stopped, the delete call failed). SQS moves a message whose receive count passed
# maxReceiveCount to the DLQ:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
THROTTLED, FAILED, VISIBILITY_EXPIRED, OTHER = "Throttled", "Failed", "VisibilityTimeoutExpired", "Other"
# DeleteMessageBatch's code for a handle that is no longer the message's latest
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html).
RECEIPT_HANDLE_INVALID = "ReceiptHandleIsInvalid"
# Not AWS figures — how this poller paces itself:
# after an empty short poll (a batching window about to close, or any FIFO receive: see
# `_wait_seconds`);
EMPTY_POLL_PAUSE_S = 0.2
# after a backend error (the queue deleted, the backend restarting), doubling up to 10 s
# per worker while the errors last, with equal jitter (the workers spread out);
BACKEND_RETRY_INITIAL_S = 0.5
BACKEND_RETRY_MAX_S = 10.0
# how often queue attributes (visibility timeout, redrive policy), the function's timeout
# and the DLQ depth are re-read, in real seconds: observation, not an emulated timer.
ATTRIBUTE_REFRESH_S = 30.0
DLQ_POLL_S = 1.0


class WorkerPhase(Enum):
    RECEIVING = "receiving"
    INVOKING = "invoking"


@dataclass
class QueueInfo:
    url: str
    visibility_timeout: int
    fifo: bool
    max_receive_count: int | None
    dead_letter_arn: str | None


@dataclass
class SqsPollerStats:
    messages_received: int = 0
    messages_deleted: int = 0
    messages_returned: int = 0  # left for the visibility timeout (error, throttle, partial)
    messages_at_max_receive_count: int = 0  # not deleted with ReceiveCount ≥ maxReceiveCount: DLQ-bound
    # The same, by why (THROTTLED, FAILED, VISIBILITY_EXPIRED, OTHER above).
    dead_letter_bound: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    batches_succeeded: int = 0
    batches_failed: int = 0  # function error, or an unreadable partial batch response
    batches_partially_failed: int = 0
    batches_throttled: int = 0  # batches that saw at least one throttle
    batches_dropped_throttled: int = 0  # gave up: the visibility timeout ran out while throttled
    throttles: int = 0  # every throttled attempt
    delete_failures: int = 0
    filtered_out: int = 0  # FilteredOutEventCount: matched no filter, deleted unsent
    # Messages, as AWS's event source mapping metrics count them
    # (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html):
    events_invoked: int = 0  # InvokedEventCount: in batches the function ran with
    events_failed_invoke: int = 0  # FailedInvokeEventCount: failed, or throttled until given up
    dlq_depth: int | None = None
    dlq_arrivals: int = 0


@dataclass
class _Window:
    full_receives: int = 0
    partial_receives: int = 0
    empty_receives: int = 0
    failed_batches: int = 0
    throttled_batches: int = 0

    def freeze(self) -> PollWindow:
        return PollWindow(self.full_receives, self.empty_receives, self.failed_batches, self.throttled_batches,
                          self.partial_receives)


class _Received(Protocol):
    message_id: str
    receipt_handle: str
    receive_count: int


class _Held(NamedTuple):
    """A received message that is not in a batch (filtered out)."""

    message_id: str
    receipt_handle: str
    receive_count: int


@dataclass
class _Fate:
    """What this mapping's batches did with one message they hold. Several hold it when the
    visibility timeout ran out while one still ran and another received it again."""

    holders: int = 0
    deleted: bool = False  # by any of them
    why: str | None = None  # why the one that received it at maxReceiveCount left it
    receive_count: int = 0  # that receive's count


@dataclass
class _Batch:
    payload: BatchPayload
    received_at: float  # real (loop) time of the first receive, for the visibility deadline
    visibility_timeout: float  # real seconds


class SqsPoller:
    def __init__(self, context: PollerContext, mapping: EventSourceMapping) -> None:
        self.context = context
        self.mapping = mapping
        self.stats = SqsPollerStats()
        config = context.config
        self.scaling = SqsScalingConfig.for_model(
            config.sqs_scaling_model, ceiling=config.sqs_max_concurrency,
            maximum_concurrency=mapping.settings.maximum_concurrency,
        ).scaled(config.scale_factor)
        self.queue: QueueInfo | None = None
        self._state: SqsScalingState | None = None
        self._window = _Window()
        self._workers: dict[int, asyncio.Task] = {}
        self._phase: dict[int, WorkerPhase] = {}
        self._receiving_since: dict[int, float] = {}  # slot -> real time its current receive began
        # FIFO: one ReceiveMessage at a time per mapping. moto 5.2 does not lock a receive, so
        # two concurrent ones can hand out two messages of one group out of order.
        self._fifo_receive = asyncio.Lock()
        self._tasks = OwnedTasks(f"sqs poller {mapping.uuid}", context.report_error)
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._outage = BackendOutage(log, mapping.event_source_arn)
        self._timeout_cache: tuple[float | None, float] | None = None  # (function Timeout, loop time asked)
        # FilterCriteria, checked when the mapping was made (sources/validation.py).
        self.event_filter = compile_filters(mapping.settings.filter_criteria, SQS, MAX_FILTERS_ON_REQUEST)
        self._extension_logged = 0  # the visibility extension last logged (once per value)
        self._fates: dict[str, _Fate] = {}  # message id -> what the batches holding it did (_hold, _ended)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._spawn(self._control(), "control")

    async def stop(self) -> None:
        self._stopping = True
        self._stop_event.set()  # wakes batches waiting to retry a throttle: they are left at once
        for task in list(self._tasks):
            task.cancel()
        for slot, task in list(self._workers.items()):
            if self._phase.get(slot) is not WorkerPhase.INVOKING:
                task.cancel()  # a receive in progress: its messages are left for their VT
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=STOP_DRAIN_S)
            for task in late:
                task.cancel()
        everything = workers + list(self._tasks)
        if everything:
            await asyncio.gather(*everything, return_exceptions=True)
        self._fates.clear()  # receives cancelled above never reached _ended

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        body: dict[str, Any] = {
            "Pollers": len(self._workers),
            "TargetConcurrency": self._state.target if self._state else 0,
            "BatchesInFlight": sum(1 for p in self._phase.values() if p is WorkerPhase.INVOKING),
            "MessagesReceived": s.messages_received,
            "MessagesDeleted": s.messages_deleted,
            "MessagesReturned": s.messages_returned,
            "MessagesReturnedAtMaxReceiveCount": s.messages_at_max_receive_count,
            "DeadLetterBoundByCause": dict(s.dead_letter_bound),
            "Invocations": s.invocations,
            "BatchesSucceeded": s.batches_succeeded,
            "BatchesFailed": s.batches_failed,
            "BatchesPartiallyFailed": s.batches_partially_failed,
            "BatchesThrottled": s.batches_throttled,
            "BatchesDroppedAfterThrottling": s.batches_dropped_throttled,
            "Throttles": s.throttles,
            "DeleteFailures": s.delete_failures,
            "InvokedEventCount": s.events_invoked,
            "FailedInvokeEventCount": s.events_failed_invoke,
            "FilteredOutEventCount": s.filtered_out,
            "BackendErrors": self._outage.failures,
        }
        if self.queue is not None and self.queue.dead_letter_arn:
            body["DeadLetterQueueArn"] = self.queue.dead_letter_arn
            body["MaxReceiveCount"] = self.queue.max_receive_count
            body["DeadLetterQueueDepth"] = s.dlq_depth
            body["DeadLetterArrivals"] = s.dlq_arrivals
        return body

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.spawn(coro, name)

    # -- control --------------------------------------------------------------------------
    async def _control(self) -> None:
        clock = self.context.clock
        loop = asyncio.get_running_loop()
        failures = 0
        while self.queue is None:
            try:
                self.queue = await self._queue_info()
            except BACKEND_FAILURES as exc:
                failures = await self._backend_failed("reading the queue's attributes", exc, failures)
        self._outage.answered()
        self._state = initial_state(self.scaling, clock.now())
        if self.queue.dead_letter_arn:
            self._spawn(self._watch_dead_letter_queue(self.queue.dead_letter_arn), "DLQ watch")
        refreshed = window_start = loop.time()
        while not self._stopping:
            self._ensure_workers()
            await asyncio.sleep(clock.to_real(DECISION_INTERVAL_S))
            window, self._window = self._window, _Window()
            # A long poll still waiting since before the window began found nothing all window:
            # the queue had no message for that poller, so it counts as an empty receive.
            window.empty_receives += sum(1 for t in self._receiving_since.values() if t <= window_start)
            window_start = loop.time()
            self._state = decide(self._state, window.freeze(), clock.now(), self.scaling)
            if loop.time() - refreshed >= ATTRIBUTE_REFRESH_S:
                refreshed = loop.time()
                try:
                    self.queue = await self._queue_info()
                except BACKEND_FAILURES as exc:
                    log.debug("%s: cannot refresh the queue's attributes: %s", self.mapping.event_source_arn, exc)

    def _ensure_workers(self) -> None:
        assert self._state is not None
        for slot in range(self._state.target):
            if slot not in self._workers:
                task = asyncio.ensure_future(self._worker(slot))
                task.set_name(f"sqs poller {self.mapping.uuid}: worker {slot}")
                self._workers[slot] = task
                task.add_done_callback(lambda t, slot=slot: self._worker_done(slot, t))

    def _worker_done(self, slot: int, task: asyncio.Task) -> None:
        if self._workers.get(slot) is task:
            del self._workers[slot]
            self._phase.pop(slot, None)
        if not task.cancelled() and task.exception() is not None:
            self.context.report_error(task.exception())  # type: ignore[arg-type]

    async def _queue_info(self) -> QueueInfo:
        backend = self.context.backend
        url = self.queue.url if self.queue else await backend.queue_url(self.mapping.event_source_arn)
        attributes = await backend.sqs_queue_attributes(url)
        redrive = attributes.get("RedrivePolicy")
        policy = json.loads(redrive) if redrive else {}
        max_receive = policy.get("maxReceiveCount")
        return QueueInfo(
            url=url,
            visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
            fifo=attributes.get("FifoQueue") == "true",
            max_receive_count=int(max_receive) if max_receive is not None else None,
            dead_letter_arn=policy.get("deadLetterTargetArn"),
        )

    async def _watch_dead_letter_queue(self, dlq_arn: str) -> None:
        backend = self.context.backend
        url = None
        while not self._stopping:
            try:
                url = url or await backend.queue_url(dlq_arn)
                attributes = await backend.sqs_queue_attributes(
                    url, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                          "ApproximateNumberOfMessagesDelayed"])
                depth = sum(int(v) for v in attributes.values())
                previous = self.stats.dlq_depth
                if previous is not None and depth > previous:
                    self.stats.dlq_arrivals += depth - previous
                self.stats.dlq_depth = depth
            except BACKEND_FAILURES as exc:
                log.debug("%s: cannot read the DLQ depth: %s", dlq_arn, exc)
            await asyncio.sleep(DLQ_POLL_S)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the poller stops."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _backend_failed(self, doing: str, exc: BaseException, failures: int) -> int:
        """Count and back off after `failures` failures in a row before this one; returns the new count."""
        self._outage.failed(doing, exc)
        step = doubling_step(failures, BACKEND_RETRY_INITIAL_S, BACKEND_RETRY_MAX_S)
        await asyncio.sleep(equal_jitter(step, self.context.rng))
        return failures + 1

    # -- one batch worker -----------------------------------------------------------------
    async def _worker(self, slot: int) -> None:
        carry: list[PendingMessage] = []
        while not self._stopping and (self._wanted(slot) or carry):
            self._phase[slot] = WorkerPhase.RECEIVING
            batch, carry = await self._gather(slot, carry)
            if batch is None:
                continue
            self._phase[slot] = WorkerPhase.INVOKING
            await self._process(batch)
        self._phase.pop(slot, None)

    def _wanted(self, slot: int) -> bool:
        return self._state is not None and slot < self._state.target

    async def _visibility_timeout(self) -> tuple[float, int | None]:
        """(visibility timeout in real seconds, VisibilityTimeout to ask for or None)."""
        assert self.queue is not None
        vt = self.queue.visibility_timeout
        window = self.mapping.settings.maximum_batching_window_s
        if not window:
            return float(vt), None
        timeout = await self._function_timeout()
        if timeout is None:
            return float(vt), None
        needed = self.context.clock.to_real(window) + timeout
        if needed <= vt:
            return float(vt), None
        effective = math.ceil(needed + EFFECTIVE_VISIBILITY_MARGIN_S)
        if effective != self._extension_logged:
            self._extension_logged = effective
            log.info("%s: the batching window (%g s) plus the function timeout (%g s) exceed the queue's visibility "
                     "timeout (%d s): batches are received with VisibilityTimeout %d s (window + timeout + %d s)",
                     self.mapping.event_source_arn, window, timeout, vt, effective, EFFECTIVE_VISIBILITY_MARGIN_S)
        return float(effective), effective

    async def _function_timeout(self) -> float | None:
        """The function's Timeout, asked of the control plane (a call over the channel) at most
        once per ATTRIBUTE_REFRESH_S, not per batch; None when the function cannot be found."""
        now = asyncio.get_running_loop().time()
        cached = self._timeout_cache
        if cached is not None and now - cached[1] < ATTRIBUTE_REFRESH_S:
            return cached[0]
        try:
            timeout: float | None = await self.context.functions.timeout_s(self.mapping.function_arn)
        except AwsError:
            timeout = None
        self._timeout_cache = (timeout, now)
        return timeout

    async def _gather(self, slot: int, carry: list[PendingMessage]) -> tuple[_Batch | None, list[PendingMessage]]:
        assert self.queue is not None
        clock = self.context.clock
        loop = asyncio.get_running_loop()
        settings = self.mapping.settings
        payload = BatchPayload()
        overflow: list[PendingMessage] = []
        for message in carry:
            (payload.add if len(payload) < settings.batch_size and payload.fits(message) else overflow.append)(message)
        window = settings.maximum_batching_window_s
        deadline = clock.now() + window
        vt_real, vt_request = await self._visibility_timeout()
        received_at = loop.time() if payload.messages else None
        backend_failures = 0
        while len(payload) < settings.batch_size and not overflow and not self._stopping:
            if not payload.messages and not self._wanted(slot):
                break  # scaled down while receiving nothing: this worker leaves, not polls again
            remaining = clock.to_real(deadline - clock.now())
            if window and remaining <= 0:
                break
            if not window and payload.messages:
                break
            wait = self._wait_seconds(window, remaining)
            want = min(MAX_MESSAGES_PER_RECEIVE, settings.batch_size - len(payload))
            try:
                async with self._fifo_receive if self.queue.fifo else contextlib.nullcontext():
                    self._receiving_since[slot] = loop.time()
                    messages = await self.context.backend.sqs_receive(self.queue.url, want, wait, vt_request)
            except BACKEND_FAILURES as exc:
                backend_failures = await self._backend_failed("ReceiveMessage", exc, backend_failures)
                continue
            finally:
                self._receiving_since.pop(slot, None)
            self._outage.answered()
            backend_failures = 0
            if not messages:
                self._window.empty_receives += 1
                if wait == 0:
                    await asyncio.sleep(min(EMPTY_POLL_PAUSE_S, remaining) if window else EMPTY_POLL_PAUSE_S)
                continue
            if len(messages) >= want:
                self._window.full_receives += 1
            else:
                self._window.partial_receives += 1
            self.stats.messages_received += len(messages)
            if received_at is None:
                received_at = loop.time()
            filtered: list[_Held] = []
            for raw in messages:
                record = sqs_record(raw, queue_arn=self.mapping.event_source_arn, region=self.context.region)
                self._hold(record["messageId"])
                if self.event_filter is not None and not self.event_filter.keeps(record):
                    filtered.append(_Held(record["messageId"], record["receiptHandle"],
                                          int(record["attributes"].get("ApproximateReceiveCount", "1"))))
                    continue
                message = pending_from_record(record)
                if not overflow and len(payload) < settings.batch_size and payload.fits(message):
                    payload.add(message)
                else:
                    overflow.append(message)  # over the 6 MB cap: first in the next batch
            if filtered:
                await self._delete_filtered(filtered)
        if not payload.messages or received_at is None:
            return None, overflow
        return _Batch(payload, received_at, vt_real), overflow

    def _wait_seconds(self, window: int, remaining_real: float) -> int:
        assert self.queue is not None
        if self.queue.fifo:
            # Short polls only: moto 5.2's long poll on a FIFO queue spins while a message group
            # is in flight and keeps a stale view of the busy groups for the whole wait.
            return 0
        if not window:
            return LONG_POLL_S
        return int(min(LONG_POLL_S, math.floor(remaining_real)))

    async def _process(self, batch: _Batch) -> None:
        settings = self.mapping.settings
        messages = batch.payload.messages
        result = await self._invoke(batch)
        if result is None:
            return
        self.stats.invocations += 1
        self.stats.events_invoked += len(messages)
        if result.function_error:
            self._failed(messages)
            return
        keep: frozenset[str] = frozenset()
        if settings.report_batch_item_failures:
            ids = [m.message_id for m in messages]
            failed = failed_item_ids(result.payload, ids)
            if failed is None:
                self._failed(messages)
                return
            assert self.queue is not None
            keep = retry_ids([(m.message_id, m.group_id) for m in messages], failed, fifo=self.queue.fifo)
        if keep:
            self.stats.batches_partially_failed += 1
            self.stats.events_failed_invoke += len(keep)
            self._leave([m for m in messages if m.message_id in keep], FAILED)
        else:
            self.stats.batches_succeeded += 1
        await self._delete([m for m in messages if m.message_id not in keep])

    async def _invoke(self, batch: _Batch) -> BatchResult | None:
        """Invoke, retrying throttles while the batch is still invisible; None when dropped."""
        clock = self.context.clock
        loop = asyncio.get_running_loop()
        payload = batch.payload.encode()
        deadline = batch.received_at + batch.visibility_timeout
        retries = 0
        throttled = False
        while True:
            try:
                return await self.context.functions.invoke(self.mapping.function_arn, payload)
            except TooManyRequests:
                self.stats.throttles += 1
                if not throttled:
                    throttled = True
                    self.stats.batches_throttled += 1
                    self._window.throttled_batches += 1
                step = doubling_step(retries, THROTTLE_RETRY_INITIAL_S, THROTTLE_RETRY_MAX_S)
                wait = clock.to_real(full_jitter(step, self.context.rng))
                if self._stopping or loop.time() + wait >= deadline:
                    self.stats.batches_dropped_throttled += 1
                    self.stats.events_failed_invoke += len(batch.payload.messages)
                    self._leave(batch.payload.messages, THROTTLED)
                    return None
                await self._pause(wait)
                if self._stopping:
                    self._leave(batch.payload.messages, OTHER)
                    return None
                retries += 1
            except AwsError as exc:  # the function is gone (deleted alias, version): nothing ran
                log.warning("%s: %s; the batch is left on the queue", self.mapping.uuid, exc.message)
                self._leave(batch.payload.messages, OTHER)
                return None

    def _failed(self, messages: list[PendingMessage]) -> None:
        self.stats.batches_failed += 1
        self.stats.events_failed_invoke += len(messages)
        self._window.failed_batches += 1
        self._leave(messages, FAILED)

    def _leave(self, messages: list[PendingMessage], why: str) -> None:
        """Leave messages in flight: SQS shows them again when their visibility timeout ends
        (and moves those at maxReceiveCount to the DLQ: counted by why, for the report)."""
        self.stats.messages_returned += len(messages)
        self._ended(messages, why)

    def _hold(self, message_id: str) -> None:
        """A batch of this mapping holds the message from its receive until `_ended` (followed
        only when the queue has a DLQ: without maxReceiveCount nothing is counted)."""
        if self.queue is None or self.queue.max_receive_count is None:
            return
        fate = self._fates.get(message_id)
        if fate is None:
            fate = self._fates[message_id] = _Fate()
        fate.holders += 1

    def _ended(self, messages: Iterable[_Received], why: str | None) -> None:
        """These messages leave a batch: deleted (`why` None) or not deleted, for `why`.

        One received at maxReceiveCount and not deleted ends in the DLQ (the next receive moves
        it, or already has), unless a batch that received it earlier, whose visibility timeout
        ran out while it still ran, deletes it with its older receipt handle (moto, like SQS
        may, lets that handle delete the message:
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html).
        So a message is counted once no batch of this mapping holds it any more."""
        limit = self.queue.max_receive_count if self.queue else None
        if limit is None:
            return
        for message in messages:
            fate = self._fates.get(message.message_id) or _Fate(holders=1)
            if why is None:
                fate.deleted = True
            elif message.receive_count >= max(limit, fate.receive_count):
                fate.why, fate.receive_count = why, message.receive_count
            fate.holders -= 1
            if fate.holders > 0:
                continue
            self._fates.pop(message.message_id, None)
            if fate.why is not None and not fate.deleted:
                self.stats.messages_at_max_receive_count += 1
                bound = self.stats.dead_letter_bound
                bound[fate.why] = bound.get(fate.why, 0) + 1

    async def _delete_filtered(self, filtered: list[_Held]) -> None:
        """Messages no filter matches are deleted, as Lambda does with SQS (the event-filtering
        page above); one that fails to delete comes back and is filtered again, or, received at
        maxReceiveCount, goes to the DLQ."""
        assert self.queue is not None
        self.stats.filtered_out += len(filtered)
        try:
            failed = await self.context.backend.sqs_delete_batch(self.queue.url, [m.receipt_handle for m in filtered])
        except BACKEND_FAILURES as exc:
            self._outage.failed("DeleteMessageBatch", exc)
            self.stats.delete_failures += len(filtered)
            self._ended(filtered, OTHER)
            return
        self._outage.answered()
        self.stats.delete_failures += len(failed)
        self._deleted(filtered, failed)

    def _deleted(self, messages: Sequence[_Received], failed: dict[str, str]) -> None:
        """End the messages of a DeleteMessageBatch answered with `failed` (handle -> error code)."""
        if not failed:
            self._ended(messages, None)
            return
        ended: dict[str | None, list[_Received]] = {None: [], VISIBILITY_EXPIRED: [], OTHER: []}
        for message in messages:
            code = failed.get(message.receipt_handle)
            # A handle that is no longer the latest: the batch outlived its visibility timeout
            # and the message was received again (at maxReceiveCount: moved to the DLQ).
            ended[None if code is None else VISIBILITY_EXPIRED if code == RECEIPT_HANDLE_INVALID else OTHER].append(message)
        for why, group in ended.items():
            self._ended(group, why)

    async def _delete(self, messages: list[PendingMessage]) -> None:
        if not messages:
            return
        assert self.queue is not None
        try:
            failed = await self.context.backend.sqs_delete_batch(self.queue.url, [m.receipt_handle for m in messages])
        except BACKEND_FAILURES as exc:  # the messages come back after their visibility timeout
            self._outage.failed("DeleteMessageBatch", exc)
            self.stats.delete_failures += len(messages)
            self._ended(messages, OTHER)
            return
        self._outage.answered()
        self.stats.delete_failures += len(failed)
        self.stats.messages_deleted += len(messages) - len(failed)
        self._deleted(messages, failed)


def create_poller(context: PollerContext, mapping: EventSourceMapping) -> SqsPoller:
    return SqsPoller(context, mapping)

