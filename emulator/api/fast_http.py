"""The fast HTTP/1.1 path: a connection starts on a raw asyncio protocol parsed by httptools,
and hands over to aiohttp's protocol for anything unusual. Two users: the Lambda invoke route
(fast_invoke.py) and the API Gateway front door (emulator/apigateway/http.py).

Profiles put aiohttp (request and response objects, handler task) at about half of the
control plane's ~100 us per warm invoke (docs/benchmarks.md), and at a similar share of a
request through the gateway. So a connection starts here. Requests are parsed by httptools
(llhttp, Node.js's parser, as uvicorn uses it), which rejects what RFC 9112 forbids. A
subclass of FastHttpServer says which requests it serves (`prefixes`, `accept`) and how it
answers them (`respond`, `encode`). The first request it does not take hands the connection,
with the raw bytes of that request and what follows, to aiohttp's protocol for good. So every
unusual request (chunked bodies, `Expect`, HTTP/1.0, upgrades, huge heads) keeps aiohttp's
handling.

The hand-off needs to know where each request starts in the byte stream; httptools reports
no offsets, so the head's end is found as the first blank line (llhttp accepts no other) and
the body's end from Content-Length. A request that begins in the same read as the end of the
previous one (pipelining) stops the parser, which is then replaced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable

import httptools
from aiohttp import web

from emulator.api import edge
from emulator.api.edge import MalformedRequest, RequestTimeout
from emulator.errors import AwsError

log = logging.getLogger("emulator.api.fast_http")

# What a subclass answers: status, headers (name, value pairs), body, and whether the
# connection closes after it.
Reply = tuple[int, Iterable[tuple[str, str]], bytes, bool]
# The headers every server needs for framing (their values, lower-cased names, as str).
FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"expect", b"connection"})


class _HandOff(Exception):
    """Raised from a parser callback: this request is for aiohttp."""


class _NextMessage(Exception):
    """Raised from a parser callback: a pipelined request begins; stop at the one complete."""


class FastHttpServer(web.Server):
    """aiohttp's low-level server, whose connections start on a fast path. Subclasses set
    what it takes and implement the hooks below."""

    # A request starting with none of these goes to aiohttp at once.
    prefixes: tuple[bytes, ...] = ()
    # The headers `accept` and `respond` get in `headers` (lower-cased names, str values);
    # with `all_headers`, every header also arrives as received in `raw_headers`.
    watched_headers: frozenset[bytes] = FRAMING_HEADERS
    all_headers = False
    max_head_bytes = edge.MAX_HEADER_BYTES  # a larger head goes to aiohttp
    max_body_bytes = edge.MAX_BODY_BYTES  # a larger Content-Length goes to aiohttp
    general_protocol: type = edge.QuietProtocol  # aiohttp's protocol, for what is handed off
    cancel_at_deadline = False  # whether the shutdown deadline cancels a request's task

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        """`handler`: aiohttp's request handler; `self.general` (by default the handler
        itself) answers for it at shutdown (`shutting_down`, `requests_in_flight`)."""
        kwargs.setdefault("keepalive_timeout", edge.KEEP_ALIVE_TIMEOUT_S)
        # After an answer that left a body unread (a 408, a 413), aiohttp reads and drops the
        # rest for at most this long, so the client sees the answer rather than a reset.
        kwargs.setdefault("lingering_time", edge.BODY_TIMEOUT_S)
        super().__init__(handler, **kwargs)
        self.general = handler
        self.fast: set[FastHttpProtocol] = set()
        self.shutting_down = False

    def __call__(self) -> asyncio.Protocol:  # the protocol factory given to create_server
        return FastHttpProtocol(self)

    def aiohttp_protocol(self) -> asyncio.Protocol:
        return self.general_protocol(self, loop=self._loop, **self._kwargs)  # type: ignore[no-any-return]

    # -- what a subclass implements --------------------------------------------------------------
    def accept(self, protocol: "FastHttpProtocol", method: bytes, url: bytes) -> Any:
        """What `respond` needs to know of the target, or None: the request goes to aiohttp."""
        raise NotImplementedError

    async def respond(self, protocol: "FastHttpProtocol", target: Any, body: bytes) -> Reply:
        raise NotImplementedError

    def encode(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
        """The whole response as bytes."""
        raise NotImplementedError

    def refusal(self, error: AwsError) -> Reply | None:
        """The answer to a malformed or timed-out request, or None to hand it to aiohttp."""
        status, headers, payload = error.to_response_parts()
        return status, headers.items(), payload, True

    def failure_reply(self) -> Reply:
        """The answer when `respond` failed (its traceback is logged)."""
        raise NotImplementedError

    def shutdown_reply(self) -> Reply:
        """The answer to a request that arrives during shutdown or is still open at its deadline."""
        raise NotImplementedError

    # -- shutdown (emulator/server.py): stop taking requests, drain, answer the rest ---------
    def begin_shutdown(self) -> None:
        """Idle connections close now; a request under way is answered, then its connection
        closes; a request arriving from now on is answered `shutdown_reply`."""
        self.shutting_down = True
        self.general.shutting_down = True
        for protocol in list(self.fast):
            protocol.begin_shutdown()
        for connection in list(self.connections):
            connection.close()  # aiohttp's own: closes once its handler is done

    @property
    def requests_in_flight(self) -> int:
        return sum(1 for protocol in self.fast if protocol.busy is not None) + self.general.requests_in_flight

    def answer_remaining(self) -> None:
        """At the shutdown deadline: every request not answered yet gets `shutdown_reply`."""
        for protocol in list(self.fast):
            protocol.answer_now()

    async def shutdown(self, timeout: float | None = None) -> None:
        for protocol in list(self.fast):
            protocol.close()
        await super().shutdown(timeout)


class FastHttpProtocol(asyncio.Protocol):
    def __init__(self, server: FastHttpServer) -> None:
        self.server = server
        self.loop = server._loop
        self.transport: asyncio.Transport | None = None
        self.peername: Any = None
        self.sockname: Any = None
        if server.all_headers:
            self.on_header = self._on_any_header  # httptools looks its callbacks up once, below
        self.parser = httptools.HttpRequestParser(self)
        self.buffer = bytearray()  # raw bytes from the start of the request being read
        self.fed = 0  # how many of them the parser has seen
        # The request being read (parser callbacks fill these in).
        self.url = b""
        self.target: Any = None
        self.headers: dict[str, str] = {}  # the watched ones
        self.raw_headers: list[tuple[bytes, bytes]] = []  # all of them, with all_headers
        self.repeated = False  # a watched header came more than once
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
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.server.fast.add(self)
        if self.server.shutting_down:
            self.closing = True
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        # A request under way runs to its end (as with aiohttp, which does not cancel
        # handlers when a client goes away): cancelling an invocation would strand its
        # environment.
        self.server.fast.discard(self)
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
        self.raw_headers = []
        self.repeated = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key in self.server.watched_headers:
            self.headers[key.decode("latin-1")] = value.decode("latin-1")

    def _on_any_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        key = name.lower()
        if key in self.server.watched_headers:
            text = key.decode("latin-1")
            if text in self.headers:
                self.repeated = True
            self.headers[text] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        parser, headers, server = self.parser, self.headers, self.server
        if (
            parser.get_http_version() != "1.1"
            or "transfer-encoding" in headers
            or "expect" in headers
            or parser.should_upgrade()
        ):
            raise _HandOff
        self.head_end = self.buffer.find(b"\r\n\r\n") + 4
        length = int(headers.get("content-length", "0"))  # llhttp has checked it: digits, once
        if length > server.max_body_bytes or self.head_end > server.max_head_bytes:
            raise _HandOff  # aiohttp answers with its 413, or its limits on lines and fields
        target = server.accept(self, parser.get_method(), self.url)
        if target is None:
            raise _HandOff
        self.target = target
        self.message_end = self.head_end + length
        self.keep_alive = parser.should_keep_alive()  # llhttp's reading of Connection, as aiohttp's

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
            if not buffer.startswith(self.server.prefixes):
                if any(prefix.startswith(buffer) for prefix in self.server.prefixes):
                    self._set_timer("head")  # too few bytes yet to tell where it goes
                else:
                    self._hand_off()
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
                self._reject(MalformedRequest(edge.bad_request_message(exc)))
                return
        if not self.complete:
            if self.head_end == 0 and len(buffer) > self.server.max_head_bytes:
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
        if self.closing:
            self.keep_alive = False
        self.busy = self.loop.create_task(self._respond(self.target, body))

    async def _respond(self, target: Any, body: bytes) -> None:
        server = self.server
        try:
            if server.shutting_down:
                reply = server.shutdown_reply()
            else:
                reply = await server.respond(self, target, body)
        except asyncio.CancelledError:
            self.busy = None
            return  # the shutdown deadline answered for us
        except Exception:
            log.exception("internal error serving a request")
            reply = server.failure_reply()
        self.busy = None
        if self.transport is None or self.transport.is_closing():
            return  # the client left, or the shutdown deadline answered for us
        status, headers, payload, close = reply
        keep_alive = self.keep_alive and not self.closing and not close
        try:
            data = server.encode(status, headers, payload, keep_alive)
        except Exception:  # a header HTTP cannot carry: aiohttp too logs it and closes unanswered
            log.exception("a response could not be written")
            self.close()
            self.transport = None
            return
        self._write(data, keep_alive)
        if keep_alive:
            self._resume_reading()
            self._process()

    # -- writing ----------------------------------------------------------------------------------------
    def _write(self, data: bytes, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(data)
        if not keep_alive:
            transport.close()
            self.transport = None

    def _answer(self, reply: Reply) -> None:
        """Write `reply` and close."""
        if self.transport is None:
            return
        self._cancel_timer()
        self._resume_reading()
        status, headers, payload, _ = reply
        self._write(self.server.encode(status, headers, payload, False), keep_alive=False)

    def _reject(self, error: AwsError) -> None:
        """A malformed or timed-out request: answered and closed, or handed to aiohttp."""
        if self.transport is None:
            return
        reply = self.server.refusal(error)
        if reply is None:
            self._hand_off()
            return
        if error.status < 500:
            peer = self.peername
            log.info("rejected a request from %s: %s", peer[0] if peer else "?", error.message)
        self._answer(reply)

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

    def answer_now(self) -> None:
        """At the shutdown deadline."""
        busy = self.busy
        if busy is not None or self.buffer:
            self._answer(self.server.shutdown_reply())
            if busy is not None and self.server.cancel_at_deadline:
                busy.cancel()
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
        self.server.fast.discard(self)
        protocol = self.server.aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        pending, self.buffer = bytes(self.buffer), bytearray()
        self.transport = None
        if pending:
            protocol.data_received(pending)
