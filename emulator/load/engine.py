"""The open-loop sender of one worker process: requests leave when they are due, whatever
the answers do.

Each due request goes out on an idle keep-alive connection, or on a new one while fewer
than `max_in_flight` are open; with all of them waiting for answers it is *dropped* and
counted (k6's dropped iterations), never queued behind the others. A connection carries
one request at a time. Connections are asyncio protocols on uvloop with a hand-written
HTTP/1.1 response reader (status line, headers, Content-Length or chunked body), and
requests are prebuilt bytes (emulator/load/targets.py), as in bench/rawhttp.py: the
generator must cost much less per request than the server it measures.

The loop sleeps until the next request is due, then sends every request that is due by
now; the time from due to sent is recorded (`lag`), so a generator that cannot keep up
says so. A request that has no answer after `timeout_s` is counted as a `Timeout` error
and its connection closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from emulator.load.series import ERROR, OK, THROTTLED, ClientSeries, SecondStats
from emulator.load.targets import RequestBuilder, classify

_HEADER_END = b"\r\n\r\n"
# How often requests are checked for their timeout.
TIMEOUT_SWEEP_S = 0.1
# How many requests one turn of the loop sends at most before it lets answers in.
MAX_SENDS_PER_TURN = 2000


class ResponseReader:
    """Splits a byte stream into HTTP/1.1 responses (bodies by Content-Length or chunked)."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> tuple[int, bytes, bytes, bool] | None:
        """Add bytes; returns (status, head, body, close) once a whole response is in."""
        buffer = self.buffer
        buffer += data
        end = buffer.find(_HEADER_END)
        if end < 0:
            return None
        head = bytes(buffer[:end])
        lowered = head.lower()
        start = end + 4
        index = lowered.find(b"\r\ncontent-length:")
        if index >= 0:
            stop = lowered.find(b"\r\n", index + 17)
            length = int(lowered[index + 17:stop if stop >= 0 else len(lowered)])
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start:start + length])
            del buffer[:start + length]
        elif b"\r\ntransfer-encoding: chunked" in lowered or b"\r\ntransfer-encoding:chunked" in lowered:
            parsed = _chunked(buffer, start)
            if parsed is None:
                return None
            body, consumed = parsed
            del buffer[:consumed]
        else:  # no body (204, 304) or one that ends with the connection: not spoken by our targets
            body = b""
            del buffer[:start]
        close = b"\r\nconnection: close" in lowered
        return int(head[9:12]), head, body, close


def _chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    parts = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", position)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 2
        if len(buffer) < position + size + 2:
            return None
        parts.append(bytes(buffer[position:position + size]))
        position += size + 2


class _Connection(asyncio.Protocol):
    __slots__ = ("engine", "transport", "reader", "due", "sent", "busy", "queued", "closed")

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader()
        self.due = 0.0  # monotonic time the outstanding request was due
        self.sent = 0.0
        self.busy = False
        self.queued: bytes | None = None  # a request waiting for the connection to open
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.queued is not None:
            transport.write(self.queued)  # type: ignore[attr-defined]
            self.queued = None

    def data_received(self, data: bytes) -> None:
        answer = self.reader.feed(data)
        if answer is None:
            return
        status, head, body, close = answer
        if self.busy:
            self.engine.answered(self, status, head, body, close)
        elif not close:  # the late answer of a request that timed out while connecting
            self.engine.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.lost(self)


@dataclass(frozen=True)
class EngineSettings:
    host: str
    port: int
    max_in_flight: int
    timeout_s: float
    kind: str  # the target kind, for classifying answers


