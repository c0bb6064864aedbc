"""The gateway's listening site, on the emulator's event loop, with the edge's limits
(emulator/api/edge.py). Thin: it turns the HTTP request into a GatewayRequest, hands it to
the pipeline, and writes the GatewayResponse.

A connection starts on the fast path (emulator/api/fast_http.py: httptools, no aiohttp
request or response objects), which takes the common case: a GET, POST, PUT, PATCH, DELETE
or OPTIONS over HTTP/1.1 with a Content-Length body (or none) and an ordinary head. Anything
else (chunked or compressed bodies, `Expect`, HTTP/1.0, HEAD, upgrades, heads over aiohttp's
limits, malformed framing) goes with the connection to aiohttp's protocol, as before: its
parser answers what it rejects with a JSON 400 and one log line, keep-alive and body
timeouts hold, and the requests in flight are answered at the shutdown deadline. The fast
path writes its responses as aiohttp writes them (the same headers in the same order), so a
client cannot tell which path served it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import formatdate
from typing import Any, Iterable

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from emulator.api import edge
from emulator.api.fast_http import FRAMING_HEADERS, FastHttpProtocol, FastHttpServer, Reply
from emulator.apigateway.answers import Answer, gateway_answer
from emulator.apigateway.events import GatewayRequest, GatewayResponse
from emulator.apigateway.pipeline import GatewayPipeline, extended_request_id
from emulator.errors import AwsError

log = logging.getLogger("emulator.apigateway.http")

# API Gateway's payload limit, REST and HTTP APIs alike: 10 MB
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html,
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html). A larger
# body is answered 413 (REQUEST_TOO_LARGE).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_BAD_REQUEST = b'{"message":"Bad Request"}'
# aiohttp's limits on a request line or header field, and on the number of headers (its
# defaults): a head past them goes to aiohttp, whose parser answers it 400.
_AIOHTTP_MAX_FIELD = 8190
_AIOHTTP_MAX_HEADERS = 128
# Headers aiohttp's parser refuses to see twice (400), and the one it acts on (it decompresses
# the body): a request with either goes to aiohttp.
_SINGLETONS = frozenset({
    b"content-length", b"content-location", b"content-range", b"content-type", b"etag", b"host",
    b"max-forwards", b"server", b"transfer-encoding", b"user-agent",
})
_FAST_METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")
# The statuses whose responses carry no body and no Content-Length (RFC 9110 §6.4.1, §8.6;
# aiohttp's rule).
_EMPTY_BODY_STATUSES = frozenset((204, 304, *range(100, 200)))
# What aiohttp refuses in a header (RFC 9110 §5.5: control characters but HTAB).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class GatewayProtocol(RequestHandler):
    """aiohttp's connection protocol, answering what its parser rejects with a JSON 400 and one
    log line instead of a traceback."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already under way; the connection cannot carry an error")
        text = edge.bad_request_message(getattr(exc, "message", None) or message or type(exc).__name__)
        log.info("rejected a request from %s: %s", request.remote, text)
        response = web.Response(status=400, body=_BAD_REQUEST, content_type="application/json")
        response.force_close()
        return response


class GatewayServer(FastHttpServer):
    prefixes = tuple(method + b" /" for method in _FAST_METHODS)
    watched_headers = FRAMING_HEADERS | _SINGLETONS | {b"content-encoding"}
    all_headers = True
    max_head_bytes = _AIOHTTP_MAX_FIELD
    max_body_bytes = MAX_PAYLOAD_BYTES  # a larger body: aiohttp's path answers the 413
    general_protocol = GatewayProtocol
    cancel_at_deadline = True  # the pipeline lets its invocation outlive the request

    def __init__(self, handler: Any, *, general: "GatewayHandler", pipeline: GatewayPipeline, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.general = general
        self.pipeline = pipeline

    def accept(self, protocol: FastHttpProtocol, method: bytes, url: bytes) -> Any:
        """(method, path, query, headers, host) of an ordinary request, or None."""
        raw = protocol.raw_headers
        if (
            method not in _FAST_METHODS
            or protocol.repeated
            or "content-encoding" in protocol.headers
            or "host" not in protocol.headers
            or len(raw) > _AIOHTTP_MAX_HEADERS
            or not url.isascii()
            or b"#" in url
        ):
            return None
        headers = []
        host = ""
        for name, value in raw:
            if b"\x00" in value:
                return None  # aiohttp's parser answers it 400
            # aiohttp drops the whitespace llhttp leaves after a value, as RFC 9110 §5.5 asks.
            value = value.rstrip(b" \t")
            headers.append((name.decode("latin-1"), value.decode("utf-8", "replace")))
            if len(name) == 4 and name.lower() == b"host":
                host = value.decode("utf-8", "surrogateescape")
        path, _, query = url.partition(b"?")
        return method.decode(), path.decode(), query.decode(), headers, host

    async def respond(self, protocol: FastHttpProtocol, target: Any, body: bytes) -> Reply:
        method, path, query, headers, host = target
        peer, sockname = protocol.peername, protocol.sockname
        request = GatewayRequest(
            method=method, raw_path=path, raw_query=query, headers=headers, body=body,
            source_ip=peer[0] if peer else "127.0.0.1", host=host,
            port=sockname[1] if sockname else 0,
        )
        response = await self.pipeline.handle_or_fail(request)
        return response.status, response.headers, response.body, False

    def encode(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
        """The response as aiohttp's web.Response writes it, header for header: the
        function's headers in order, then Content-Length, a default Content-Type, Date,
        Server and Connection where the function set none."""
        lines = [f"HTTP/1.1 {status} {edge.REASONS.get(status, '')}"]
        names = set()
        for name, value in headers:
            names.add(name.lower())
            lines.append(f"{name}: {value}")
        empty = status in _EMPTY_BODY_STATUSES
        length = len(body)
        if empty:
            if "content-length" in names or "transfer-encoding" in names:
                lines = [line for line in lines if not line.lower().startswith(("content-length:", "transfer-encoding:"))]
            body = b""
        elif "content-length" in names:
            length = int(next(v for k, v in headers if k.lower() == "content-length"))  # what aiohttp frames by
        else:
            lines.append(f"Content-Length: {length}")
        if not empty and length and "content-type" not in names:
            lines.append("Content-Type: application/octet-stream")
        if "date" not in names:
            lines.append(f"Date: {_http_date()}")
        if "server" not in names:
            lines.append(f"Server: {SERVER_SOFTWARE}")
        if not keep_alive and "connection" not in names:
            lines.append("Connection: close")
        if _FORBIDDEN.search("".join(lines)) is not None:
            raise ValueError("a control character in a response header")  # aiohttp refuses to send it too
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "ignore") + body

    def refusal(self, error: AwsError) -> Reply | None:
        return None  # a malformed or stalled request: aiohttp answers it as it always has

    def failure_reply(self) -> Reply:
        response = gateway_answer(None, Answer.INTERNAL, "", extended_request_id())
        return response.status, response.headers, response.body, True

    def shutdown_reply(self) -> Reply:
        response = gateway_answer(None, Answer.SHUTTING_DOWN, "", extended_request_id())
        return response.status, response.headers, response.body, True

    def answer_remaining(self) -> None:
        super().answer_remaining()
        self.general.answer_remaining()


_date = [0, ""]


def _http_date() -> str:
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, formatdate(now, usegmt=True)]
    return _date[1]  # type: ignore[return-value]


