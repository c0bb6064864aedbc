"""The SQS poller's controller (sources/sqs_poller.py) in virtual time: how many batches a
mapping runs at once, second by second, as AWS documents it
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).

The shell runs for real: its controller task, its batch workers, their receives, invokes
and deletes. Time is virtual (the `looptime` plugin fast-forwards the event loop whenever
it is idle, and the poller's Clock reads loop.time()), so minutes of scaling take
milliseconds. What is faked is what lies outside the poller (a pure shell test may fake
its ports): the queue (`FakeQueue`, long polls included) and the function (`FakeFunction`,
which records how many batches are being invoked at each moment).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.clock import ScaledClock
from emulator.errors import TooManyRequests
from emulator.sources.base import BatchResult, PollerContext, SourcesConfig
from emulator.sources.mapping import EventSourceMapping
from emulator.sources.sqs_poller import SqsPoller
from emulator.sources.validation import settings_from_request

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]

REGION, ACCOUNT = "us-east-1", "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:work"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:worker"
# Every batch takes this long (a worker is always invoking, between instants); the long
# scale-ups use longer batches, so that fewer of them run in the same virtual minutes.
HANDLER_S = 0.5
SAMPLE_OFFSET_S = 0.25  # sample between the controller's decisions (every whole second)


class FakeQueue:
    """A standard queue with `depth` messages (None: endless) and real long-poll semantics."""

    def __init__(self, depth: int | None = None) -> None:
        self.depth = depth
        self.deleted = 0
        self._ids = itertools.count()
        self._arrived = asyncio.Event()

    def add(self, count: int) -> None:
        self.depth = (self.depth or 0) + count
        self._arrived.set()

    async def queue_url(self, queue_arn: str) -> str:
        return "http://queue.local/" + queue_arn.rsplit(":", 1)[-1]

    async def sqs_queue_attributes(self, queue_url: str, names: list[str] | None = None) -> dict[str, str]:
        return {"VisibilityTimeout": "30", "FifoQueue": "false"}

    async def sqs_receive(self, queue_url: str, max_messages: int, wait_s: int, visibility_timeout: int | None = None) -> list[dict[str, Any]]:
        if self.depth == 0 and wait_s:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_s)
            except asyncio.TimeoutError:
                return []
        count = max_messages if self.depth is None else min(max_messages, self.depth)
        if self.depth is not None:
            self.depth -= count
        return [self._message(next(self._ids)) for _ in range(count)]

    async def sqs_delete_batch(self, queue_url: str, receipt_handles: list[str]) -> dict[str, str]:
        self.deleted += len(receipt_handles)
        return {}

    @staticmethod
    def _message(number: int) -> dict[str, Any]:
        return {"MessageId": f"m-{number}", "ReceiptHandle": f"h-{number}", "Body": "x", "MD5OfBody": "",
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}}


@dataclass
class FakeFunction:
    """The InvokePort: every batch runs `handler_s`; `failing` / `throttled` make it answer so."""

    handler_s: float = HANDLER_S
    running: int = 0
    peak: int = 0
    invocations: int = 0
    failing: bool = False
    throttled: bool = False
    throttled_at: list[tuple[float, bytes]] = field(default_factory=list)  # (loop time, batch) of each throttle

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        if self.throttled:
            self.throttled_at.append((asyncio.get_running_loop().time(), payload))
            raise TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded")
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.handler_s)
        finally:
            self.running -= 1
        self.invocations += 1
        return BatchResult(b"null", "Unhandled" if self.failing else None, "$LATEST")

    timeout_asked: int = 0

    async def timeout_s(self, function_arn: str) -> float:
        self.timeout_asked += 1
        return 3.0


def mapping(**request: Any) -> EventSourceMapping:
    settings = settings_from_request({"BatchSize": 10, **request}, kind="sqs", fifo=False, event_source_arn=QUEUE_ARN)
    return EventSourceMapping.new(FUNCTION_ARN, QUEUE_ARN, settings, region=REGION, account_id=ACCOUNT)


class TopOfRange(random.Random):
    """Jitter that always draws the top of its range: the plain doubling, for exact instants."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Harness:
    def __init__(self, queue: FakeQueue, function: FakeFunction, config: SourcesConfig,
                 rng: random.Random | None = None, **request: Any) -> None:
        self.queue, self.function = queue, function
        self.errors: list[BaseException] = []
        clock = ScaledClock(1.0, monotonic=asyncio.get_running_loop().time)
        context = PollerContext(functions=function, backend=queue, clock=clock, region=REGION,  # type: ignore[arg-type]
                                account_id=ACCOUNT, config=config, report_error=self.errors.append,
                                rng=rng or random.Random(7))
        self.poller = SqsPoller(context, mapping(**request))

    async def __aenter__(self) -> "Harness":
        await self.poller.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.poller.stop()
        assert not self.errors

    async def at(self, t: float) -> dict[str, Any]:
        """Let virtual time run to `t` (loop time, s), then the poller's counters."""
        await asyncio.sleep(t - asyncio.get_running_loop().time())
        return self.poller.snapshot()


