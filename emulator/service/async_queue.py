"""The asynchronous invocation queue (InvocationType=Event), one scheduler for all functions.

An accepted event goes straight to its function's lane; a retry waits in a heap until a
scheduler task moves it to the lane when it is due. A lane runs at most as many attempts at once as the function can get
concurrency (its reservation, else the unreserved pool), so a backlog waits in the queue
instead of throttling itself, as AWS describes: "with a long queue, Lambda reads from the
queue more slowly" (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
After each attempt the pure retry policy (emulator/policy/async_retry.py) says what
follows; the queue sleeps on the one clock, so `--time-scale 60` turns the 1- and 2-minute
retry delays into 1 and 2 seconds.

Every accepted event ends delivered, sent to a destination or DLQ (a failed delivery is
retried until the event's age runs out), or counted as dropped with a log line; a reset or
a shutdown drops what is still pending, counts it and says so.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Protocol, Union

from emulator.clock import Clock
from emulator.errors import AwsError, TooManyRequests
from emulator.execution.invoker import InvokeResult
from emulator.functions.metrics import DROPPED_AT_SHUTDOWN, Metrics
from emulator.functions.registry import FunctionVersion
from emulator.policy.async_retry import (
    DEFAULT_MAX_EVENT_AGE_S,
    DEFAULT_MAX_RETRY_ATTEMPTS,
    Deliver,
    DestinationCondition,
    DropReason,
    EventState,
    Outcome,
    RetryAt,
    decide,
    drop_reason,
    expired,
    new_delivery,
)
from emulator.policy.delivery_retry import Delivered, DeliveryState, RetryDeliveryAt, decide_delivery
from emulator.service.async_records import (
    AsyncEvent,
    dead_letter_attributes,
    dead_letter_body,
    error_message,
    invocation_record,
)

log = logging.getLogger("emulator.async")

# Deliveries (destination records, dead letters) in flight at once, over all functions: a
# burst of outcomes waits here rather than opening thousands of backend requests at once.
MAX_CONCURRENT_DELIVERIES = 64


@dataclass(frozen=True)
class EventInvokeConfig:
    """The function's (or qualifier's) async settings
    (https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html)."""

    maximum_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    maximum_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = field(default_factory=time.time)


@dataclass
class PendingDelivery:
    """An event's record on its way to a destination, or the event on its way to a DLQ."""

    event: AsyncEvent
    target: str
    condition: DestinationCondition
    state: DeliveryState
    record: dict[str, Any] | None  # None: a dead letter (the event itself)
    reason: DropReason | None = None  # why the event failed (None: an on-success record)

    @property
    def function(self) -> str:
        return self.event.function


class RecordSender(Protocol):
    """What the queue needs from emulator/service/destinations.py: one attempt per call,
    raising on failure."""

    async def deliver_record(self, target: str, record: dict[str, Any], condition: DestinationCondition) -> None: ...

    async def deliver_raw(self, target: str, body: str, attributes: dict[str, tuple[str, str]] | None) -> None: ...


@dataclass(frozen=True)
class AsyncQueuePorts:
    """What the queue needs from the Lambda service, as callables: the queue never sees the
    service itself (the service owns the queue)."""

    # invoke(version, payload, qualifier, request_id[, tenant_id=, trace_header=]): admitted like
    # any invocation; raises TooManyRequests when throttled.
    invoke: Callable[..., Awaitable[InvokeResult]]
    # resolve(name, qualifier): the version an attempt runs now ($LATEST code may change).
    resolve: Callable[[str, "str | None"], FunctionVersion]
    # event_invoke_config(name, qualifier): the function's async settings.
    event_invoke_config: Callable[[str, "str | None"], EventInvokeConfig]
    # reserved_concurrency(name): its reservation, or None.
    reserved_concurrency: Callable[[str], "int | None"]
    # concurrency_limit(name): the most executions the function can have at once (its
    # reservation, else the unreserved pool): the lane runs no more attempts than that.
    concurrency_limit: Callable[[str], int]
    metrics: Metrics


@dataclass
class _Lane:
    """One function's attempts: how many run now, and the due events waiting for a slot."""

    running: int = 0
    waiting: deque[AsyncEvent] = field(default_factory=deque)


@dataclass(frozen=True)
class DroppedEvents:
    """What a reset or a shutdown dropped, by stage and by function."""

    cause: str
    queued: int  # waiting for their first attempt or a retry
    running: int  # attempts cancelled mid-invocation
    delivering: int  # records or dead letters not yet delivered
    by_function: dict[str, int]

    @property
    def total(self) -> int:
        return self.queued + self.running + self.delivering


