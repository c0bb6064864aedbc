"""What the moto child hands to the control plane about SNS: Lambda deliveries and counters.

moto decides every SNS delivery (emulator/moto_child/fast_sns.py) but does not invoke
functions: a message for a Lambda subscription waits here until the control plane takes
it (`GET /_emulator/sns-deliveries?wait=S&max=N`, a long poll that answers as soon as
anything waits), then the control plane hands it to Lambda's async queue
(emulator/sns/fanout.py). Every publish reaches the control plane this way, whoever
published: a client through the emulator's endpoint, a destination of an async
invocation, a handler, the pollers. `GET /_emulator/sns-metrics` answers each topic's
counters, under CloudWatch's names. A reset of moto empties both. Each answer is
acknowledged by the consumer's next poll (`consumer=ID&ack=BATCH`), so a fan-out that is
stopped while messages are on their way to it (a reset) loses none: its successor gets them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from typing import Any, Callable
from urllib.parse import parse_qs

log = logging.getLogger("emulator.moto.sns")

DELIVERIES_PATH = "/_emulator/sns-deliveries"
METRICS_PATH = "/_emulator/sns-metrics"
# How long one long poll may wait, and how many messages one answer carries.
MAX_WAIT_S = 20.0
DEFAULT_MAX_MESSAGES = 1000
# Messages kept for a control plane that does not take them (none is attached, or it is
# far behind): beyond this the oldest are dropped, counted and logged, so the child's
# memory stays bounded.
MAX_WAITING = 1_000_000


class LambdaOutbox:
    """Messages for Lambda subscriptions, taken by one consumer at a time with
    acknowledgements: a batch stays in flight until the consumer's next poll acknowledges
    it, and when a new consumer appears (the control plane's fan-out restarted, after a
    reset) whatever its predecessor had not acknowledged goes back to the front. A poll
    left waiting by a consumer that went away takes nothing once a new consumer polls."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self._messages: deque[dict[str, Any]] = deque()
        self._ready = threading.Condition()
        self._limit = limit
        self._consumer = ""
        self._in_flight: dict[int, list[dict[str, Any]]] = {}  # batch number -> messages
        self._batches = 0
        self.dropped = 0

    def put(self, message: dict[str, Any]) -> None:
        with self._ready:
            if len(self._messages) >= self._limit:
                self._messages.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.warning("SNS: %d Lambda deliveries dropped: the control plane does not take them", self.dropped)
            self._messages.append(message)
            self._ready.notify_all()

    def take(self, consumer: str, acknowledged: int, wait_s: float, most: int) -> tuple[int, list[dict[str, Any]]]:
        """(batch number, up to `most` messages), waiting up to `wait_s` for the first.
        `acknowledged`: the last batch this consumer has handled."""
        with self._ready:
            if consumer != self._consumer:
                for batch in sorted(self._in_flight, reverse=True):
                    self._messages.extendleft(reversed(self._in_flight[batch]))
                self._in_flight.clear()
                self._consumer = consumer
                self._ready.notify_all()  # stale polls of the previous consumer return empty
            for batch in [b for b in self._in_flight if b <= acknowledged]:
                del self._in_flight[batch]
            if not self._messages and wait_s > 0:
                self._ready.wait_for(lambda: bool(self._messages) or self._consumer != consumer, timeout=wait_s)
            if self._consumer != consumer:
                return 0, []
            taken = []
            while self._messages and len(taken) < most:
                taken.append(self._messages.popleft())
            if not taken:
                return 0, []
            self._batches += 1
            self._in_flight[self._batches] = taken
            return self._batches, taken

    def clear(self) -> None:
        with self._ready:
            self._messages.clear()
            self._in_flight.clear()

    def __len__(self) -> int:
        return len(self._messages) + sum(len(batch) for batch in self._in_flight.values())


class TopicCounters:
    """Per-topic counters under SNS's CloudWatch metric names
    (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, Counter[str]] = {}

    def add(self, topic_arn: str, name: str, amount: int = 1) -> None:
        with self._lock:
            counters = self._topics.get(topic_arn)
            if counters is None:
                counters = self._topics[topic_arn] = Counter()
            counters[name] += amount

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {topic: dict(counters) for topic, counters in self._topics.items()}

    def clear(self) -> None:
        with self._lock:
            self._topics.clear()


OUTBOX = LambdaOutbox()
COUNTERS = TopicCounters()


def dispatcher_call(inner: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that answers the two paths above."""

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO")
        if environ.get("REQUEST_METHOD") == "GET" and path in (DELIVERIES_PATH, METRICS_PATH):
            if path == DELIVERIES_PATH:
                query = parse_qs(environ.get("QUERY_STRING", ""))
                wait = min(MAX_WAIT_S, max(0.0, float(query.get("wait", ["0"])[0])))
                most = max(1, int(query.get("max", [str(DEFAULT_MAX_MESSAGES)])[0]))
                batch, messages = OUTBOX.take(query.get("consumer", [""])[0], int(query.get("ack", ["0"])[0]), wait,
                                              most)
                body = json.dumps({"batch": batch, "messages": messages, "dropped": OUTBOX.dropped}).encode()
            else:
                body = json.dumps({"topics": COUNTERS.snapshot(), "waiting": len(OUTBOX),
                                   "dropped": OUTBOX.dropped}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return inner(self, environ, start_response)

    return __call__
