"""A lean HTTP/1.1 client for load generation: prebuilt request bytes, one recv loop.

aiohttp and boto3 spend more CPU per request than the server under test (docs/measurements.md:
an aiohttp load generator saturates at ~17-19k req/s), so the latency figures use this
instead. It speaks only what the emulator and the echo baseline answer: a status line,
headers and a Content-Length body (aiohttp's `web.Response` never chunks).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from dataclasses import dataclass

INVOKE_PATH = "/2015-03-31/functions/{name}/invocations"
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class ProtocolError(RuntimeError):
    """The server answered something this client does not parse."""


@dataclass(slots=True)
class Response:
    status: int
    head: bytes  # status line and headers, without the blank line
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == wanted:
                return value.strip().decode("latin-1")
        return None


def build_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    if body and not any(key.lower() == "content-type" for key in (headers or {})):
        lines.append("Content-Type: application/json")
    lines.extend(f"{key}: {value}" for key, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def invoke_request(function: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    return build_request("POST", INVOKE_PATH.format(name=function), body, headers)


def _content_length(head: bytes) -> int:
    start = head.lower().find(_CONTENT_LENGTH)
    if start < 0:
        raise ProtocolError(f"no Content-Length in response: {head[:200]!r}")
    start += len(_CONTENT_LENGTH)
    end = head.find(b"\r\n", start)
    return int(head[start : end if end >= 0 else len(head)])


class KeepAliveClient:
    """One persistent connection; `send` writes a prebuilt request and reads one response."""

    def __init__(self, host: str, port: int, timeout_s: float = 60.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def send(self, request: bytes) -> Response:
        sock = self._sock
        sock.sendall(request)
        buffer = self._buffer
        end = buffer.find(_HEADER_END)
        while end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
            end = buffer.find(_HEADER_END)
        head = bytes(buffer[:end])
        body_start = end + 4
        body_end = body_start + _content_length(head)
        while len(buffer) < body_end:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            buffer += chunk
        body = bytes(buffer[body_start:body_end])
        del buffer[:body_end]
        return Response(int(head[9:12]), head, body)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "KeepAliveClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sequential_latencies(host: str, port: int, request: bytes, warmup: int, samples: int) -> list[float]:
    """Latencies in ms of `samples` sequential sends of `request` on one keep-alive connection,
    after `warmup` unmeasured ones; -1.0 for an answer other than 200."""
    times = [0.0] * samples
    clock = time.perf_counter_ns
    with KeepAliveClient(host, port) as client:
        for _ in range(warmup):
            client.send(request)
        gc.collect()
        gc.disable()  # a collection pause in the client is not server latency
        try:
            for i in range(samples):
                start = clock()
                response = client.send(request)
                times[i] = (clock() - start) / 1e6
                if response.status != 200:
                    times[i] = -1.0
        finally:
            gc.enable()
    return times


async def one_shot(host: str, port: int, request: bytes) -> Response:
    """Open a connection, send one request, read one response, close (asyncio streams)."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(request)
        head = (await reader.readuntil(_HEADER_END))[:-4]
        body = await reader.readexactly(_content_length(head))
        return Response(int(head[9:12]), head, body)
    finally:
        writer.close()


@dataclass(slots=True)
class Outcome:
    status: int  # 0 when the request failed (error holds why)
    latency_s: float
    error: str = ""
    body: bytes = b""  # kept only for non-200 answers (a 429's Reason, an error's type)


async def concurrent_requests(host: str, port: int, request: bytes, count: int, timeout_s: float) -> list[Outcome]:
    """`count` requests at once, each on its own connection; never raises."""
    loop = asyncio.get_running_loop()

    async def one() -> Outcome:
        started = loop.time()
        try:
            response = await asyncio.wait_for(one_shot(host, port, request), timeout_s)
            body = b"" if response.status == 200 else response.body[:512]
            return Outcome(response.status, loop.time() - started, body=body)
        except Exception as exc:  # counted as an error, never retried
            return Outcome(0, loop.time() - started, f"{type(exc).__name__}: {exc}")

    return await asyncio.gather(*(one() for _ in range(count)))