_Job = Union[AsyncEvent, PendingDelivery]


class AsyncInvocationQueue:
    def __init__(
        self, ports: AsyncQueuePorts, clock: Clock, destinations: RecordSender, rng: random.Random | None = None
    ) -> None:
        self.ports = ports
        self.clock = clock
        self.destinations = destinations
        self.rng = rng if rng is not None else random.Random()  # backoff jitter
        self._timers: list[tuple[float, int, _Job]] = []  # (due, tie-breaker, job): a heap
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._lanes: dict[str, _Lane] = {}
        self._attempts: dict[asyncio.Task, AsyncEvent] = {}
        self._deliveries: dict[asyncio.Task, PendingDelivery] = {}
        self._waiting_deliveries: deque[PendingDelivery] = deque()
        self._starting_attempts = True
        self._closed = False

    # -- accepting ---------------------------------------------------------------------
    def submit(self, version: FunctionVersion, payload: bytes, qualifier: str | None, request_id: str,
               tenant_id: str | None = None, trace_header: str | None = None) -> None:
        event = AsyncEvent(request_id, version, qualifier, payload, EventState(received_at=self.clock.now()),
                           tenant_id=tenant_id, trace_header=trace_header)
        function = version.name
        self.ports.metrics.async_received(function)
        # Due now: no heap and no wake-up of the scheduler (the fan-out of a message to its
        # subscriptions submits several events per published message).
        self._enqueue(function, event)

    def _enqueue(self, function: str, event: AsyncEvent) -> None:
        lane = self._lanes.get(function)
        if lane is None:
            lane = self._lanes[function] = _Lane()
        lane.waiting.append(event)
        self._start_attempts(function, lane)

    def _schedule(self, when: float, job: _Job) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), job))
        self._wake.set()

    @property
    def pending(self) -> int:
        """Accepted events not finished yet: queued, running or being delivered."""
        waiting = sum(len(lane.waiting) for lane in self._lanes.values())
        return len(self._timers) + waiting + len(self._attempts) + len(self._waiting_deliveries) + len(self._deliveries)

    # -- the scheduler task ----------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._wake.clear()
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                _, _, job = heapq.heappop(self._timers)
                if isinstance(job, PendingDelivery):
                    self._waiting_deliveries.append(job)
                    self._start_deliveries()
                else:
                    self._enqueue(job.function, job)
            if not self._timers:
                await self._wake.wait()
                continue
            # A timer that sets the wake-up event: cheaper than wait_for, which makes a task per wait.
            timer = loop.call_later(self.clock.to_real(self._timers[0][0] - now), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    # -- attempts ----------------------------------------------------------------------
    def _start_attempts(self, function: str, lane: _Lane) -> None:
        """Start waiting events, oldest first, while the function has concurrency for them.

        At least one runs even at reserved concurrency 0: its throttle sends the event
        to the on-failure destination at once, as on AWS.
        """
        if not self._starting_attempts:
            return
        limit = max(1, self.ports.concurrency_limit(function))
        while lane.waiting and lane.running < limit:
            event = lane.waiting.popleft()
            lane.running += 1
            task = asyncio.ensure_future(self._attempt(event, function))
            self._attempts[task] = event
            task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task) -> None:
        event = self._attempts.pop(task)
        lane = self._lanes[event.function]
        lane.running -= 1
        if not task.cancelled() and task.exception() is not None:
            self.ports.metrics.of(event.function).async_events_dropped += 1
            self.ports.metrics.async_failed(event.function, DropReason.EMULATOR_ERROR)
            log.error("async event %s for %s lost to an emulator bug", event.request_id, event.function, exc_info=task.exception())
        self._start_attempts(event.function, lane)

    async def _attempt(self, event: AsyncEvent, function: str) -> None:
        config = self.ports.event_invoke_config(function, event.qualifier)
        now = self.clock.now()
        if expired(event.state, now, config.maximum_event_age_s):
            self._fail(event, DestinationCondition.EVENT_AGE_EXCEEDED, config)
            return
        self.ports.metrics.async_attempt(function, (now - event.state.received_at) * 1000.0)
        outcome = event.last_outcome = await self._invoke(event, function)
        decision = decide(
            event.state,
            outcome,
            self.clock.now(),
            max_retry_attempts=config.maximum_retry_attempts,
            max_event_age_s=config.maximum_event_age_s,
            rng=self.rng,
        )
        event.state = decision.state
        if isinstance(decision, Deliver):
            self.ports.metrics.of(function).async_events_succeeded += 1
            if config.on_success:
                self._hand_over(event, config.on_success, DestinationCondition.SUCCESS, config, record=True)
        elif isinstance(decision, RetryAt):
            self.ports.metrics.of(function).async_events_retried += 1
            self._schedule(decision.when, event)
        else:
            self._fail(event, decision.condition, config)

    async def _invoke(self, event: AsyncEvent, name: str) -> Outcome:
        try:
            # A later version of the function may have replaced the one the event was
            # accepted for ($LATEST code changes): resolve again at every attempt.
            version = self.ports.resolve(name, event.qualifier)
            named = {}  # only what was given: the invoke port's defaults stand otherwise
            if event.tenant_id is not None:
                named["tenant_id"] = event.tenant_id
            if event.trace_header is not None:
                named["trace_header"] = event.trace_header
            result = await self.ports.invoke(version, event.payload, event.qualifier, event.request_id, **named)
        except TooManyRequests as throttle:
            event.status_code, event.function_error, event.response = 429, None, None
            event.error_message = f"Rate Exceeded. ({throttle.reason})"
            return Outcome.RESERVED_ZERO if self.ports.reserved_concurrency(name) == 0 else Outcome.THROTTLED
        except AwsError as error:
            event.status_code, event.error_message = error.status, error.message
            return Outcome.SYSTEM_ERROR
        except Exception:  # never lose the event to a bug of ours: retry as a system error
            log.exception("async invocation of %s failed inside the emulator", name)
            event.status_code, event.error_message = 500, "ServiceException"
            return Outcome.SYSTEM_ERROR
        event.status_code = 200
        event.response = result.payload
        event.function_error = result.function_error
        if result.function_error:
            event.error_message = error_message(result.payload)
            return Outcome.FUNCTION_ERROR
        return Outcome.SUCCESS

    def _fail(self, event: AsyncEvent, condition: DestinationCondition, config: EventInvokeConfig) -> None:
        reason = drop_reason(condition, event.last_outcome)
        self.ports.metrics.async_failed(event.function, reason)
        metrics = self.ports.metrics.of(event.function)
        if condition is DestinationCondition.EVENT_AGE_EXCEEDED:
            metrics.async_events_expired += 1
        dlq = event.version.spec.dead_letter_arn
        if config.on_failure:
            self._hand_over(event, config.on_failure, condition, config, record=True, reason=reason)
        elif dlq:
            self._hand_over(event, dlq, condition, config, record=False, reason=reason)
        else:
            metrics.async_events_dropped += 1
            log.warning(
                "async event %s for %s dropped after %d attempt(s): %s (no on-failure destination or DLQ)",
                event.request_id, event.function, event.state.function_attempts, condition,
            )

    # -- deliveries --------------------------------------------------------------------
    def _hand_over(
        self, event: AsyncEvent, target: str, condition: DestinationCondition, config: EventInvokeConfig, *, record: bool,
        reason: DropReason | None = None,
    ) -> None:
        """Queue the delivery of the event's record (or, `record=False`, of the event to a DLQ)."""
        now = self.clock.now()
        delivery = PendingDelivery(
            event,
            target,
            condition,
            new_delivery(event.state, now, config.maximum_event_age_s),
            invocation_record(event, condition, time.time()) if record else None,
            reason,
        )
        self._waiting_deliveries.append(delivery)
        self._start_deliveries()

    def _start_deliveries(self) -> None:
        while self._waiting_deliveries and len(self._deliveries) < MAX_CONCURRENT_DELIVERIES:
            delivery = self._waiting_deliveries.popleft()
            task = asyncio.ensure_future(self._deliver(delivery))
            self._deliveries[task] = delivery
            task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task) -> None:
        delivery = self._deliveries.pop(task)
        if not task.cancelled() and task.exception() is not None:
            self.ports.metrics.of(delivery.function).async_events_dropped += 1
            log.error("async event %s for %s lost to an emulator bug", delivery.event.request_id, delivery.function,
                      exc_info=task.exception())  # fmt: skip
        self._start_deliveries()

    async def _deliver(self, delivery: PendingDelivery) -> None:
        event = delivery.event
        metrics = self.ports.metrics.of(event.function)
        counters = metrics.dead_letter if delivery.record is None else metrics.destination
        counters.attempts += 1
        failure = ""
        try:
            if delivery.record is None:
                await self.destinations.deliver_raw(delivery.target, dead_letter_body(event), dead_letter_attributes(event))
            else:
                await self.destinations.deliver_record(delivery.target, delivery.record, delivery.condition)
        except Exception as exc:  # DeliveryFailed, or a bug of ours: either way the record waits for a retry
            failure = str(exc) or type(exc).__name__
        decision = decide_delivery(delivery.state, not failure, self.clock.now(), self.rng)
        delivery.state = decision.state
        if isinstance(decision, Delivered):
            self.ports.metrics.delivered(event.function, dead_letter=delivery.record is None, reason=delivery.reason)
            return
        self.ports.metrics.delivery_failed(event.function, dead_letter=delivery.record is None)
        kind = "dead letter" if delivery.record is None else "record"
        if isinstance(decision, RetryDeliveryAt):
            # The first failure says what is wrong; the retries after it stay quiet.
            level = logging.WARNING if decision.state.attempts == 1 else logging.DEBUG
            log.log(level, "async event %s for %s: %s delivery failed (%s); retrying until %.0f s from now",
                    event.request_id, event.function, kind, failure, decision.state.deadline - self.clock.now())  # fmt: skip
            self._schedule(decision.when, delivery)
            return
        counters.dropped += 1
        metrics.async_events_dropped += 1
        log.warning("async event %s for %s dropped: %s delivery to %s failed %d time(s), the last: %s",
                    event.request_id, event.function, kind, delivery.target, decision.state.attempts, failure)  # fmt: skip

    # -- reset and shutdown ------------------------------------------------------------
    def stop_starting_attempts(self) -> None:
        """Shutdown: start no new attempts (running ones finish; deliveries go on)."""
        self._starting_attempts = False

    async def drop_all(self, cause: str) -> DroppedEvents:
        """Drop every pending event (queued, running, being delivered); count it in the
        metrics under `cause` (a counter resets keep) and say so in the log."""
        queued: Counter[str] = Counter()
        running: Counter[str] = Counter()
        delivering: Counter[str] = Counter()
        failed_delivering: Counter[str] = Counter()  # records and dead letters of events that failed
        deliveries = [job for _, _, job in self._timers if isinstance(job, PendingDelivery)]
        queued.update(job.function for _, _, job in self._timers if not isinstance(job, PendingDelivery))
        self._timers.clear()
        for function, lane in self._lanes.items():
            queued[function] += len(lane.waiting)
            lane.waiting.clear()
        deliveries += [*self._waiting_deliveries, *self._deliveries.values()]
        self._waiting_deliveries.clear()
        for delivery in deliveries:
            delivering[delivery.function] += 1
            if delivery.reason is not None:
                failed_delivering[delivery.function] += 1
        running.update(event.function for event in self._attempts.values())
        tasks = [*self._attempts, *self._deliveries]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        by_function = queued + running + delivering
        report = DroppedEvents(cause, queued.total(), running.total(), delivering.total(), dict(sorted(by_function.items())))
        if report.total:
            self.ports.metrics.record_pending_dropped(cause, report.by_function, unrun=queued + running,
                                                      failed_undelivered=failed_delivering)
            log.warning(
                "%s dropped %d pending async event(s) (%d queued, %d running, %d awaiting delivery): %s",
                cause, report.total, report.queued, report.running, report.delivering,
                ", ".join(f"{function}: {count}" for function, count in report.by_function.items()),
            )
        return report

    async def close(self) -> DroppedEvents:
        """Shutdown: stop the scheduler and drop (counting) whatever is still pending."""
        self._closed = True
        self._starting_attempts = False
        self._wake.set()
        return await self.drop_all(DROPPED_AT_SHUTDOWN)


def event_invoke_config_from_spec(spec: Any) -> EventInvokeConfig:
    return replace(
        EventInvokeConfig(),
        maximum_retry_attempts=DEFAULT_MAX_RETRY_ATTEMPTS if spec.maximum_retry_attempts is None else spec.maximum_retry_attempts,
        maximum_event_age_s=DEFAULT_MAX_EVENT_AGE_S if spec.maximum_event_age_s is None else spec.maximum_event_age_s,
        on_success=spec.on_success_arn,
        on_failure=spec.on_failure_arn,
    )