class Engine:
    def __init__(self, settings: EngineSettings, builder: RequestBuilder, series: ClientSeries,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.builder = builder
        self.series = series
        self.clock = clock
        self.start = 0.0  # monotonic time of second 0
        self.idle: list[_Connection] = []
        self.open = 0  # connections open or opening
        self.busy: set[_Connection] = set()
        self._drained = asyncio.Event()
        self._connects: set[asyncio.Task] = set()
        # The SecondStats of the second last sent in and last answered in (a dict lookup saved per request).
        self._sent_second = self._answer_second = -1
        self._sent_stats: SecondStats | None = None
        self._answer_stats: SecondStats | None = None
        self._sent_map: dict[int, SecondStats] | None = None
        self._answer_map: dict[int, SecondStats] | None = None

    # -- the run ----------------------------------------------------------------------------
    async def preconnect(self, count: int) -> None:
        """Open `count` connections before the run, so its first second does not pay for them."""
        loop = asyncio.get_running_loop()
        count = min(count, self.settings.max_in_flight - self.open)
        connections = [_Connection(self) for _ in range(count)]
        results = await asyncio.gather(*(loop.create_connection(lambda c=c: c, self.settings.host, self.settings.port)
                                         for c in connections), return_exceptions=True)
        for connection, result in zip(connections, results):
            if not isinstance(result, BaseException):
                self.open += 1
                self.idle.append(connection)

    async def run(self, arrivals: Iterator[tuple[int, float]], start: float) -> None:
        """Send request `index` at `start + t` for each (index, t), then wait for the answers."""
        self.start = start
        clock = self.clock
        sweeper = asyncio.ensure_future(self._sweep_timeouts())
        try:
            pending = next(arrivals, None)
            while pending is not None:
                due = start + pending[1]
                now = clock()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = clock()
                sends = 0
                while pending is not None and start + pending[1] <= now and sends < MAX_SENDS_PER_TURN:
                    self.send(pending[0], start + pending[1], now)
                    sends += 1
                    pending = next(arrivals, None)
                if sends >= MAX_SENDS_PER_TURN:
                    await asyncio.sleep(0)  # let answers in before the next batch
            await self._wait_for_answers()
        finally:
            sweeper.cancel()
            self.close()

    def send(self, index: int, due: float, now: float) -> None:
        second = int(due - self.start)
        stats = self._sent_stats
        seconds = self.series.seconds  # a new dict after each drain: the cached stats were handed over
        if stats is None or second != self._sent_second or seconds is not self._sent_map:
            stats = self._sent_stats = self.series.at(second)
            self._sent_second, self._sent_map = second, seconds
        stats.offered += 1
        idle = self.idle
        if idle:
            connection = idle.pop()
        elif self.open < self.settings.max_in_flight:
            connection = self._connect()
        else:
            stats.dropped += 1
            return
        stats.sent += 1
        stats.lag.add((now - due) * 1000.0)
        request = self.builder.static or self.builder.build(index)
        connection.busy = True
        connection.due = due
        connection.sent = now
        self.busy.add(connection)
        if connection.transport is None:
            connection.queued = request
        else:
            connection.transport.write(request)

    def _connect(self) -> _Connection:
        connection = _Connection(self)
        self.open += 1
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: connection, self.settings.host, self.settings.port))
        self._connects.add(task)
        task.add_done_callback(lambda t, c=connection: self._connected(t, c))
        return connection

    def _connected(self, task: asyncio.Task, connection: _Connection) -> None:
        self._connects.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            connection.closed = True
            self._fail(connection, type(error).__name__)
            self.open -= 1

    # -- answers ----------------------------------------------------------------------------
    def answered(self, connection: _Connection, status: int, head: bytes, body: bytes, close: bool) -> None:
        now = self.clock()
        outcome, detail = classify(self.settings.kind, status, head, body)
        self._record(connection, now, outcome, detail)
        if close:
            connection.transport.close()  # type: ignore[union-attr]
        else:
            self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.busy:
            self._fail(connection, "ConnectionClosed")

    def _fail(self, connection: _Connection, detail: str) -> None:
        if connection.busy:
            self._record(connection, self.clock(), ERROR, detail)

    def _record(self, connection: _Connection, now: float, outcome: str, detail: str) -> None:
        connection.busy = False
        self.busy.discard(connection)
        second = int(now - self.start)
        stats = self._answer_stats
        seconds = self.series.seconds
        if stats is None or second != self._answer_second or seconds is not self._answer_map:
            stats = self._answer_stats = self.series.at(second)
            self._answer_second, self._answer_map = second, seconds
        stats.responses += 1
        stats.latency.add((now - connection.due) * 1000.0)
        if outcome is OK:
            stats.ok += 1
        elif outcome is THROTTLED:
            stats.throttles[detail] = stats.throttles.get(detail, 0) + 1
        else:
            stats.errors[detail] = stats.errors.get(detail, 0) + 1
        if not self.busy:
            self._drained.set()

    async def _sweep_timeouts(self) -> None:
        while True:
            await asyncio.sleep(TIMEOUT_SWEEP_S)
            limit = self.clock() - self.settings.timeout_s
            for connection in [c for c in self.busy if c.sent <= limit]:
                self._record(connection, self.clock(), ERROR, "Timeout")
                if connection.transport is not None:
                    connection.transport.abort()

    async def _wait_for_answers(self) -> None:
        deadline = self.clock() + self.settings.timeout_s + TIMEOUT_SWEEP_S * 2
        while self.busy and self.clock() < deadline:
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), max(0.0, deadline - self.clock()))
            except asyncio.TimeoutError:
                break

    def close(self) -> None:
        for task in list(self._connects):
            task.cancel()
        for connection in list(self.busy) + self.idle:
            if connection.transport is not None:
                connection.transport.close()
        self.idle.clear()
