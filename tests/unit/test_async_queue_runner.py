"""The async queue runner (emulator/service/async_queue.py) in virtual time.

A pure shell test: the queue gets its dependencies as ports (AsyncQueuePorts and a record
sender), so it runs here against a scripted invoke port and a scripted sender, on an event
loop whose time `looptime` fast-forwards: `asyncio.sleep(300)` returns at once with
`loop.time()` 300 s later. The queue's clock reads `loop.time()`, so retry times, counts and
orderings are asserted exactly, and nothing waits in real time. The real emulator runs the
same queue in tests/scenario/test_async.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from emulator.clock import ScaledClock
from emulator.errors import TooManyRequests
from emulator.execution.invoker import InvokeResult
from emulator.functions.metrics import DROPPED_AT_SHUTDOWN, DROPPED_BY_RESET, Metrics
from emulator.functions.registry import FunctionVersion
from emulator.policy.async_retry import DestinationCondition, throttle_backoff
from emulator.policy.delivery_retry import delivery_backoff
from emulator.service.async_queue import AsyncInvocationQueue, AsyncQueuePorts, EventInvokeConfig
from emulator.service.destinations import DeliveryFailed
from emulator.telemetry.timeline import Timeline, series_key
from emulator.template.specs import FunctionSpec

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]

RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
# looptime keeps the loop's time in whole microseconds, so a jittered delay lands within a
# microsecond of its exact value at each step.
LOOPTIME_ROUNDING_S = 1e-4
Behaviour = Callable[["Call"], Awaitable[InvokeResult]]


@dataclass
class Call:
    at: float
    function: str
    request_id: str
    payload: bytes


@dataclass
class Sent:
    at: float
    target: str
    body: Any  # the record (dict), or the dead letter's body (str)
    attributes: dict[str, tuple[str, str]] | None = None


@dataclass
class ScriptedSender:
    """The record-sender port: fails while `failures_left` says so, then delivers."""

    loop: asyncio.AbstractEventLoop
    failures_left: int = 0
    tried: list[float] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def _attempt(self) -> None:
        self.tried.append(self.loop.time())
        if self.failures_left:
            self.failures_left -= 1
            raise DeliveryFailed("destination: AWS.SimpleQueueService.NonExistentQueue")

    async def deliver_record(self, target: str, record: dict[str, Any], condition: DestinationCondition) -> None:
        self._attempt()
        self.sent.append(Sent(self.loop.time(), target, record))

    async def deliver_raw(self, target: str, body: str, attributes: dict[str, tuple[str, str]] | None) -> None:
        self._attempt()
        self.sent.append(Sent(self.loop.time(), target, body, attributes))


class Harness:
    """The queue with scripted ports, on the test's (virtual-time) loop."""

    def __init__(self, *, scale: float = 1.0, rng: random.Random | None = None, timeline: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        assert self.loop.time() == 0.0, "looptime starts every test's loop at 0"
        # The one clock, reading loop.time(); emulated = loop seconds x scale.
        self.clock = ScaledClock(scale, monotonic=self.loop.time)
        # With `timeline`, the per-second series the report reads, on the same virtual clock.
        self.timeline = Timeline(self.clock.wall) if timeline else None
        self.metrics = Metrics(self.timeline)
        self.sender = ScriptedSender(self.loop)
        self.versions: dict[str, FunctionVersion] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.configs: dict[str, EventInvokeConfig] = {}
        self.reserved: dict[str, int] = {}
        self.calls: list[Call] = []
        self.running: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self._ids = itertools.count(1)
        ports = AsyncQueuePorts(
            invoke=self._invoke,
            resolve=lambda name, qualifier: self.versions[name],
            event_invoke_config=lambda name, qualifier: self.configs.get(name, EventInvokeConfig()),
            reserved_concurrency=self.reserved.get,
            concurrency_limit=lambda name: self.reserved.get(name, 1000),
            metrics=self.metrics,
        )
        self.queue = AsyncInvocationQueue(ports, self.clock, self.sender, rng=rng or random.Random(0))

    def function(self, name: str, behaviour: Behaviour, *, reserved: int | None = None,
                 config: EventInvokeConfig | None = None, dlq: str | None = None) -> None:  # fmt: skip
        spec = FunctionSpec(name=name, code_dir=Path("/nonexistent"), handler="index.handler", dead_letter_arn=dlq)
        self.versions[name] = FunctionVersion(spec, "$LATEST", "us-east-1", "123456789012", 0.0)
        self.behaviours[name] = behaviour
        if reserved is not None:
            self.reserved[name] = reserved
        if config is not None:
            self.configs[name] = config

    def submit(self, name: str, payload: Any = None) -> str:
        request_id = f"req-{next(self._ids)}"
        self.queue.submit(self.versions[name], json.dumps(payload or {}).encode(), None, request_id)
        return request_id

    async def _invoke(self, version: FunctionVersion, payload: bytes, qualifier: str | None, request_id: str) -> InvokeResult:
        call = Call(self.loop.time(), version.name, request_id, payload)
        self.calls.append(call)
        self.running[version.name] += 1
        self.peak[version.name] = max(self.peak[version.name], self.running[version.name])
        try:
            return await self.behaviours[version.name](call)
        finally:
            self.running[version.name] -= 1

    def times(self, function: str) -> list[float]:
        return [call.at for call in self.calls if call.function == function]

    async def settle(self) -> None:
        """Wait (in virtual time) until nothing is pending."""
        while self.queue.pending:
            await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def running(harness: Harness) -> AsyncIterator[Harness]:
    runner = asyncio.create_task(harness.queue.run())
    try:
        yield harness
    finally:
        await harness.queue.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


# -- behaviours of the scripted invoke port --------------------------------------------------
def succeeds(duration: float = 0.0) -> Behaviour:
    async def behaviour(call: Call) -> InvokeResult:
        await asyncio.sleep(duration)
        return InvokeResult(b'{"ok": true}', "$LATEST", call.request_id)
    return behaviour


def fails(duration: float = 0.0) -> Behaviour:
    async def behaviour(call: Call) -> InvokeResult:
        await asyncio.sleep(duration)
        return InvokeResult(b'{"errorMessage": "boom", "errorType": "RuntimeError"}', "$LATEST", call.request_id, "Unhandled")
    return behaviour


def throttles() -> Behaviour:
    async def behaviour(call: Call) -> InvokeResult:
        raise TooManyRequests(RESERVED_REASON)
    return behaviour


def held(gate: asyncio.Event) -> Behaviour:
    """Holds every invocation until the test sets `gate` (a barrier, not a sleep)."""
    async def behaviour(call: Call) -> InvokeResult:
        await gate.wait()
        return InvokeResult(b"{}", "$LATEST", call.request_id)
    return behaviour


def in_turn(*behaviours: Behaviour) -> Behaviour:
    """The n-th call behaves as the n-th behaviour (the last one repeats)."""
    calls = itertools.count()

    async def behaviour(call: Call) -> InvokeResult:
        return await behaviours[min(next(calls), len(behaviours) - 1)](call)
    return behaviour


# -- retries ---------------------------------------------------------------------------------
async def test_function_errors_retry_after_exactly_1_and_2_minutes_then_go_to_the_destination() -> None:
    harness = Harness()
    config = EventInvokeConfig(on_failure="arn:aws:sqs:us-east-1:123456789012:failures")
    harness.function("Failer", fails(duration=0.5), config=config)
    async with running(harness):
        request_id = harness.submit("Failer", {"order": 7})
        await harness.settle()
    # Each retry is due 60 / 120 s after the previous attempt ended (0.5 s of handler time).
    assert harness.times("Failer") == [0.0, 60.5, 181.0]
    [sent] = harness.sender.sent
    assert (sent.at, sent.target) == (181.5, config.on_failure)
    assert sent.body["requestContext"] | {"functionArn": None} == {
        "requestId": request_id, "functionArn": None, "condition": "RetriesExhausted", "approximateInvokeCount": 3,
    }
    assert sent.body["responsePayload"] == {"errorMessage": "boom", "errorType": "RuntimeError"}
    metrics = harness.metrics.of("Failer")
    assert (metrics.async_events_retried, metrics.destination.attempts, metrics.destination.delivered) == (2, 1, 1)


async def test_the_time_scale_shortens_real_waits_not_emulated_ones() -> None:
    harness = Harness(scale=60.0)  # --time-scale 60: a minute of AWS time is a second here
    harness.function("Failer", fails(), config=EventInvokeConfig(maximum_retry_attempts=2))
    async with running(harness):
        harness.submit("Failer")
        await harness.settle()
    assert harness.times("Failer") == [0.0, 1.0, 3.0]


async def test_throttle_retries_follow_the_seeded_jittered_backoff_until_the_event_is_too_old() -> None:
    harness = Harness(rng=random.Random(42))
    dlq = "arn:aws:sqs:us-east-1:123456789012:dlq"
    harness.function("Busy", throttles(), config=EventInvokeConfig(maximum_event_age_s=600), dlq=dlq)
    async with running(harness):
        request_id = harness.submit("Busy", {"k": 1})
        await harness.settle()
    # The same draws, made again: each delay is full jitter between 1 s and 1, 2, 4 ... s.
    expected, now, replay = [0.0], 0.0, random.Random(42)
    while True:
        now += throttle_backoff(len(expected) - 1, replay)
        if now > 600:
            break
        expected.append(now)
    assert harness.times("Busy") == pytest.approx(expected, abs=LOOPTIME_ROUNDING_S)
    gaps = [b - a for a, b in zip(expected, expected[1:])]
    assert len(set(gaps)) == len(gaps), "jittered: no two waits alike"
    metrics = harness.metrics.of("Busy")
    assert metrics.async_events_retried == len(expected) - 1
    assert metrics.async_events_expired == 1
    [sent] = harness.sender.sent
    assert sent.target == dlq and json.loads(sent.body) == {"k": 1}
    assert sent.attributes == {"RequestID": ("String", request_id), "ErrorCode": ("Number", "429"),
                               "ErrorMessage": ("String", f"Rate Exceeded. ({RESERVED_REASON})")}  # fmt: skip


async def test_reserved_concurrency_zero_sends_the_event_to_the_destination_at_once() -> None:
    harness = Harness()
    config = EventInvokeConfig(on_failure="arn:aws:sqs:us-east-1:123456789012:zero")
    harness.function("Off", throttles(), reserved=0, config=config)
    async with running(harness):
        harness.submit("Off")
        await harness.settle()
    assert harness.times("Off") == [0.0]
    [sent] = harness.sender.sent
    assert sent.at == 0.0 and sent.body["requestContext"]["approximateInvokeCount"] == 0


async def test_every_event_that_ends_without_success_is_counted_in_the_timeline_by_why() -> None:
    """AsyncEventsDropped and DeadLetterDeliveries by Reason: the on-failure record's
    condition (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html),
    split where one condition has two causes, and the queue's own drops."""
    harness = Harness(timeline=True)
    dlq = "arn:aws:sqs:us-east-1:123456789012:dlq"
    gate = asyncio.Event()
    harness.function("Failer", fails(), config=EventInvokeConfig(maximum_retry_attempts=1), dlq=dlq)
    harness.function("Aging", fails(), config=EventInvokeConfig(maximum_event_age_s=60), dlq=dlq)
    harness.function("Busy", throttles(), config=EventInvokeConfig(maximum_event_age_s=60), dlq=dlq)
    harness.function("Off", throttles(), reserved=0, dlq=dlq)
    harness.function("Lost", fails(), config=EventInvokeConfig(maximum_retry_attempts=0))  # nowhere to go
    harness.function("Held", held(gate))
    harness.function("Fine", succeeds(), dlq=dlq)
    async with running(harness):
        for name in ("Failer", "Failer", "Aging", "Busy", "Off", "Lost", "Held", "Fine"):
            harness.submit(name)
        await asyncio.sleep(200)  # every retry above is due within 180 s
        assert harness.queue.pending == 1  # Held's
        await harness.queue.drop_all(DROPPED_BY_RESET)
    # Failer: 2 attempts, 60 s apart; Aging: its second failure's retry would be due at 180 s,
    # past its 60 s; Busy: throttled until its age ran out.
    assert harness.times("Failer") == [0.0, 0.0, 60.0, 60.0] and harness.times("Aging") == [0.0, 60.0]
    assert harness.timeline is not None

    def total(metric: str, **dims: str) -> float:
        return sum(datum.total for _, datum in harness.timeline.points(series_key("AWS/Lambda", metric, dims)))

    expected = {("Failer", "RetriesExhausted"): 2, ("Aging", "EventAgeExceeded"): 1,
                ("Busy", "EventAgeExceededWhileThrottled"): 1, ("Off", "ReservedConcurrencyZero"): 1,
                ("Lost", "RetriesExhausted"): 1, ("Held", "Reset"): 1}
    reasons = ("RetriesExhausted", "EventAgeExceeded", "EventAgeExceededWhileThrottled", "ReservedConcurrencyZero",
               "Reset", "Shutdown", "EmulatorError")
    for name in ("Failer", "Aging", "Busy", "Off", "Lost", "Held", "Fine"):
        for reason in reasons:
            want = expected.get((name, reason), 0)
            assert total("AsyncEventsDropped", FunctionName=name, Reason=reason) == want, (name, reason)
            # Each went on to the DLQ, for the same reason (Lost had none; Held was dropped).
            sent = 0 if name in ("Lost", "Held") else want
            assert total("DeadLetterDeliveries", FunctionName=name, Reason=reason) == sent, (name, reason)
        assert total("AsyncEventsDropped", FunctionName=name) == sum(n for (f, _), n in expected.items() if f == name)
    assert total("AsyncEventsDropped") == 7  # the account's
    assert sum(total("DeadLetterDeliveries", FunctionName=name) for name in harness.versions) == 5
    assert len(harness.sender.sent) == 5


async def test_on_failure_destination_records_are_counted_by_why_their_event_failed() -> None:
    """OnFailureDestinationDeliveries (ours) carries AsyncEventsDropped's Reason, as the DLQ's
    DeadLetterDeliveries does; an on-success record is not in it."""
    harness = Harness(timeline=True)
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:failures"
    config = EventInvokeConfig(maximum_retry_attempts=0, on_failure=queue_arn, on_success=queue_arn)
    harness.function("Failer", fails(), config=config)
    harness.function("Off", throttles(), reserved=0, config=config)
    harness.function("Fine", succeeds(), config=config)
    async with running(harness):
        for name in ("Failer", "Failer", "Off", "Fine"):
            harness.submit(name)
        await harness.settle()
    assert harness.timeline is not None

    def total(metric: str, **dims: str) -> float:
        return sum(datum.total for _, datum in harness.timeline.points(series_key("AWS/Lambda", metric, dims)))

    assert total("OnFailureDestinationDeliveries", FunctionName="Failer", Reason="RetriesExhausted") == 2
    assert total("OnFailureDestinationDeliveries", FunctionName="Off", Reason="ReservedConcurrencyZero") == 1
    assert total("OnFailureDestinationDeliveries", FunctionName="Fine") == 0
    assert total("OnFailureDestinationDeliveries") == 0  # ours, per function only, as DeadLetterDeliveries
    assert sum(total("DeadLetterDeliveries", FunctionName=name) for name in harness.versions) == 0
    assert len(harness.sender.sent) == 4  # three on-failure records and Fine's on-success record


# -- dispatch: events wait in the queue for the function's concurrency -------------------------
async def test_a_function_never_runs_more_attempts_than_its_concurrency_and_the_rest_wait_in_order() -> None:
    harness = Harness()
    harness.function("Five", succeeds(duration=1.0), reserved=5)
    async with running(harness):
        ids = [harness.submit("Five") for _ in range(23)]
        await harness.settle()
    assert harness.peak["Five"] == 5
    assert [call.request_id for call in harness.calls] == ids  # first in, first started
    # Five slots, each busy all the time: 23 one-second events end at 5 s, none throttled.
    assert harness.times("Five") == [float(i // 5) for i in range(23)]
    assert harness.loop.time() <= 5.5
    assert harness.metrics.of("Five").async_events_succeeded == 23
    assert sum(harness.metrics.of("Five").throttles.values()) == 0


async def test_functions_do_not_wait_for_each_other() -> None:
    harness = Harness()
    gate = asyncio.Event()
    harness.function("Slow", held(gate), reserved=1)
    harness.function("Fast", succeeds(duration=0.25), reserved=1)
    async with running(harness):
        for _ in range(3):
            harness.submit("Slow")
        for _ in range(4):
            harness.submit("Fast")
        await asyncio.sleep(10)
        assert (harness.times("Slow"), harness.times("Fast")) == ([0.0], [0.0, 0.25, 0.5, 0.75])
        gate.set()
        await harness.settle()
    assert harness.times("Slow") == [0.0, 10.0, 10.0]


async def test_the_event_age_runs_while_the_event_waits_for_a_slot() -> None:
    harness = Harness()
    config = EventInvokeConfig(maximum_event_age_s=60, on_failure="arn:aws:sqs:us-east-1:123456789012:old")
    harness.function("One", succeeds(duration=100.0), reserved=1, config=config)
    async with running(harness):
        harness.submit("One")
        second = harness.submit("One")
        await harness.settle()
    assert harness.times("One") == [0.0]  # the second one never ran: it was 100 s old at its turn
    [sent] = harness.sender.sent
    assert sent.at == 100.0
    assert sent.body["requestContext"]["requestId"] == second
    assert sent.body["requestContext"]["condition"] == "EventAgeExceeded"
    assert harness.metrics.of("One").async_events_expired == 1


async def test_a_throttle_from_outside_the_queue_still_counts_and_backs_off() -> None:
    # Something else (a synchronous caller) holds the function's slots: the queue's attempt
    # is throttled like any invocation, and the event comes back after the backoff.
    harness = Harness(rng=random.Random(5))
    harness.function("Shared", in_turn(throttles(), throttles(), succeeds()), reserved=2)
    async with running(harness):
        harness.submit("Shared")
        await harness.settle()
    replay = random.Random(5)
    first = throttle_backoff(0, replay)
    assert harness.times("Shared") == pytest.approx([0.0, first, first + throttle_backoff(1, replay)], abs=LOOPTIME_ROUNDING_S)
    assert harness.metrics.of("Shared").async_events_succeeded == 1


# -- deliveries ------------------------------------------------------------------------------
async def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds() -> None:
    harness = Harness(rng=random.Random(9))
    harness.sender.failures_left = 4
    target = "arn:aws:sqs:us-east-1:123456789012:late"
    harness.function("Ok", succeeds(duration=2.0), config=EventInvokeConfig(on_success=target))
    async with running(harness):
        harness.submit("Ok")
        await harness.settle()
    replay, expected = random.Random(9), [2.0]
    for failures in range(1, 5):
        expected.append(expected[-1] + delivery_backoff(failures, replay))
    assert harness.sender.tried == pytest.approx(expected, abs=LOOPTIME_ROUNDING_S)
    assert [sent.target for sent in harness.sender.sent] == [target]
    counters = harness.metrics.of("Ok").destination
    assert (counters.attempts, counters.delivered, counters.failures, counters.dropped) == (5, 1, 4, 0)
    assert harness.metrics.of("Ok").async_events_dropped == 0


async def test_a_delivery_that_never_succeeds_is_dropped_at_the_events_age_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(rng=random.Random(1))
    harness.sender.failures_left = 1_000
    dlq = "arn:aws:sqs:us-east-1:123456789012:missing"
    harness.function("Failer", fails(), config=EventInvokeConfig(maximum_retry_attempts=0, maximum_event_age_s=120), dlq=dlq)
    with caplog.at_level(logging.DEBUG, logger="emulator.async"):
        async with running(harness):
            request_id = harness.submit("Failer")
            await harness.settle()
    assert harness.sender.tried[0] == 0.0 and harness.sender.tried[-1] == 120.0  # the last try at the deadline
    assert harness.sender.sent == []
    counters = harness.metrics.of("Failer").dead_letter
    assert counters.attempts == counters.failures == len(harness.sender.tried)
    assert (counters.delivered, counters.dropped) == (0, 1)
    assert harness.metrics.of("Failer").async_events_dropped == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # the first failure, and the drop; the retries between log at DEBUG
    assert request_id in warnings[-1] and f"failed {counters.attempts} time(s)" in warnings[-1]


async def test_deliveries_do_not_hold_the_functions_slots() -> None:
    harness = Harness()
    harness.sender.failures_left = 1_000
    harness.function("One", succeeds(duration=1.0), reserved=1, config=EventInvokeConfig(on_success="arn:aws:sqs:us-east-1:1:gone"))
    async with running(harness):
        for _ in range(3):
            harness.submit("One")
        await asyncio.sleep(10)
        assert harness.times("One") == [0.0, 1.0, 2.0]  # the failing deliveries did not block the lane
        await harness.queue.drop_all(DROPPED_BY_RESET)


# -- reset and shutdown ----------------------------------------------------------------------
async def test_drop_all_counts_queued_running_and_delivering_events_by_function(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    gate = asyncio.Event()
    harness.sender.failures_left = 1_000
    harness.function("Held", held(gate), reserved=2)
    harness.function("Failer", fails(), config=EventInvokeConfig(on_failure="arn:aws:sqs:us-east-1:1:gone"))
    async with running(harness):
        for _ in range(7):
            harness.submit("Held")
        harness.submit("Failer")  # fails, then retries 60 s later: queued at the drop
        harness.function("Lost", fails(), config=EventInvokeConfig(maximum_retry_attempts=0, on_failure="arn:aws:sqs:us-east-1:1:gone"))
        harness.submit("Lost")  # fails at once; its record is still failing to go out at the drop
        await asyncio.sleep(5)
        assert harness.running["Held"] == 2 and harness.queue.pending == 9
        with caplog.at_level(logging.WARNING, logger="emulator.async"):
            report = await harness.queue.drop_all(DROPPED_BY_RESET)
        assert (report.queued, report.running, report.delivering) == (6, 2, 1)
        assert report.by_function == {"Failer": 1, "Held": 7, "Lost": 1}
        assert harness.queue.pending == 0 and harness.running["Held"] == 0  # the held attempts were cancelled
        gate.set()
        await asyncio.sleep(600)
        assert len(harness.calls) == 2 + 1 + 1  # nothing dropped ever runs again
    assert [message for message in caplog.messages if "pending" in message] == [
        "reset dropped 9 pending async event(s) (6 queued, 2 running, 1 awaiting delivery): Failer: 1, Held: 7, Lost: 1"
    ]
    harness.metrics.reset()  # what a reset does next: every other counter goes
    assert harness.metrics.pending_dropped_snapshot()[DROPPED_BY_RESET] == {
        "total": 9, "by_function": {"Failer": 1, "Held": 7, "Lost": 1},
    }


async def test_a_reset_counts_each_event_once_however_far_it_got() -> None:
    """An event that failed was counted in AsyncEventsDropped then (its reason); a reset that
    drops its record or dead letter on the way out makes it lost, not dropped twice. An
    on-success record it drops is in the reset's report only: that event ran successfully
    (AWS: AsyncEventsDropped counts events dropped without successfully executing the
    function, https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html)."""
    harness = Harness(timeline=True)
    harness.sender.failures_left = 1_000  # every delivery is still failing at the reset
    gone = "arn:aws:sqs:us-east-1:1:gone"
    gate = asyncio.Event()
    harness.function("Failer", fails(), config=EventInvokeConfig(maximum_retry_attempts=0), dlq=gone)
    harness.function("Fine", succeeds(), config=EventInvokeConfig(on_success=gone))
    harness.function("Held", held(gate))
    async with running(harness):
        for name in ("Failer", "Fine", "Held"):
            harness.submit(name)
        await asyncio.sleep(5)
        report = await harness.queue.drop_all(DROPPED_BY_RESET)
        assert (report.queued, report.running, report.delivering) == (0, 1, 2)
    assert harness.timeline is not None

    def total(metric: str, **dims: str) -> float:
        return sum(datum.total for _, datum in harness.timeline.points(series_key("AWS/Lambda", metric, dims)))

    assert total("AsyncEventsDropped", FunctionName="Failer") == total("AsyncEventsDropped", FunctionName="Failer", Reason="RetriesExhausted") == 1
    assert total("AsyncEventsDropped", FunctionName="Fine") == 0
    assert total("AsyncEventsDropped", FunctionName="Held") == total("AsyncEventsDropped", FunctionName="Held", Reason="Reset") == 1
    assert [harness.metrics.of(name).async_events_dropped for name in ("Failer", "Fine", "Held")] == [1, 0, 1]
    assert harness.metrics.pending_dropped_snapshot()[DROPPED_BY_RESET]["by_function"] == {"Failer": 1, "Fine": 1, "Held": 1}


async def test_close_drops_and_reports_what_shutdown_leaves_behind(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    gate = asyncio.Event()
    harness.function("Held", held(gate), reserved=1)
    runner = asyncio.create_task(harness.queue.run())
    for _ in range(3):
        harness.submit("Held")
    await asyncio.sleep(1)
    harness.queue.stop_starting_attempts()
    gate.set()
    await asyncio.sleep(1)
    assert harness.times("Held") == [0.0]  # the running one finished; no new attempt started
    with caplog.at_level(logging.WARNING, logger="emulator.async"):
        report = await harness.queue.close()
    await asyncio.wait_for(runner, 1)  # the scheduler ends by itself once closed
    assert (report.total, report.queued) == (2, 2)
    assert harness.metrics.pending_dropped_snapshot()[DROPPED_AT_SHUTDOWN] == {"total": 2, "by_function": {"Held": 2}}
    assert caplog.messages == ["shutdown dropped 2 pending async event(s) (2 queued, 0 running, 0 awaiting delivery): Held: 2"]