def concurrency_model(model: str = "current", **config: Any) -> SourcesConfig:
    return SourcesConfig(sqs_scaling_model=model, **config)


async def test_current_model_starts_at_five_and_adds_300_batches_a_minute_while_messages_wait() -> None:
    function = FakeFunction(handler_s=5.0)
    async with Harness(FakeQueue(), function, concurrency_model("current")) as run:
        for second, expected in ((0, 5), (1, 10), (10, 55), (60, 305)):
            stats = await run.at(second + SAMPLE_OFFSET_S)
            assert (stats["TargetConcurrency"], stats["BatchesInFlight"], function.running) == (expected,) * 3, second
    assert function.peak == 305


async def test_legacy_model_adds_60_batches_a_minute() -> None:
    function = FakeFunction()
    async with Harness(FakeQueue(), function, concurrency_model("legacy")) as run:
        for second, expected in ((0, 5), (1, 6), (30, 35), (60, 65)):
            await run.at(second + SAMPLE_OFFSET_S)
            assert function.running == expected, second
    assert function.peak == 65


async def test_the_ceiling_is_1000_batches_per_mapping() -> None:
    function = FakeFunction(handler_s=20.0)
    async with Harness(FakeQueue(), function, concurrency_model("current")) as run:
        await run.at(198 + SAMPLE_OFFSET_S)
        assert function.running == 995  # 5 + 198 s x 5 per second
        await run.at(230 + SAMPLE_OFFSET_S)
        assert function.running == 1000
    assert function.peak == 1000


async def test_maximum_concurrency_caps_what_is_read_and_invoked() -> None:
    function = FakeFunction()
    queue = FakeQueue()
    async with Harness(queue, function, concurrency_model("current"), ScalingConfig={"MaximumConcurrency": 20}) as run:
        await run.at(2 + SAMPLE_OFFSET_S)
        assert function.running == 15
        stats = await run.at(60 + SAMPLE_OFFSET_S)
        assert (stats["TargetConcurrency"], stats["Pollers"], function.running) == (20, 20, 20)
    assert function.peak == 20


async def test_scale_factor_divides_the_ceiling_and_the_rate() -> None:
    function = FakeFunction(handler_s=5.0)
    # --scale-factor 20: ceiling 1,000 / 20 = 50, +300/min / 20 = +15/min; the starting 5 stays.
    async with Harness(FakeQueue(), function, concurrency_model("current", scale_factor=20)) as run:
        await run.at(60 + SAMPLE_OFFSET_S)
        assert function.running == 20
        await run.at(180 + SAMPLE_OFFSET_S)
        assert function.running == 50
    assert function.peak == 50


