"""SNS → Lambda, as SNS delivers: every message for a Lambda subscription is handed to
Lambda's asynchronous queue, and what Lambda refuses is retried by SNS's delivery policy,
then sent to the subscription's dead-letter queue.

moto decides which subscriptions get a message (filter policies included) and keeps the
Lambda ones in its outbox (emulator/moto_child/sns_outbox.py). `SnsLambdaFanout` takes them
with a long poll and, per subscription, builds the event record AWS sends
(emulator/sns_shapes.py) and hands it over with `LambdaService.submit_async`: an
asynchronous invocation, as SNS invokes Lambda
(https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html), so the async queue's
retries, destinations and dead-letter queue apply to it like to any Event invoke.

The hand-over fails when Lambda refuses the event: the function (or its version or alias)
does not exist, or the event is larger than an asynchronous payload may be. What follows is
configurable (`--sns-lambda-rejections`), because AWS's pages disagree: Lambda's says SNS
retries a message that "is rejected"; SNS's dead-letter page calls a deleted function a
client-side error that is not retried. `retry` (default) runs SNS's delivery policy for
AWS-managed endpoints (emulator/policy/sns_delivery.py) on the emulator's clock, so
`--time-scale` shortens its 23 days; `dead-letter` sends the message to the dead-letter
queue at once. Then the dead-letter queue receives the message in SNS's JSON envelope with
its attributes; without one, the message is discarded, counted and logged. A reset or a
shutdown drops the retries still pending, counts them and says so: nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from emulator.backend.client import BackendClient
from emulator.clock import Clock
from emulator.errors import AwsError, RequestTooLarge
from emulator.policy.sns_delivery import DeliveryState, Exhausted, after_failure
from emulator.sns_shapes import MAX_ASYNC_PAYLOAD_BYTES, LambdaEvents, sqs_envelope
from emulator.tasks import OwnedTasks

if TYPE_CHECKING:
    from emulator.service.lambda_service import LambdaService

log = logging.getLogger("emulator.sns")

DELIVERIES_PATH = "/_emulator/sns-deliveries"
METRICS_PATH = "/_emulator/sns-metrics"
LONG_POLL_S = 20
MESSAGES_PER_POLL = 1000
# Not AWS figures: how the fan-out waits for the moto child when it does not answer.
BACKEND_RETRY_INITIAL_S = 0.2
BACKEND_RETRY_MAX_S = 5.0
# Not AWS figures: a retry due within this many emulated seconds is due now (a timer fires
# at its loop's resolution, which can land a hair before the due time: without the slack a
# virtual-time loop would wait for that hair forever), and a long run of due retries
# yields to the loop every so many attempts.
DUE_SLACK_S = 1e-3
RETRIES_PER_TURN = 1000
RETRY = "retry"
DEAD_LETTER = "dead-letter"
REJECTION_POLICIES = (RETRY, DEAD_LETTER)
# Counter names (SNS's CloudWatch names where SNS has one:
# https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html).
DELIVERED = "NumberOfNotificationsDelivered"
FAILED = "NumberOfNotificationsFailed"
REDRIVEN = "NumberOfNotificationsRedrivenToDlq"
REDRIVE_FAILED = "NumberOfNotificationsFailedToRedriveToDlq"
REJECTED_ATTEMPTS = "LambdaDeliveryAttemptsRejected"  # ours: every refused hand-over
DISCARDED = "NumberOfNotificationsDiscarded"  # ours: given up without a dead-letter queue


@dataclass(frozen=True)
class FanoutPorts:
    """What the fan-out needs from the rest of the emulator, as callables (so its shell is
    tested in virtual time against scripted ones: tests/unit/test_sns_fanout.py)."""

    # hand_over(function_arn, payload): queue an asynchronous invocation; raises AwsError
    # when Lambda refuses it.
    hand_over: Callable[[str, bytes], None]
    # send_dead_letter(queue_arn, body, {name: (type, value)}): one attempt; raises on failure.
    send_dead_letter: Callable[[str, str, dict[str, tuple[str, str]]], Awaitable[None]]


def lambda_ports(service: "LambdaService", backend: BackendClient) -> FanoutPorts:
    """The ports of a running emulator: Lambda's async queue, the backend's SQS."""

    def hand_over(function_arn: str, payload: bytes) -> None:
        version, qualifier = service.registry.resolve_qualified(function_arn)
        if len(payload) > MAX_ASYNC_PAYLOAD_BYTES:
            raise RequestTooLarge(f"Request must be smaller than {MAX_ASYNC_PAYLOAD_BYTES} bytes for the Invoke operation")
        service.submit_async(version, payload, qualifier)

    return FanoutPorts(hand_over, backend.sqs_send)


@dataclass
class _Delivery:
    """One message on its way to one Lambda subscription."""

    topic_arn: str
    message: dict[str, Any]
    subscription_arn: str
    function_arn: str
    dead_letter_arn: str | None
    payload: bytes
    state: DeliveryState
    last_error: str = ""


class SnsLambdaFanout:
    def __init__(self, *, ports: FanoutPorts, backend_url: str, clock: Clock, rejections: str = RETRY,
                 rng: random.Random | None = None, errors: list[BaseException] | None = None) -> None:
        if rejections not in REJECTION_POLICIES:
            raise ValueError(f"rejections must be one of {REJECTION_POLICIES}, got {rejections!r}")
        self.ports = ports
        self.backend_url = backend_url.rstrip("/")
        self.clock = clock
        self.rejections = rejections
        self.rng = rng if rng is not None else random.Random()
        self.counters: dict[str, Counter[str]] = {}
        self.dropped: Counter[str] = Counter()  # retries dropped by a reset or shutdown, by cause
        self._retries: list[tuple[float, int, _Delivery]] = []  # (due, tie-breaker, delivery): a heap
        self._redriving = 0  # dead letters on their way to their queue
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._report = (errors if errors is not None else []).append
        self._tasks = OwnedTasks("sns fan-out", self._report)
        self._session: aiohttp.ClientSession | None = None
        self._unavailable = False  # logged once per outage
        self.supported = True  # False once the backend shows it has no SNS outbox

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, poll: bool = True) -> None:
        if poll:
            self._tasks.spawn(self._poll_loop(), "sns outbox poll")
        self._tasks.spawn(self._retry_loop(), "sns delivery retries")

    async def stop(self, cause: str) -> int:
        """Stop taking and retrying; drop (counting, logging) the retries still pending."""
        redriving = self._redriving
        await self._tasks.cancel_all()
        pending = len(self._retries) + redriving
        if pending:
            self.dropped[cause] += pending
            log.warning("%s dropped %d SNS message(s) for Lambda: %d waiting to be retried, %d on their way to a "
                        "dead-letter queue", cause, pending, len(self._retries), redriving)
        self._retries.clear()
        self._redriving = 0
        if self._session is not None:
            await self._session.close()
            self._session = None
        return pending

    @property
    def pending_retries(self) -> int:
        return len(self._retries)

    # -- taking from the outbox -------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=LONG_POLL_S + 30))
        return self._session

    async def _poll_loop(self) -> None:
        delay = BACKEND_RETRY_INITIAL_S
        consumer = uuid.uuid4().hex  # this run of the loop; a new one gets what this one left
        acknowledged = 0
        while True:
            url = (f"{self.backend_url}{DELIVERIES_PATH}?consumer={consumer}&ack={acknowledged}&wait={LONG_POLL_S}"
                   f"&max={MESSAGES_PER_POLL}")
            try:
                async with self._http().get(url) as response:
                    if response.status == 404:
                        self._no_outbox()
                        return
                    body = await response.json(content_type=None)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
                if not self._unavailable:
                    self._unavailable = True
                    log.info("SNS fan-out: the backend does not answer (%s); waiting for it", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKEND_RETRY_MAX_S)
                continue
            self._unavailable = False
            delay = BACKEND_RETRY_INITIAL_S
            for message in body.get("messages", ()):
                self.deliver(message)
            acknowledged = max(acknowledged, int(body.get("batch") or 0))

    def _no_outbox(self) -> None:
        self.supported = False
        log.warning("SNS fan-out: the AWS backend (%s) has no SNS outbox (it is not the emulator's moto): "
                    "messages published to topics are not delivered to Lambda subscriptions", self.backend_url)

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand one message of the outbox to each of its Lambda subscriptions."""
        subscriptions = message.get("Subscriptions")
        if not subscriptions:
            return
        now = self.clock.now()
        events = LambdaEvents(  # the message encoded once for all its subscriptions
            message_id=message["MessageId"], topic_arn=message["TopicArn"], message=message["Message"],
            subject=message.get("Subject"), stamp=message["Timestamp"], attributes=message.get("MessageAttributes"),
            signature_version=message.get("SignatureVersion", "1"),
        )
        for subscription_arn, function_arn, dead_letter_arn in subscriptions:
            delivery = _Delivery(message["TopicArn"], message, subscription_arn, function_arn, dead_letter_arn,
                                 events.payload(subscription_arn), DeliveryState(first_attempt_at=now))
            self._attempt(delivery)

    # -- handing over -------------------------------------------------------------------------
    def _count(self, topic_arn: str, name: str, amount: int = 1) -> None:
        counters = self.counters.get(topic_arn)
        if counters is None:
            counters = self.counters[topic_arn] = Counter()
        counters[name] += amount

    def _attempt(self, delivery: _Delivery) -> None:
        try:
            self.ports.hand_over(delivery.function_arn, delivery.payload)
        except AwsError as refusal:
            self._rejected(delivery, f"{refusal.code}: {refusal.message}")
            return
        except Exception as bug:  # the emulator's own fault: reported, and the message retried like a refusal
            log.exception("SNS: handing message %s to %s failed", delivery.message["MessageId"], delivery.function_arn)
            self._report(bug)
            self._rejected(delivery, f"{type(bug).__name__}: {bug}")
            return
        self._count(delivery.topic_arn, DELIVERED)

    def _rejected(self, delivery: _Delivery, reason: str) -> None:
        self._count(delivery.topic_arn, REJECTED_ATTEMPTS)
        delivery.last_error = reason
        if self.rejections == DEAD_LETTER:
            if delivery.state.attempts == 0:
                log.warning("SNS: Lambda refused message %s for %s (%s): a client-side error, not retried",
                            delivery.message["MessageId"], delivery.subscription_arn, reason)
            self._give_up(delivery)
            return
        decision = after_failure(delivery.state, self.clock.now(), self.rng)
        delivery.state = decision.state
        if isinstance(decision, Exhausted):
            self._give_up(delivery)
            return
        if decision.state.attempts == 1:
            log.warning("SNS: Lambda refused message %s for %s (%s); retrying by SNS's delivery policy",
                        delivery.message["MessageId"], delivery.subscription_arn, reason)
        heapq.heappush(self._retries, (decision.when, next(self._seq), delivery))
        self._wake.set()

    async def _retry_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = self.clock.now()
            turn = 0
            while self._retries and self._retries[0][0] <= now + DUE_SLACK_S:
                _, _, delivery = heapq.heappop(self._retries)
                self._attempt(delivery)
                turn += 1
                if turn % RETRIES_PER_TURN == 0:
                    await asyncio.sleep(0)
                    now = self.clock.now()
            if not self._retries:
                await self._wake.wait()
                continue
            # A timer that sets the wake-up event: cheaper than wait_for, which makes a task
            # per wait (100,015 attempts per message under the delivery policy).
            timer = loop.call_later(max(0.0, self.clock.to_real(self._retries[0][0] - now)), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _give_up(self, delivery: _Delivery) -> None:
        self._count(delivery.topic_arn, FAILED)
        if delivery.dead_letter_arn is None:
            self._count(delivery.topic_arn, DISCARDED)
            log.warning("SNS: message %s for %s discarded after %d attempt(s) (no dead-letter queue): %s",
                        delivery.message["MessageId"], delivery.subscription_arn, delivery.state.attempts,
                        delivery.last_error)
            return
        self._redriving += 1
        self._tasks.spawn(self._redrive(delivery), f"sns dead letter {delivery.message['MessageId']}")

    async def _redrive(self, delivery: _Delivery) -> None:
        try:
            await self._send_dead_letter(delivery)
        finally:
            self._redriving -= 1

    async def _send_dead_letter(self, delivery: _Delivery) -> None:
        message = delivery.message
        body = sqs_envelope(message_id=message["MessageId"], topic_arn=message["TopicArn"],
                            subscription_arn=delivery.subscription_arn, message=message["Message"],
                            subject=message.get("Subject"), stamp=message["Timestamp"],
                            attributes=message.get("MessageAttributes"),
                            signature_version=message.get("SignatureVersion", "1"))
        attributes = {name: (a["Type"], a["Value"]) for name, a in (message.get("MessageAttributes") or {}).items()
                      if not a["Type"].startswith("Binary")}
        try:
            assert delivery.dead_letter_arn is not None
            await self.ports.send_dead_letter(delivery.dead_letter_arn, body, attributes)
        except Exception as exc:  # the queue does not exist, the backend is down: counted, logged
            self._count(delivery.topic_arn, REDRIVE_FAILED)
            log.warning("SNS: message %s for %s could not be sent to its dead-letter queue %s: %s",
                        message["MessageId"], delivery.subscription_arn, delivery.dead_letter_arn, exc)
            return
        self._count(delivery.topic_arn, REDRIVEN)

    # -- metrics --------------------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        """Per topic: moto's counters (published, filtered out, SQS deliveries) plus ours
        (Lambda deliveries), summed under the same names."""
        topics: dict[str, Counter[str]] = {topic: Counter(c) for topic, c in self.counters.items()}
        backend: dict[str, Any] = {}
        if self.supported:
            try:
                async with self._http().get(self.backend_url + METRICS_PATH,
                                            timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        backend = json.loads(await response.text())
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
                backend = {}
        for topic, counters in (backend.get("topics") or {}).items():
            topics.setdefault(topic, Counter()).update(counters)
        return {
            "topics": {topic: dict(sorted(c.items())) for topic, c in sorted(topics.items())},
            "lambda_retries_pending": len(self._retries),
            "lambda_deliveries_waiting_in_backend": backend.get("waiting"),
            "dropped_pending": dict(self.dropped),
        }

    def reset_counters(self) -> None:
        self.counters.clear()
