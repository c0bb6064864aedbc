"""The SNS → Lambda fan-out (emulator/sns/fanout.py) in virtual time.

A shell test: the fan-out gets its hand-over and dead-letter ports as callables, here
scripted (Lambda refuses while the script says so), on an event loop whose time looptime
fast-forwards, so SNS's 23-day delivery policy is followed attempt by attempt in a second.
The real emulator runs the same fan-out in tests/scenario/test_sns_lambda.py."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.clock import ScaledClock
from emulator.errors import ResourceNotFound
from emulator.policy.sns_delivery import TOTAL_ATTEMPTS, nominal_delay
from emulator.sns.fanout import (
    DEAD_LETTER,
    DELIVERED,
    DISCARDED,
    FAILED,
    REDRIVEN,
    REJECTED_ATTEMPTS,
    FanoutPorts,
    SnsLambdaFanout,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]
TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:f"
DLQ = "arn:aws:sqs:us-east-1:123456789012:dlq"


@dataclass
class ScriptedLambda:
    loop: asyncio.AbstractEventLoop
    refusals_left: int = 0
    bugs_left: int = 0  # hand-overs that fail with an error that is not Lambda's
    attempts: list[float] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[tuple[str, str, dict]] = field(default_factory=list)

    def hand_over(self, function_arn: str, payload: bytes) -> None:
        self.attempts.append(self.loop.time())
        if self.bugs_left:
            self.bugs_left -= 1
            raise KeyError("$LATEST")
        if self.refusals_left:
            self.refusals_left -= 1
            raise ResourceNotFound(f"Function not found: {function_arn}")
        self.accepted.append(json.loads(payload))

    async def send_dead_letter(self, queue_arn: str, body: str, attributes: dict) -> None:
        self.dead_letters.append((queue_arn, body, attributes))

    def ports(self) -> FanoutPorts:
        return FanoutPorts(self.hand_over, self.send_dead_letter)


def _message(dlq: str | None = DLQ) -> dict[str, Any]:
    return {"MessageId": "m-1", "TopicArn": TOPIC, "Timestamp": "2024-01-01T00:00:00.000Z", "Subject": None,
            "Message": "hello", "MessageAttributes": {"a": {"Type": "String", "Value": "x"}},
            "Subscriptions": [[f"{TOPIC}:sub-1", FUNCTION, dlq]]}


def _fanout(script: ScriptedLambda, **kwargs: Any) -> SnsLambdaFanout:
    loop = script.loop
    clock = ScaledClock(1.0, monotonic=loop.time)
    fanout = SnsLambdaFanout(ports=script.ports(), backend_url="http://unused", clock=clock,
                             rng=random.Random(3), **kwargs)
    fanout.start(poll=False)
    return fanout


async def test_an_accepted_message_is_one_async_invoke() -> None:
    script = ScriptedLambda(asyncio.get_running_loop())
    fanout = _fanout(script)
    fanout.deliver(_message())
    assert len(script.accepted) == 1 and script.accepted[0]["Records"][0]["Sns"]["Message"] == "hello"
    assert fanout.counters[TOPIC] == {DELIVERED: 1}
    await fanout.stop("test")


async def test_refusals_follow_the_delivery_policy_then_succeed() -> None:
    loop = asyncio.get_running_loop()
    script = ScriptedLambda(loop, refusals_left=20)
    fanout = _fanout(script)
    start = loop.time()
    fanout.deliver(_message())
    while len(script.accepted) < 1:
        await asyncio.sleep(1)
    gaps = [b - a for a, b in zip(script.attempts, script.attempts[1:])]
    assert len(script.attempts) == 21
    for n, gap in enumerate(gaps, start=1):
        expected = nominal_delay(n)
        assert expected is not None
        assert gap == pytest.approx(expected, rel=0.1, abs=1e-4), (n, gap, expected)
    assert script.attempts[0] == start
    assert fanout.counters[TOPIC] == {REJECTED_ATTEMPTS: 20, DELIVERED: 1}
    assert script.dead_letters == []
    await fanout.stop("test")


# looptime's no-op cycles before each jump of time (42 by default) would cost ~67 loop
# turns for each of the 100,015 attempts; one is enough here (nothing waits on a timeout).
@pytest.mark.looptime(noop_cycles=1)
async def test_an_exhausted_policy_sends_the_envelope_to_the_dead_letter_queue() -> None:
    loop = asyncio.get_running_loop()
    script = ScriptedLambda(loop, refusals_left=TOTAL_ATTEMPTS)
    fanout = _fanout(script)
    start = loop.time()
    fanout.deliver(_message())
    while not script.dead_letters:
        await asyncio.sleep(3600)
    assert len(script.attempts) == TOTAL_ATTEMPTS
    assert 23 * 86_400 < script.attempts[-1] - start < 24 * 86_400
    queue, body, attributes = script.dead_letters[0]
    assert queue == DLQ and attributes == {"a": ("String", "x")}
    envelope = json.loads(body)
    assert envelope["Type"] == "Notification" and envelope["Message"] == "hello" and envelope["MessageId"] == "m-1"
    await asyncio.sleep(0)
    assert fanout.counters[TOPIC][FAILED] == 1 and fanout.counters[TOPIC][REDRIVEN] == 1
    await fanout.stop("test")


async def test_dead_letter_choice_skips_retries_and_without_a_queue_discards() -> None:
    script = ScriptedLambda(asyncio.get_running_loop(), refusals_left=2)
    fanout = _fanout(script, rejections=DEAD_LETTER)
    fanout.deliver(_message())
    fanout.deliver(_message(dlq=None))
    await asyncio.sleep(0)
    assert len(script.attempts) == 2 and len(script.dead_letters) == 1
    assert fanout.counters[TOPIC][DISCARDED] == 1 and fanout.counters[TOPIC][FAILED] == 2
    await fanout.stop("test")


async def test_stopping_drops_pending_retries_and_counts_them() -> None:
    script = ScriptedLambda(asyncio.get_running_loop(), refusals_left=TOTAL_ATTEMPTS)
    fanout = _fanout(script)
    fanout.deliver(_message())
    fanout.deliver(_message())
    await asyncio.sleep(10)
    assert fanout.pending_retries == 2
    assert await fanout.stop("reset") == 2
    assert fanout.dropped == {"reset": 2} and fanout.pending_retries == 0


async def test_an_unexpected_error_is_reported_and_the_message_retried() -> None:
    script = ScriptedLambda(asyncio.get_running_loop(), bugs_left=1)
    errors: list[BaseException] = []
    fanout = _fanout(script, errors=errors)
    fanout.deliver(_message())
    await asyncio.sleep(0)
    assert len(script.accepted) == 1 and len(script.attempts) == 2  # the retry loop lives on
    assert [type(e) for e in errors] == [KeyError]
    assert fanout.counters[TOPIC] == {REJECTED_ATTEMPTS: 1, DELIVERED: 1}
    await fanout.stop("test")
