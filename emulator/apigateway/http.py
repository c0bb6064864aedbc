"""The gateway's listening site: aiohttp's low-level server on the emulator's event loop, with
the edge's limits (emulator/api/edge.py): keep-alive and body timeouts, malformed framing
answered 400 and closed with one log line, and the requests in flight answered at the
shutdown deadline. Thin: it turns the HTTP request into a GatewayRequest, hands it to the
pipeline, and writes the GatewayResponse.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from emulator.api import edge
from emulator.apigateway.answers import Answer, gateway_answer
from emulator.apigateway.events import GatewayRequest, GatewayResponse
from emulator.apigateway.pipeline import GatewayPipeline, extended_request_id

log = logging.getLogger("emulator.apigateway.http")

# API Gateway's payload limit, REST and HTTP APIs alike: 10 MB
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html,
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html). A larger
# body is answered 413 (REQUEST_TOO_LARGE).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_BAD_REQUEST = b'{"message":"Bad Request"}'


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


class GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:  # the protocol factory given to create_server
        return GatewayProtocol(self, loop=self._loop, **self._kwargs)


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


class GatewayHttp:
    def __init__(self, pipeline: GatewayPipeline) -> None:
        self.pipeline = pipeline
        self.port: int | None = None
        self.shutting_down = False
        self._in_flight: set[asyncio.Task] = set()
        self._deadline = False
        self._runner: web.ServerRunner | None = None

    async def start(self, host: str, port: int) -> int:
        server = GatewayServer(self.handle, keepalive_timeout=edge.KEEP_ALIVE_TIMEOUT_S, lingering_time=edge.BODY_TIMEOUT_S,
                               access_log=None, request_factory=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024, reuse_address=True)
        await site.start()  # OSError: the caller says which option to change
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

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
        gateway_request = self._gateway_request(request, body)
        try:
            return self._write(await self.pipeline.handle(gateway_request))
        except asyncio.CancelledError:
            raise
        except Exception:  # our own failure: API Gateway's 500 to the client, the traceback to our log
            log.exception("the gateway failed on %s %s", request.method, request.path)
            return self._write(self.pipeline.refuse(gateway_request, Answer.INTERNAL))

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

    # -- shutdown (emulator/server.py): stop taking requests, drain, answer the rest -------------
    def begin_shutdown(self) -> None:
        self.shutting_down = True

    @property
    def requests_in_flight(self) -> int:
        return len(self._in_flight)

    def answer_remaining(self) -> None:
        self._deadline = True
        for task in list(self._in_flight):
            task.cancel()

    async def stop_listening(self) -> None:
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
