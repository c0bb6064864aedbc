"""The load generator's engine (emulator/load/engine.py) against a real local server whose
answers the test holds and releases: open loop, dropping at max in flight, timeouts,
answers read and classified."""

from __future__ import annotations

import asyncio
import json

import pytest

from emulator.load.engine import Engine, EngineSettings, ResponseReader
from emulator.load.payloads import PayloadSource, PayloadSpec
from emulator.load.series import ClientSeries
from emulator.load.targets import RequestBuilder, target_spec


def test_reader_splits_bodies_by_length_and_chunks() -> None:
    reader = ResponseReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe") is None
    status, _, body, close = reader.feed(b"llo")  # type: ignore[misc]
    assert (status, body, close) == (200, b"hello", False)
    chunked = b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert reader.feed(chunked[:40]) is None
    status, _, body, close = reader.feed(chunked[40:])  # type: ignore[misc]
    assert (status, body, close) == (429, b"abcde", True)
    assert reader.buffer == bytearray()


class HeldServer:
    """Answers each request only when the test releases it: counts are exact, never timed."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.arrived = 0
        self.release = asyncio.Event()
        self.arrivals = asyncio.Condition()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                async with self.arrivals:
                    self.arrived += 1
                    self.arrivals.notify_all()
                await self.release.wait()
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int) -> None:
        async with self.arrivals:
            await asyncio.wait_for(self.arrivals.wait_for(lambda: self.arrived >= count), 10)


def engine_for(port: int, max_in_flight: int, timeout_s: float = 10.0, kind: str = "url") -> tuple[Engine, ClientSeries]:
    url = f"http://127.0.0.1:{port}/x"
    spec = target_spec({"url": url} if kind == "url" else {"function": "f"}, url, "us-east-1")
    builder = RequestBuilder(spec, PayloadSource(PayloadSpec("fixed", b"{}"), 0, 1))
    series = ClientSeries()
    return Engine(EngineSettings("127.0.0.1", port, max_in_flight, timeout_s, spec.kind), builder, series), series


async def _open_loop_drops_what_finds_every_connection_busy() -> ClientSeries:
    server = HeldServer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    engine, series = engine_for(port, max_in_flight=3)
    loop = asyncio.get_running_loop()
    run = asyncio.ensure_future(engine.run(iter([(k, 0.0) for k in range(10)]), loop.time()))
    engine.clock = loop.time
    await server.wait_for(3)  # three are held at the server; the other seven found no connection
    server.release.set()
    await asyncio.wait_for(run, 10)
    listener.close()
    return series


def test_open_loop_drops_what_finds_every_connection_busy() -> None:
    series = asyncio.run(_open_loop_drops_what_finds_every_connection_busy())
    totals = series.totals()
    assert (totals.offered, totals.sent, totals.dropped, totals.responses, totals.ok) == (10, 3, 7, 3, 3)
    assert totals.latency.count == 3


async def _throttles_and_errors_are_classified(answer: bytes) -> ClientSeries:
    server = HeldServer(answer)
    server.release.set()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    engine, series = engine_for(listener.sockets[0].getsockname()[1], max_in_flight=3, kind="function")
    loop = asyncio.get_running_loop()
    engine.clock = loop.time
    await asyncio.wait_for(engine.run(iter([(0, 0.0), (1, 0.001), (2, 0.002)]), loop.time()), 10)
    listener.close()
    return series


@pytest.mark.parametrize(("answer", "throttles", "errors"), [
    (b"HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: TooManyRequestsException\r\nContent-Length: %d\r\n\r\n%s"
     % (len(b'{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}'),
        b'{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}'),
     {"ReservedFunctionConcurrentInvocationLimitExceeded": 3}, {}),
    (b"HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: %d\r\n\r\n%s"
     % (len(json.dumps({"errorType": "Sandbox.Timedout"})), json.dumps({"errorType": "Sandbox.Timedout"}).encode()),
     {}, {"Function error: Sandbox.Timedout": 3}),
    (b"HTTP/1.1 404 Not Found\r\nx-amzn-ErrorType: ResourceNotFoundException\r\nContent-Length: 2\r\n\r\n{}",
     {}, {"ResourceNotFoundException": 3}),
])
def test_answers_are_classified(answer: bytes, throttles: dict, errors: dict) -> None:
    totals = asyncio.run(_throttles_and_errors_are_classified(answer)).totals()
    assert (totals.sent, totals.responses, totals.throttles, totals.errors) == (3, 3, throttles, errors)


async def _unanswered_requests_time_out() -> ClientSeries:
    server = HeldServer(b"")  # never released
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    engine, series = engine_for(listener.sockets[0].getsockname()[1], max_in_flight=5, timeout_s=0.3)
    loop = asyncio.get_running_loop()
    engine.clock = loop.time
    await asyncio.wait_for(engine.run(iter([(0, 0.0), (1, 0.0)]), loop.time()), 10)
    listener.close()
    return series


def test_unanswered_requests_time_out() -> None:
    totals = asyncio.run(_unanswered_requests_time_out()).totals()
    assert (totals.sent, totals.responses, totals.errors) == (2, 2, {"Timeout": 2})
