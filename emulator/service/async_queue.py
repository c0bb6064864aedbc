"""The asynchronous invocation queue (InvocationType=Event), one scheduler for all functions.

Accepting an event costs a heap push; a scheduler task runs each event when it is due,
asks the pure retry policy (emulator/policy/async_retry.py) what follows, and sleeps on the one
clock, so `--time-scale 60` turns the 1- and 2-minute retry delays into 1 and 2 seconds.
Every accepted event ends delivered, sent to a destination or DLQ, or counted as dropped
with a log line (aws-semantics §5).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from emulator.policy.async_retry import (
    DEFAULT_MAX_EVENT_AGE_S,
    DEFAULT_MAX_RETRY_ATTEMPTS,
    Deliver,
    DestinationCondition,
    EventState,
    Outcome,
    RetryAt,
    decide,
    expired,
)
from emulator.clock import Clock
from emulator.errors import AwsError, TooManyRequests
from emulator.functions.metrics import Metrics
from emulator.functions.registry import FunctionVersion

if TYPE_CHECKING:
    from emulator.execution.invoker import InvokeResult
    from emulator.service.destinations import Destinations

log = logging.getLogger("emulator.async")

# aws-semantics §5 (S19 DLQ): ErrorMessage carries the first 1 KB of the error.
DLQ_ERROR_MESSAGE_BYTES = 1024


@dataclass(frozen=True)
class EventInvokeConfig:
    """aws-semantics §5: the function's (or qualifier's) async settings."""

    maximum_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    maximum_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = field(default_factory=time.time)


@dataclass
class AsyncEvent:
    request_id: str
    version: FunctionVersion
    qualifier: str | None
    payload: bytes
    state: EventState
    # What the last attempt returned, for the destination record.
    status_code: int = 0
    function_error: str | None = None
    response: bytes | None = None
    error_message: str = ""


@dataclass(frozen=True)
class AsyncQueuePorts:
    """What the queue needs from the Lambda service, as callables: the queue never sees the
    service itself (the service owns the queue)."""

    # invoke(version, payload, qualifier, request_id): admitted like any invocation; raises
    # TooManyRequests when throttled.
    invoke: Callable[[FunctionVersion, bytes, "str | None", str], Awaitable["InvokeResult"]]
    # resolve(name, qualifier): the version an attempt runs now ($LATEST code may change).
    resolve: Callable[[str, "str | None"], FunctionVersion]
    # event_invoke_config(name, qualifier): the function's async settings.
    event_invoke_config: Callable[[str, "str | None"], EventInvokeConfig]
    # reserved_concurrency(name): its reservation, or None.
    reserved_concurrency: Callable[[str], "int | None"]
    metrics: Metrics


class AsyncInvocationQueue:
    def __init__(self, ports: AsyncQueuePorts, clock: Clock, destinations: "Destinations") -> None:
        self.ports = ports
        self.clock = clock
        self.destinations = destinations
        self._heap: list[tuple[float, int, AsyncEvent]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._attempts: set[asyncio.Task] = set()
        self._closed = False

    # -- accepting ---------------------------------------------------------------------
    def submit(self, version: FunctionVersion, payload: bytes, qualifier: str | None, request_id: str) -> None:
        event = AsyncEvent(request_id, version, qualifier, payload, EventState(received_at=self.clock.now()))
        self.ports.metrics.of(version.name).async_events_received += 1
        self._schedule(self.clock.now(), event)

    def _schedule(self, when: float, event: AsyncEvent) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), event))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._heap) + len(self._attempts)

    # -- the scheduler task ----------------------------------------------------------------
    async def run(self) -> None:
        while not self._closed:
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            delay = self.clock.to_real(self._heap[0][0] - self.clock.now())
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            _, _, event = heapq.heappop(self._heap)
            task = asyncio.ensure_future(self._attempt(event))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)

    async def _attempt(self, event: AsyncEvent) -> None:
        config = self.ports.event_invoke_config(event.version.name, event.qualifier)
        if expired(event.state, self.clock.now(), config.maximum_event_age_s):
            await self._fail(event, DestinationCondition.EVENT_AGE_EXCEEDED, config)
            return
        outcome = await self._invoke(event)
        decision = decide(
            event.state,
            outcome,
            self.clock.now(),
            max_retry_attempts=config.maximum_retry_attempts,
            max_event_age_s=config.maximum_event_age_s,
        )
        event.state = decision.state
        if isinstance(decision, Deliver):
            self.ports.metrics.of(event.version.name).async_events_succeeded += 1
            if config.on_success:
                await self._deliver(event, config.on_success, DestinationCondition.SUCCESS)
        elif isinstance(decision, RetryAt):
            self.ports.metrics.of(event.version.name).async_events_retried += 1
            self._schedule(decision.when, event)
        else:
            await self._fail(event, decision.condition, config)

    async def _invoke(self, event: AsyncEvent) -> Outcome:
        name = event.version.name
        try:
            # A later version of the function may have replaced the one the event was
            # accepted for ($LATEST code changes): resolve again at every attempt.
            version = self.ports.resolve(name, event.qualifier)
            result = await self.ports.invoke(version, event.payload, event.qualifier, event.request_id)
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
            event.error_message = _error_message(result.payload)
            return Outcome.FUNCTION_ERROR
        return Outcome.SUCCESS

    async def _fail(self, event: AsyncEvent, condition: DestinationCondition, config: EventInvokeConfig) -> None:
        metrics = self.ports.metrics.of(event.version.name)
        if condition is DestinationCondition.EVENT_AGE_EXCEEDED:
            metrics.async_events_expired += 1
        dlq = event.version.spec.dead_letter_arn
        if config.on_failure:
            await self._deliver(event, config.on_failure, condition)
        elif dlq:
            await self._dead_letter(event, dlq)
        else:
            metrics.async_events_dropped += 1
            log.warning(
                "async event %s for %s dropped after %d attempt(s): %s (no on-failure destination or DLQ)",
                event.request_id, event.version.name, event.state.function_attempts, condition,
            )

    def record(self, event: AsyncEvent, condition: DestinationCondition) -> dict[str, Any]:
        """The invocation record of aws-semantics §5 (S19)."""
        version = event.version
        wall = time.time()
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}Z",
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": f"{version.function_arn}:{event.qualifier or version.version}",
                "condition": str(condition),
                "approximateInvokeCount": event.state.function_attempts,
            },
            "requestPayload": _json_or_text(event.payload),
            "responseContext": {"statusCode": event.status_code, "executedVersion": version.version},
        }
        if event.function_error:
            record["responseContext"]["functionError"] = event.function_error
        if event.response is not None:
            record["responsePayload"] = _json_or_text(event.response)
        return record

    async def _deliver(self, event: AsyncEvent, target: str, condition: DestinationCondition) -> None:
        ok = await self.destinations.send_record(target, self.record(event, condition), condition)
        self._count_delivery(event, target, ok, "destination_deliveries", "destination_delivery_failures")

    async def _dead_letter(self, event: AsyncEvent, target: str) -> None:
        attributes = {
            "RequestID": ("String", event.request_id),
            "ErrorCode": ("Number", str(event.status_code or 200)),
            "ErrorMessage": ("String", event.error_message.encode()[:DLQ_ERROR_MESSAGE_BYTES].decode("utf-8", "ignore") or "Unknown"),
        }
        ok = await self.destinations.send_raw(target, event.payload.decode("utf-8", "replace"), attributes)
        self._count_delivery(event, target, ok, "dead_letter_deliveries", "dead_letter_errors")

    def _count_delivery(self, event: AsyncEvent, target: str, ok: bool, delivered: str, failed: str) -> None:
        """A failed delivery still ends the event: counted as dropped, with a log line (§5)."""
        metrics = self.ports.metrics.of(event.version.name)
        if ok:
            setattr(metrics, delivered, getattr(metrics, delivered) + 1)
            return
        setattr(metrics, failed, getattr(metrics, failed) + 1)
        metrics.async_events_dropped += 1
        log.warning("async event %s for %s: delivery to %s failed; event dropped", event.request_id, event.version.name, target)

    # -- lifecycle ---------------------------------------------------------------------
    def clear(self) -> int:
        """Forget queued events (test reset); returns how many were dropped."""
        dropped = len(self._heap)
        for _, _, event in self._heap:
            self.ports.metrics.of(event.version.name).async_events_dropped += 1
        self._heap.clear()
        return dropped

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        for task in list(self._attempts):
            task.cancel()
        if self._attempts:
            await asyncio.gather(*self._attempts, return_exceptions=True)
        if self._heap:
            log.warning("shutting down with %d queued async event(s); they are dropped", len(self._heap))
            self.clear()


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def _error_message(payload: bytes) -> str:
    value = _json_or_text(payload)
    if isinstance(value, dict):
        return str(value.get("errorMessage", ""))
    return str(value)


def event_invoke_config_from_spec(spec: Any) -> EventInvokeConfig:
    return replace(
        EventInvokeConfig(),
        maximum_retry_attempts=DEFAULT_MAX_RETRY_ATTEMPTS if spec.maximum_retry_attempts is None else spec.maximum_retry_attempts,
        maximum_event_age_s=DEFAULT_MAX_EVENT_AGE_S if spec.maximum_event_age_s is None else spec.maximum_event_age_s,
        on_success=spec.on_success_arn,
        on_failure=spec.on_failure_arn,
    )
