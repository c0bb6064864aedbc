"""The fast HTTP/1.1 path for the one hot route, POST /2015-03-31/functions/{name}/invocations.

Profiles put aiohttp (request and response objects, handler task) at about half of the
control plane's ~100 us per warm invoke, which made it the bottleneck at ~10,000 invokes/s
(docs/benchmarks.md). So a connection starts here. Requests are parsed by httptools (llhttp,
Node.js's parser, as uvicorn uses it), which rejects what RFC 9112 forbids. The first
request that is not a plain Content-Length POST to the invoke route hands the connection,
with the raw bytes of that request and what follows, to aiohttp's own protocol for good
(edge.QuietProtocol). So every other API, and every unusual request (chunked bodies,
`Expect`, HTTP/1.0, upgrades, huge heads), keeps aiohttp's handling.

The hand-off needs to know where each request starts in the byte stream; httptools reports
no offsets, so the head's end is found as the first blank line (llhttp accepts no other) and
the body's end from Content-Length. A request that begins in the same read as the end of the
previous one (pipelining) stops the parser, which is then replaced.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, unquote

import httptools
from aiohttp import web

from emulator.api import edge
from emulator.api.edge import MalformedRequest, QuietProtocol, RequestTimeout, ShuttingDown, bad_request_message, http_status_line
from emulator.errors import AwsError, ServiceError

log = logging.getLogger("emulator.api.fast_invoke")

InvokeParts = Callable[[str, "str | None", dict[str, str], bytes], Awaitable[tuple[int, dict[str, str], bytes]]]

_INVOKE_PREFIX = b"POST /2015-03-31/functions/"
_INVOKE_TARGET = re.compile(rb"/2015-03-31/functions/([^/?]+)/invocations(?:\?(.*))?")
# The headers this path reads: framing, and what LambdaApi.invoke_parts looks at.
_WANTED_HEADERS = frozenset({
    b"content-length", b"transfer-encoding", b"expect", b"connection",
    b"x-amz-invocation-type", b"x-amz-log-type", b"x-amz-client-context", b"x-amzn-trace-id", b"x-amz-tenant-id",
})
_SHUTDOWN_MESSAGE = "The emulator shut down before this request was answered (see --shutdown-timeout)."


class _HandOff(Exception):
    """Raised from a parser callback: this request is for aiohttp."""


class _NextMessage(Exception):
    """Raised from a parser callback: a pipelined request begins; stop at the one complete."""


class FastInvokeServer(web.Server):
    """aiohttp's low-level server, whose connections start on the fast invoke path."""

    def __init__(self, handler: Any, *, invoke: InvokeParts, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", edge.KEEP_ALIVE_TIMEOUT_S)
        # After an answer that left a body unread (a 408, a 413), aiohttp reads and drops the
        # rest for at most this long, so the client sees the answer rather than a reset.
        kwargs.setdefault("lingering_time", edge.BODY_TIMEOUT_S)
        super().__init__(handler, **kwargs)
        self._invoke = invoke
        self._router = handler
        self._fast: set[FastInvokeProtocol] = set()
        self.shutting_down = False

    def __call__(self) -> asyncio.Protocol:  # the protocol factory given to create_server
        return FastInvokeProtocol(self)

    def aiohttp_protocol(self) -> asyncio.Protocol:
        return QuietProtocol(self, loop=self._loop, **self._kwargs)

    # -- shutdown (emulator/server.py): stop taking requests, drain, answer the rest ---------
    def begin_shutdown(self) -> None:
        """Idle connections close now; a request under way is answered, then its connection
        closes; a request arriving from now on is answered ShuttingDown."""
        self.shutting_down = True
        self._router.shutting_down = True
        for protocol in list(self._fast):
            protocol.begin_shutdown()
        for connection in list(self.connections):
            connection.close()  # aiohttp's own: closes once its handler is done

    @property
    def requests_in_flight(self) -> int:
        return sum(1 for protocol in self._fast if protocol.busy is not None) + self._router.requests_in_flight

    def answer_remaining(self) -> None:
        """At the shutdown deadline: every request not answered yet gets ServiceException."""
        for protocol in list(self._fast):
            protocol.answer_now(ShuttingDown(_SHUTDOWN_MESSAGE))
        self._router.answer_remaining(ShuttingDown(_SHUTDOWN_MESSAGE))

    async def shutdown(self, timeout: float | None = None) -> None:
        for protocol in list(self._fast):
            protocol.close()
        await super().shutdown(timeout)


class FastInvokeProtocol(asyncio.Protocol):
    def __init__(self, server: FastInvokeServer) -> None:
        self.server = server
        self.loop = server._loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.buffer = bytearray()  # raw bytes from the start of the request being read
        self.fed = 0  # how many of them the parser has seen
        # The request being read (parser callbacks fill these in).
        self.url = b""
        self.target: re.Match[bytes] | None = None
        self.headers: dict[str, str] = {}
        self.head_end = 0  # once the head is complete: where the body starts in the buffer
        self.message_end = 0
        self.keep_alive = True
        self.complete = False
        # The request being answered, and the connection's state.
        self.busy: asyncio.Task | None = None
        self.closing = False
        self.read_paused = False
        self.write_paused = False
        self.timer: asyncio.TimerHandle | None = None
        self.timer_kind = ""
        self.deadline = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._fast.add(self)
        if self.server.shutting_down:
            self.closing = True
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        # An invocation under way runs to its end (as with aiohttp, which does not cancel
        # handlers when a client goes away): cancelling it would strand its environment.
        self.server._fast.discard(self)
        self._cancel_timer()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy is None:
            self._process(data)
        elif not self.read_paused and len(self.buffer) > edge.READ_HIGH_WATER:
            self._pause_reading()  # flow control: a client does not fill our memory while we work

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        # The client does not read its responses: read no more requests until it does.
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.busy is None:
            self._resume_reading()
            self._process()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- httptools callbacks -----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            raise _NextMessage
        self.url = b""
        self.headers = {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key in _WANTED_HEADERS:
            self.headers[key.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        parser, headers = self.parser, self.headers
        if (
            parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or "transfer-encoding" in headers
            or "expect" in headers
            or parser.should_upgrade()
            or (target := _INVOKE_TARGET.fullmatch(self.url)) is None
        ):
            raise _HandOff
        self.target = target
        length = int(headers.get("content-length", "0"))  # llhttp has checked it: digits, once
        if length > edge.MAX_BODY_BYTES:
            raise _HandOff  # aiohttp answers with the 413
        self.head_end = self.buffer.find(b"\r\n\r\n") + 4
        self.message_end = self.head_end + length
        self.keep_alive = headers.get("connection", "").lower() != "close"

    def on_message_complete(self) -> None:
        self.complete = True

    # -- reading requests -----------------------------------------------------------------------------
    def _process(self, fresh: bytes | None = None) -> None:
        """Parse what is buffered (`fresh`: the bytes just appended to it); start the request
        once it is complete."""
        if self.busy is not None or self.transport is None or self.write_paused:
            return
        buffer = self.buffer
        if self.fed == 0:
            if not buffer:
                self._set_timer("close" if self.closing else "idle")
                return
            if not buffer.startswith(_INVOKE_PREFIX):
                if len(buffer) >= len(_INVOKE_PREFIX) or not _INVOKE_PREFIX.startswith(buffer):
                    self._hand_off()
                else:
                    self._set_timer("head")  # too few bytes yet to tell where it goes
                return
        if self.fed < len(buffer):
            unfed = len(buffer) - self.fed
            data = fresh if fresh is not None and len(fresh) == unfed else bytes(buffer[self.fed :])
            self.fed = len(buffer)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                if isinstance(exc.__context__, _HandOff):
                    self._hand_off()
                    return
                if not isinstance(exc.__context__, _NextMessage):
                    raise
                self.parser = httptools.HttpRequestParser(self)  # it has seen the next request's first bytes
                self.fed = self.message_end
            except httptools.HttpParserUpgrade:
                self._hand_off()
                return
            except httptools.HttpParserError as exc:
                self._reject(MalformedRequest(bad_request_message(exc)))
                return
        if not self.complete:
            if self.head_end == 0 and len(buffer) > edge.MAX_HEADER_BYTES:
                self._hand_off()  # aiohttp's line and field limits answer it
            else:
                self._set_timer("head" if self.head_end == 0 else "body")
            return
        self._start_request()

    def _start_request(self) -> None:
        buffer = self.buffer
        body = bytes(buffer[self.head_end : self.message_end])
        # Bytes the parser saw past the request are either the next request's (then it was
        # replaced and fed == message_end) or blank lines it skipped: drop them with it.
        del buffer[: self.fed]
        self.fed = self.head_end = self.message_end = 0
        self.complete = False
        self._set_timer("")
        target = self.target
        name = unquote(target.group(1).decode("latin-1"))
        qualifier = None
        if query := target.group(2):
            values = parse_qs(query.decode("latin-1")).get("Qualifier")
            qualifier = values[0] if values else None
        if self.closing:
            self.keep_alive = False
        self.busy = self.loop.create_task(self._respond(name, qualifier, self.headers, body))

    async def _respond(self, name: str, qualifier: str | None, headers: dict[str, str], body: bytes) -> None:
        try:
            if self.server.shutting_down:
                raise ShuttingDown(_SHUTDOWN_MESSAGE)
            status, out_headers, payload = await self.server._invoke(name, qualifier, headers, body)
        except AwsError as error:
            status, out_headers, payload = error.to_response_parts()
        except Exception:
            log.exception("internal error serving an invoke of %s", name)
            status, out_headers, payload = ServiceError("The emulator failed to process the request; see its log.").to_response_parts()
        self.busy = None
        if self.transport is None or self.transport.is_closing():
            return  # the client left, or the shutdown deadline answered for us
        keep_alive = self.keep_alive and not self.closing
        self._write(status, out_headers, payload, keep_alive)
        if keep_alive:
            self._resume_reading()
            self._process()

    # -- writing ----------------------------------------------------------------------------------------
    def _write(self, status: int, headers: dict[str, str], payload: bytes, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        lines = [http_status_line(status)]
        if status >= 200 and status not in (204, 304):  # RFC 9110 §8.6: no Content-Length on these
            lines.append(f"Content-Length: {len(payload)}")
        lines.extend(f"{key}: {value}" for key, value in headers.items())
        if not keep_alive:
            lines.append("Connection: close")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        if not keep_alive:
            transport.close()
            self.transport = None

    def _reject(self, error: AwsError) -> None:
        """Answer `error` and close: a malformed or timed-out request, or the shutdown deadline."""
        if self.transport is None:
            return
        if error.status < 500:
            peer = self.transport.get_extra_info("peername")
            log.info("rejected a request from %s: %s", peer[0] if peer else "?", error.message)
        self._cancel_timer()
        self._resume_reading()
        status, headers, payload = error.to_response_parts()
        self._write(status, headers, payload, keep_alive=False)

    # -- flow control and timers ------------------------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None and not self.write_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def _set_timer(self, kind: str) -> None:
        """The connection's deadline: idle (keep-alive), head, body, or none while answering.

        One timer handle, rescheduled lazily when it fires early (as aiohttp does for its
        keep-alive), so a request costs no timer creation or cancellation.
        """
        if kind == self.timer_kind:
            return
        self.timer_kind = kind
        if kind == "close":
            self.close()
        elif kind:
            delay = {"idle": edge.KEEP_ALIVE_TIMEOUT_S, "head": edge.HEADER_TIMEOUT_S, "body": edge.BODY_TIMEOUT_S}[kind]
            self.deadline = self.loop.time() + delay
            if self.timer is not None and self.timer.when() > self.deadline:
                self.timer.cancel()
                self.timer = None
            if self.timer is None:
                self.timer = self.loop.call_at(self.deadline, self._timed_out)

    def _cancel_timer(self) -> None:
        self.timer_kind = ""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        kind = self.timer_kind
        if not kind or self.transport is None:
            return  # answering a request: the next state schedules its own deadline
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._timed_out)
            return
        self.timer_kind = ""
        if kind == "idle":
            self.close()
        else:
            limit = edge.HEADER_TIMEOUT_S if kind == "head" else edge.BODY_TIMEOUT_S
            self._reject(RequestTimeout(f"The request {kind} did not arrive within {limit:g} s."))

    # -- shutdown ------------------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        self.closing = True
        if self.busy is None and not self.buffer:
            self.close()

    def answer_now(self, error: AwsError) -> None:
        if self.busy is not None or self.buffer:
            self._reject(error)
        else:
            self.close()

    # -- hand-off ----------------------------------------------------------------------------------------
    def _hand_off(self) -> None:
        """Give the connection, and what was read of it, to aiohttp's protocol for good."""
        transport = self.transport
        if transport is None:
            return
        self._cancel_timer()
        self._resume_reading()
        self.server._fast.discard(self)
        protocol = self.server.aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        pending, self.buffer = bytes(self.buffer), bytearray()
        self.transport = None
        if pending:
            protocol.data_received(pending)
