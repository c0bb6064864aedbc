"""The Lambda Runtime API, served by the control plane to one execution environment.

A runtime interface client (awslambdaric, aws-lambda-ric, a custom runtime's `bootstrap`)
finds it at `AWS_LAMBDA_RUNTIME_API` and polls it for the next event
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

    GET  /2018-06-01/runtime/invocation/next             -> the event, with Lambda-Runtime-* headers
    POST /2018-06-01/runtime/invocation/{id}/response    -> 202 {"status":"OK"}
    POST /2018-06-01/runtime/invocation/{id}/error       -> 202 {"status":"OK"}
    POST /2018-06-01/runtime/init/error                  -> 202 {"status":"OK"}

Each environment gets a listener of its own (`AWS_LAMBDA_RUNTIME_API` is a bare host:port,
so a path or a header cannot tell environments apart; docs/benchmarks.md has what a
listener costs). Requests out of turn get the answers of AWS's Runtime Interface Emulator
(https://github.com/aws/aws-lambda-runtime-interface-emulator, `internal/lambda/rapi`):
403 `InvalidStateTransition` for a response, error or init error the runtime's state does
not allow, 400 `InvalidRequestID` for a response to another request, 413
`RequestEntityTooLarge` beyond 6 MiB + 100 bytes, 400 `InvalidFunctionResponseMode`.

Requests are parsed by httptools (llhttp), as on the invoke fast path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Callable

import httptools

log = logging.getLogger("emulator.execution.runtime_api")

API_PREFIX = "/2018-06-01/runtime/"
RESPONSE_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
# MaxPayloadSize in AWS's Runtime Interface Emulator: 6 MiB + 100 bytes.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 + 100
# Error bodies (invocation and init errors) are read up to the same size.
ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"
RESPONSE_MODE_HEADER = "lambda-runtime-function-response-mode"
STREAMING_RESPONSE_MODE = "streaming"
ACCEPTED_BODY = json.dumps({"status": "OK"}).encode()


class RuntimeRequest:
    """One request of the runtime, answered exactly once through `respond`."""

    __slots__ = ("method", "path", "headers", "body", "oversize", "_conn")

    def __init__(self, conn: "_RuntimeApiConnection", method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = bytearray()
        self.oversize = False  # the body went past MAX_PAYLOAD_BYTES: the rest was dropped
        self._conn = conn

    @property
    def open(self) -> bool:
        return self._conn.transport is not None

    def respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._conn.write_response(status, body, headers)


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Request Entity Too Large", 500: "Internal Server Error"}


class _RuntimeApiConnection(asyncio.Protocol):
    """One HTTP/1.1 connection from the runtime; requests are handled one at a time, in order."""

    def __init__(self, handle: Callable[[RuntimeRequest], None], connections: set["_RuntimeApiConnection"]) -> None:
        self._handle = handle
        self._connections = connections
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._current: RuntimeRequest | None = None
        self._queue: list[RuntimeRequest] = []
        self._answering: RuntimeRequest | None = None  # handed to the environment, not yet answered
        self._keep_alive = True

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "upgrades are not part of the Runtime API")
        except httptools.HttpParserError as exc:
            self._reject(400, f"malformed HTTP request: {exc}")

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        method = self._parser.get_method().decode("latin-1")
        path = self._url.decode("latin-1").split("?", 1)[0]
        self._current = RuntimeRequest(self, method, path, self._headers)
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        request = self._current
        if request is None or request.oversize:
            return
        if len(request.body) + len(body) > MAX_PAYLOAD_BYTES:
            request.oversize = True  # never buffer more than Lambda accepts
            request.body.clear()
            return
        request.body += body

    def on_message_complete(self) -> None:
        request, self._current = self._current, None
        if request is None:
            return
        self._queue.append(request)
        self._next_request()

    # -- answering -----------------------------------------------------------------------
    def _next_request(self) -> None:
        if self._answering is None and self._queue:
            self._answering = self._queue.pop(0)
            self._handle(self._answering)

    def write_response(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._answering = None
        transport = self.transport
        if transport is None:
            return
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nContent-Length: {len(body)}\r\n"]
        head.append("Content-Type: application/json\r\n")
        if headers:
            head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if not self._keep_alive:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        transport.write("".join(head).encode("latin-1") + body)
        if not self._keep_alive:
            transport.close()
            return
        self._next_request()

    def _reject(self, status: int, message: str) -> None:
        self._keep_alive = False
        self._queue.clear()
        self._answering = None
        self.write_response(status, error_body("InvalidRequest", message))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RuntimeApiServer:
    """The listener of one environment: its own port on `host`, and its connections."""

    def __init__(self, handle: Callable[[RuntimeRequest], None]) -> None:
        self._handle = handle
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_RuntimeApiConnection] = set()
        self.address = ""

    async def listen(self, host: str, port: int = 0) -> str:
        """Start listening; the value for AWS_LAMBDA_RUNTIME_API (host:port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _RuntimeApiConnection(self._handle, self._connections), host, port, backlog=16, reuse_address=True
        )
        bound = self._server.sockets[0].getsockname()
        self.address = f"{host}:{bound[1]}"
        return self.address

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections):
            conn.close()
        self._connections.clear()