async def test_an_idle_queue_scales_back_to_five_then_two_pollers_and_a_backlog_starts_again_from_five() -> None:
    function = FakeFunction()
    queue = FakeQueue(depth=None)
    async with Harness(queue, function, concurrency_model("current")) as run:
        await run.at(10 + SAMPLE_OFFSET_S)
        assert function.running == 55
        queue.depth = 0  # drained: from now on every receive is a long poll that finds nothing
        # At 11 the receives of 10.0 still say "backlog" (60); from 12 on, every long poll
        # of the window found nothing: 300 a minute down, as up.
        for second, expected in ((11, 60), (12, 55), (21, 10), (22, 5), (40, 5)):
            assert (await run.at(second + SAMPLE_OFFSET_S))["TargetConcurrency"] == expected, second
        stats = await run.at(45 + SAMPLE_OFFSET_S)  # the long polls of the workers beyond 5 have ended
        assert stats["Pollers"] == 5
        # Idle since the decision of 11: a minute later, the 2-batch optimisation; the other
        # three leave when their current long poll (20 s at most) ends.
        assert (await run.at(70 + SAMPLE_OFFSET_S))["TargetConcurrency"] == 5
        assert (await run.at(71 + SAMPLE_OFFSET_S))["TargetConcurrency"] == 2
        stats = await run.at(92 + SAMPLE_OFFSET_S)
        assert (stats["TargetConcurrency"], stats["Pollers"]) == (2, 2)
        queue.add(10_000)
        await run.at(92.5)
        assert function.running == 2  # the two long polls took messages at once
        await run.at(93 + SAMPLE_OFFSET_S)
        assert function.running == 10  # back to 5, and the second's +5


async def test_failing_batches_back_off_gradually_but_never_below_five() -> None:
    function = FakeFunction()
    async with Harness(FakeQueue(), function, concurrency_model("current")) as run:
        await run.at(10 + SAMPLE_OFFSET_S)
        assert function.running == 55
        function.failing = True
        targets = [(await run.at(second + SAMPLE_OFFSET_S))["TargetConcurrency"] for second in range(11, 30)]
        assert targets == sorted(targets, reverse=True) and targets[-1] == 5 and min(targets) == 5
        assert targets[0] == 44  # a fifth less per window with failed batches


async def test_throttled_batches_back_off_and_are_left_to_their_visibility_timeout() -> None:
    function = FakeFunction()
    queue = FakeQueue()
    async with Harness(queue, function, concurrency_model("current"), rng=TopOfRange()) as run:
        await run.at(10 + SAMPLE_OFFSET_S)
        function.throttled = True  # e.g. the function's reserved concurrency was lowered to 0
        await run.at(10.75)  # the batches being invoked have finished and been deleted
        deleted = queue.deleted
        # The 55 batches invoked at 10.5 are throttled: one window with throttles (a fifth less).
        assert (await run.at(11 + SAMPLE_OFFSET_S))["TargetConcurrency"] == 44
        # Retried 1, 2, 4 and 8 s later; the next wait (16 s) would outlast the queue's 30 s
        # visibility timeout, so at 25.5 each batch is left in flight, never deleted: SQS
        # returns it. The workers beyond 44 leave; the others receive, are throttled again.
        stats = await run.at(25 + SAMPLE_OFFSET_S)
        assert (stats["BatchesDroppedAfterThrottling"], stats["TargetConcurrency"]) == (0, 44)
        stats = await run.at(26 + SAMPLE_OFFSET_S)
        assert (stats["BatchesDroppedAfterThrottling"], stats["MessagesReturned"]) == (55, 550)
        assert (stats["TargetConcurrency"], stats["Pollers"]) == (35, 44)
        assert queue.deleted == deleted


async def test_throttled_batches_retry_with_full_jitter_not_in_step() -> None:
    """55 batches throttled at one instant must not all come back at the same instants
    (1, 2, 4 s later ...) and throttle one another again: each retry is drawn up to its step."""
    function = FakeFunction()
    async with Harness(FakeQueue(), function, concurrency_model("current"), rng=random.Random(11)) as run:
        await run.at(10 + SAMPLE_OFFSET_S)
        function.throttled = True
        await run.at(13)
    attempts: dict[bytes, list[float]] = {}
    for when, batch in function.throttled_at:
        attempts.setdefault(batch, []).append(when)
    first_throttle = min(times[0] for times in attempts.values())
    together = [times for times in attempts.values() if times[0] == first_throttle]
    assert len(together) == 55  # the batches invoked at 10.5 (see the test above)
    # Each retried within the first step (1 s), at an instant of its own; the plain
    # doubling retried all 55 at exactly 11.5.
    retries = [times[1] for times in together]
    assert all(first_throttle < t <= first_throttle + 1.0 for t in retries)
    assert len(set(retries)) == 55


