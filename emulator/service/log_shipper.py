"""Function logs into CloudWatch Logs in the backend, in batches, off the invoke path.

What Lambda does (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html):
each function writes to the log group `/aws/lambda/{name}` (or `LoggingConfig.LogGroup`),
each execution environment to a log stream of its own named `YYYY/MM/DD/[version]id`;
every line is an event. So `aws logs tail`, `filter-log-events` and Powertools' tooling
find the logs where they look.

A task owned by the server takes what the feed (emulator/execution/log_feed.py) holds
every FLUSH_INTERVAL_S, creates each group and stream once, and sends PutLogEvents
within the API's batch limits
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html).
A batch the backend refuses or cannot take is dropped and counted: the invoke path never
waits for CloudWatch, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _escape

from emulator.backend.client import UNREACHABLE, BackendClient, BackendError
from emulator.execution.log_feed import CloudWatchFeed, LogChunk

log = logging.getLogger("emulator.service.logs")

# PutLogEvents limits (the API reference above): 10,000 events and 1,048,576 bytes per
# call, counting 26 bytes per event on top of its UTF-8 message; an event is at most
# 256 KB (longer lines are cut, as the CloudWatch agent cuts them).
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
# Not AWS figures: how often the feed is emptied, and how long stop() waits for the last batches.
FLUSH_INTERVAL_S = 0.5
FINAL_FLUSH_TIMEOUT_S = 5.0
# Preparing a shipment runs on the event loop: it yields after this many chunks (~1-2 ms).
YIELD_EVERY_CHUNKS = 1_000
_LOGS_TARGET = "Logs_20140328."
_JSON_11 = "application/x-amz-json-1.1"


@dataclass
class ShipperStats:
    events_sent: int = 0
    batches_sent: int = 0
    events_dropped: int = 0  # refused by the backend or lost while it was unreachable
    delivery_failures: int = 0  # PutLogEvents calls that failed


class LogShipper:
    final_flush_timeout_s = FINAL_FLUSH_TIMEOUT_S

    def __init__(self, feed: CloudWatchFeed, backend: BackendClient, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.feed = feed
        self.backend = backend
        self.interval_s = interval_s
        self.stats = ShipperStats()
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()
        self._outage = False
        self._lock = asyncio.Lock()  # one shipment at a time (the loop and a final flush)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            chunks = self.feed.take()
            if chunks:
                await self._ship(chunks)

    def forget_resources(self) -> None:
        """The backend lost its groups and streams (a reset, a restart): create them again."""
        self._groups.clear()
        self._streams.clear()

    def snapshot(self) -> dict[str, int]:
        s = self.stats
        return {"events_sent": s.events_sent, "batches_sent": s.batches_sent, "events_dropped": s.events_dropped,
                "delivery_failures": s.delivery_failures, "chunks_dropped_at_feed": self.feed.dropped_chunks,
                "pending_chunks": len(self.feed)}

    # -- one shipment -----------------------------------------------------------------------
    async def _ship(self, chunks: list[LogChunk]) -> None:
        # Events are encoded as JSON text here, one string each (json's C escaper), not as
        # dicts for json.dumps: a quarter of the cost, on the control plane's event loop.
        by_stream: dict[tuple[str, str], list[str]] = defaultdict(list)
        for index, chunk in enumerate(chunks):
            if index and index % YIELD_EVERY_CHUNKS == 0:
                await asyncio.sleep(0)  # let invocations run between slices of a large shipment
            events = by_stream[(chunk.group, chunk.stream)]
            prefix = '{"timestamp":%d,"message":' % chunk.timestamp_ms
            for line in chunk.text.splitlines():
                events.append(prefix + _escape(_cut(line) or " ") + "}")
        for (group, stream), events in by_stream.items():
            head = ('{"logGroupName":%s,"logStreamName":%s,"logEvents":[' % (_escape(group), _escape(stream))).encode()
            for batch in _batches(events):
                await self._put(group, stream, head + ",".join(batch).encode() + b"]}", len(batch))

    async def _put(self, group: str, stream: str, body: bytes, count: int) -> None:
        for attempt in (1, 2):
            try:
                await self._ensure(group, stream)
                await self.backend.json_call("logs", _LOGS_TARGET + "PutLogEvents", body, _JSON_11)
            except BackendError as exc:
                if exc.code == "ResourceNotFoundException" and attempt == 1:
                    self.forget_resources()  # the backend was reset or restarted: create them again
                    continue
                self._failed(count, f"{exc.code or exc.status}: {exc.message}")
                return
            except UNREACHABLE as exc:
                self._failed(count, str(exc) or type(exc).__name__)
                return
            self.stats.events_sent += count
            self.stats.batches_sent += 1
            if self._outage:
                self._outage = False
                log.info("function logs reach CloudWatch Logs again")
            return

    async def _ensure(self, group: str, stream: str) -> None:
        if group not in self._groups:
            await self._create("CreateLogGroup", {"logGroupName": group})
            self._groups.add(group)
        if (group, stream) not in self._streams:
            await self._create("CreateLogStream", {"logGroupName": group, "logStreamName": stream})
            self._streams.add((group, stream))

    async def _create(self, action: str, body: dict[str, str]) -> None:
        try:
            await self.backend.json_call("logs", _LOGS_TARGET + action, body, _JSON_11)
        except BackendError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise

    def _failed(self, count: int, why: str) -> None:
        self.stats.delivery_failures += 1
        self.stats.events_dropped += count
        if not self._outage:
            self._outage = True
            log.warning("function logs could not be sent to CloudWatch Logs (%s); %d events dropped, more are "
                        "counted in /_emulator/metrics (logs.cloudwatch)", why, count)


def _cut(line: str) -> str:
    if len(line) * 4 <= MAX_EVENT_BYTES:  # at most 4 bytes per character in UTF-8
        return line
    data = line.encode("utf-8", "replace")
    if len(data) <= MAX_EVENT_BYTES:
        return line
    return data[:MAX_EVENT_BYTES].decode("utf-8", "ignore")


def _batches(events: list[str]) -> list[list[str]]:
    """Encoded events in batches within PutLogEvents' limits. An event's JSON text is at
    least as long as its message's UTF-8 bytes (non-ASCII is escaped as 6 characters), so
    sizing by it never exceeds the byte limit."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for event in events:
        event_size = len(event) + EVENT_OVERHEAD_BYTES
        if current and (len(current) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        batches.append(current)
    return batches