async def _read_body(request: web.BaseRequest) -> bytes | None:
    """The whole body, or None once it passes the payload limit (chunked bodies give no
    Content-Length to check first)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            return None
        chunks.append(chunk)


class GatewayHandler:
    """The aiohttp request handler, for the connections the fast path handed over."""

    def __init__(self, pipeline: GatewayPipeline) -> None:
        self.pipeline = pipeline
        self.port: int | None = None
        self.shutting_down = False
        self._in_flight: set[asyncio.Task] = set()
        self._deadline = False

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.shutting_down:
            return self._write(gateway_answer(None, Answer.SHUTTING_DOWN, "", extended_request_id()), close=True)
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            return await self._serve(request)
        except asyncio.CancelledError:
            if not self._deadline:
                raise
            return self._write(gateway_answer(None, Answer.SHUTTING_DOWN, "", extended_request_id()), close=True)
        finally:
            self._in_flight.discard(task)

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
            return self._write(self.pipeline.refuse(self._gateway_request(request, b""), Answer.TOO_LARGE), close=True)
        body: bytes | None = b""
        if request.body_exists:
            try:
                body = await asyncio.wait_for(_read_body(request), edge.BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.info("rejected a request from %s: its body did not arrive within %g s", request.remote, edge.BODY_TIMEOUT_S)
                return web.Response(status=408, body=b'{"message":"Request Timeout"}', content_type="application/json")
            except ConnectionError:
                return web.Response(status=400, body=_BAD_REQUEST, content_type="application/json")
            if body is None:
                return self._write(self.pipeline.refuse(self._gateway_request(request, b""), Answer.TOO_LARGE), close=True)
        return self._write(await self.pipeline.handle_or_fail(self._gateway_request(request, body)))

    def _gateway_request(self, request: web.BaseRequest, body: bytes) -> GatewayRequest:
        url = request.rel_url
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return GatewayRequest(
            method=request.method,
            raw_path=url.raw_path,
            raw_query=url.raw_query_string,
            headers=[(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.raw_headers],
            body=body,
            source_ip=request.remote or "127.0.0.1",
            host=request.host,
            port=sockname[1] if sockname else (self.port or 0),
            protocol=f"HTTP/{request.version.major}.{request.version.minor}",
        )

    @staticmethod
    def _write(response: GatewayResponse, close: bool = False) -> web.Response:
        answer = web.Response(status=response.status, headers=CIMultiDict(response.headers), body=response.body)
        if close:
            answer.force_close()
        return answer

    @property
    def requests_in_flight(self) -> int:
        return len(self._in_flight)

    def answer_remaining(self) -> None:
        self._deadline = True
        for task in list(self._in_flight):
            task.cancel()


class GatewayHttp:
    def __init__(self, pipeline: GatewayPipeline) -> None:
        self.pipeline = pipeline
        self.port: int | None = None
        self.general = GatewayHandler(pipeline)
        self._server: GatewayServer | None = None
        self._runner: web.ServerRunner | None = None

    async def start(self, host: str, port: int) -> int:
        server = self._server = GatewayServer(self.general.handle, general=self.general, pipeline=self.pipeline,
                                              access_log=None, request_factory=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024, reuse_address=True)
        await site.start()  # OSError: the caller says which option to change
        self.port = self.general.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    # -- shutdown (emulator/server.py): stop taking requests, drain, answer the rest -------------
    def begin_shutdown(self) -> None:
        if self._server is not None:
            self._server.begin_shutdown()
        self.general.shutting_down = True

    @property
    def requests_in_flight(self) -> int:
        return self._server.requests_in_flight if self._server is not None else 0

    def answer_remaining(self) -> None:
        if self._server is not None:
            self._server.answer_remaining()

    async def stop_listening(self) -> None:
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