async def test_with_a_batching_window_the_functions_timeout_is_asked_once_per_refresh_not_per_batch() -> None:
    """In the poller process, asking is a call over the channel to the control plane."""
    function = FakeFunction()
    async with Harness(FakeQueue(), function, concurrency_model("current"), MaximumBatchingWindowInSeconds=1) as run:
        await run.at(59)
    assert function.invocations > 100
    assert function.timeout_asked == 2  # at the start and 30 s later (ATTRIBUTE_REFRESH_S)


class OneMessageQueue:
    """One message on a queue with a redrive policy, kept as the moto child keeps it: a
    receive while it is visible counts and hands out a new receipt handle, one once it has
    been received maxReceiveCount times moves it to the DLQ instead, and every handle it was
    ever given deletes it (stale ones too)."""

    def __init__(self, visibility_s: int, max_receive: int) -> None:
        self.visibility_s, self.max_receive = visibility_s, max_receive
        self.where = "queue"  # "queue" | "deleted" | "dlq"
        self.count = 0
        self.visible_at = 0.0
        self.handles: set[str] = set()

    async def queue_url(self, queue_arn: str) -> str:
        return "http://queue.local/" + queue_arn.rsplit(":", 1)[-1]

    async def sqs_queue_attributes(self, queue_url: str, names: list[str] | None = None) -> dict[str, str]:
        if names:  # the DLQ's depth
            return {"ApproximateNumberOfMessages": str(int(self.where == "dlq"))}
        return {"VisibilityTimeout": str(self.visibility_s), "FifoQueue": "false", "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": f"{QUEUE_ARN}-dlq", "maxReceiveCount": self.max_receive})}

    async def sqs_receive(self, queue_url: str, max_messages: int, wait_s: int, visibility_timeout: int | None = None) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            now = loop.time()
            if self.where == "queue" and now >= self.visible_at:
                if self.count >= self.max_receive:
                    self.where = "dlq"
                    return []
                self.count += 1
                self.visible_at = now + self.visibility_s
                handle = f"h-{self.count}"
                self.handles.add(handle)
                return [{"MessageId": "m-1", "ReceiptHandle": handle, "Body": "x", "MD5OfBody": "", "Attributes": {
                    "ApproximateReceiveCount": str(self.count), "SentTimestamp": "1700000000000"}}]
            if now >= deadline:
                return []
            wake = min(deadline, self.visible_at) if self.where == "queue" and self.visible_at > now else deadline
            await asyncio.sleep(wake - now)

    async def sqs_delete_batch(self, queue_url: str, receipt_handles: list[str]) -> dict[str, str]:
        failed = {}
        for handle in receipt_handles:
            if handle in self.handles and self.where in ("queue", "deleted"):
                self.where = "deleted"
            else:
                failed[handle] = "ReceiptHandleIsInvalid"
        return failed


@dataclass
class RunsOnceThenThrottled:
    """The first batch runs `handler_s`; every later attempt is throttled."""

    handler_s: float
    calls: int = 0

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        self.calls += 1
        if self.calls > 1:
            raise TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded")
        await asyncio.sleep(self.handler_s)
        return BatchResult(b"null", None, "$LATEST")

    async def timeout_s(self, function_arn: str) -> float:
        return 1.0


@pytest.mark.parametrize(("handler_s", "fate", "bound"), [
    # The first batch deletes the message (with its older handle) before anything moves it.
    (1.5, "deleted", {}),
    # The second receive's visibility timeout ends first: the next receive moves it to the DLQ.
    (3.0, "dlq", {"Throttled": 1}),
])
async def test_a_message_is_counted_dlq_bound_only_if_no_batch_that_held_it_deleted_it(
        handler_s: float, fate: str, bound: dict[str, int]) -> None:
    """Visibility timeout 1 s, maxReceiveCount 2: the first batch still runs when the message
    shows again; a second worker receives it (the last receive allowed) and is throttled until
    it gives the batch up. Which ends the message: the first batch's delete, or the redrive?"""
    queue = OneMessageQueue(visibility_s=1, max_receive=2)
    function = RunsOnceThenThrottled(handler_s)
    async with Harness(queue, function, concurrency_model("current")) as run:  # type: ignore[arg-type]
        stats = await run.at(10)
    assert queue.where == fate and queue.count == 2
    assert stats["DeadLetterBoundByCause"] == bound
    assert stats["MessagesReturnedAtMaxReceiveCount"] == sum(bound.values())
