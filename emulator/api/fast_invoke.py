"""A lean HTTP/1.1 path for the one hot route, POST /2015-03-31/functions/{name}/invocations.

Profiles put aiohttp (parser, request and response objects, handler task) at about half of
the control plane's ~100 us per warm invoke, which made it the bottleneck at ~10,000
invokes/s (docs/benchmarks.md). A connection starts here; the first request that is not
a plain Content-Length POST to the invoke route hands the connection, with the bytes
already read, to aiohttp's own protocol for good. So every other API, and every unusual
request (chunked bodies, `Expect`, HTTP/1.0, huge headers), keeps aiohttp's handling.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, unquote

from aiohttp import web

from emulator.errors import AwsError, ServiceError

log = logging.getLogger("emulator.api.fast_invoke")

InvokeParts = Callable[[str, "str | None", dict[str, str], bytes], Awaitable[tuple[int, dict[str, str], bytes]]]

_INVOKE_TARGET = re.compile(rb"^/2015-03-31/functions/([^/?]+)/invocations(?:\?(.*))?$")
MAX_HEADER_BYTES = 16 * 1024
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
            413: "Request Entity Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error"}


class FastInvokeServer(web.Server):
    """aiohttp's low-level server, whose connections start on the fast invoke path."""

    def __init__(self, handler: Any, *, invoke: InvokeParts, max_body: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._invoke = invoke
        self._max_body = max_body
        self._fast: set[FastInvokeProtocol] = set()

    def __call__(self) -> asyncio.Protocol:  # the protocol factory given to create_server
        return FastInvokeProtocol(self)

    def aiohttp_protocol(self) -> asyncio.Protocol:
        return super().__call__()

    async def shutdown(self, timeout: float | None = None) -> None:
        for protocol in list(self._fast):
            protocol.close()
        await super().shutdown(timeout)


class FastInvokeProtocol(asyncio.Protocol):
    def __init__(self, server: FastInvokeServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy: asyncio.Task | None = None
        self.need = 0  # bytes the request being received needs in all (head and body)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._fast.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # An invocation under way runs to its end (as with aiohttp, which does not cancel
        # handlers when a client goes away): cancelling it would strand its environment.
        self.server._fast.discard(self)
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # While a large body arrives, wait for all of it before parsing the head again.
        if self.busy is None and len(self.buffer) >= self.need:
            self._next_request()

    def _next_request(self) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEADER_BYTES:
                self._hand_off()
            return
        head = bytes(buffer[:end]).split(b"\r\n")
        request_line = head[0].split(b" ")
        if len(request_line) != 3 or request_line[0] != b"POST" or request_line[2] != b"HTTP/1.1":
            self._hand_off()
            return
        target = _INVOKE_TARGET.match(request_line[1])
        if target is None:
            self._hand_off()
            return
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._hand_off()
                return
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length_text = headers.get("content-length")
        if length_text is None or not length_text.isdigit() or "transfer-encoding" in headers or "expect" in headers:
            self._hand_off()
            return
        length = int(length_text)
        if length > self.server._max_body:
            self._hand_off()  # aiohttp answers with the 413
            return
        body_start = end + 4
        if len(buffer) < body_start + length:
            self.need = body_start + length
            return  # the rest of the body has not arrived yet
        self.need = 0
        body = bytes(buffer[body_start : body_start + length])
        del buffer[: body_start + length]
        name = unquote(target.group(1).decode("latin-1"))
        query = target.group(2)
        qualifier = None
        if query:
            values = parse_qs(query.decode("latin-1")).get("Qualifier")
            qualifier = values[0] if values else None
        keep_alive = headers.get("connection", "").lower() != "close"
        self.busy = asyncio.ensure_future(self._respond(name, qualifier, headers, body, keep_alive))

    async def _respond(self, name: str, qualifier: str | None, headers: dict[str, str], body: bytes, keep_alive: bool) -> None:
        try:
            status, out_headers, payload = await self.server._invoke(name, qualifier, headers, body)
        except AwsError as error:
            status, out_headers, payload = error.to_response_parts()
        except Exception:
            log.exception("internal error serving an invoke of %s", name)
            status, out_headers, payload = ServiceError("The emulator failed to process the request; see its log.").to_response_parts()
        transport = self.transport
        self.busy = None
        if transport is None or transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Length: {len(payload)}"]
        lines.extend(f"{key}: {value}" for key, value in out_headers.items())
        if not keep_alive:
            lines.append("Connection: close")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        if not keep_alive:
            transport.close()
        elif self.buffer:
            self._next_request()

    def _hand_off(self) -> None:
        """Give the connection, and what was read of it, to aiohttp's protocol for good."""
        transport = self.transport
        if transport is None:
            return
        self.server._fast.discard(self)
        protocol = self.server.aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        pending, self.buffer = bytes(self.buffer), bytearray()
        self.transport = None
        if pending:
            protocol.data_received(pending)
