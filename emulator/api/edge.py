"""What the two HTTP paths share: limits, timeouts, the answers to bad requests, and
aiohttp's protocol made quiet (the general path).

Every connection starts on the fast path (fast_http.py, parsed by httptools; on this port
for the invoke route, fast_invoke.py); any other request is handed, with the bytes already
read, to aiohttp's protocol (`QuietProtocol` below). Both reject what RFC 9112 forbids
(duplicate or invalid Content-Length, Content-Length with Transfer-Encoding, whitespace
before a colon, control bytes in headers, bare LF line ends) with 400 and close the connection, answer AWS-shaped, and log one line, never a
traceback, for a request they reject. The timeouts are read when a connection or server is
made, so tests may set them first.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from emulator.errors import AwsError, InvalidRequestContent, RequestTooLarge, ServiceError, UserError

log = logging.getLogger("emulator.http")

# An idle keep-alive connection (no request under way) is closed after this long: AWS's load
# balancers' default idle timeout, https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout
# (uvicorn's 5 s broke keep-alive clients that pause between phases, such as a load test's
# own probes; a peer that sends nothing costs one descriptor for a minute at most).
KEEP_ALIVE_TIMEOUT_S = 60.0
# A request head must be complete this long after its first byte (both paths); a slow-loris
# peer is answered 408 and closed.
HEADER_TIMEOUT_S = 10.0
# A request body must be complete this long after its head. Bodies are at most 16 MB and
# come over loopback or a LAN, so ten seconds is generous.
BODY_TIMEOUT_S = 10.0
# Stop reading from a connection while its request is handled once this much of what
# follows is buffered (uvicorn's high-water mark); the peer's sends then block in the kernel.
READ_HIGH_WATER = 64 * 1024
# Request heads larger than this are handed to aiohttp, whose own line and field limits
# answer them.
MAX_HEADER_BYTES = 16 * 1024
# 6 MB synchronous payloads, 1 MB asynchronous (since Oct 2025):
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
# Larger than Lambda's 6 MB sync limit so we can answer with Lambda's own 413 (see
# lambda_api.py) instead of aiohttp's; larger bodies are refused by aiohttp itself.
MAX_BODY_BYTES = 16 * 1024 * 1024


class MalformedRequest(InvalidRequestContent):
    """Bad HTTP framing. The Lambda model's InvalidRequestContentException covers "a request
    header is invalid" (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors)."""


class RequestTimeout(UserError):
    """RFC 9110 §15.5.9: the request did not arrive in full in time."""

    code = "RequestTimeoutException"
    status = 408


def payload_too_large(limit: int = MAX_SYNC_PAYLOAD) -> RequestTooLarge:
    """Lambda's 413 for an Invoke payload above `limit` bytes."""
    return RequestTooLarge(f"Request must be smaller than {limit} bytes for the Invoke operation")


class ShuttingDown(ServiceError):
    """The emulator stopped before it could answer: Lambda's ServiceException (500), which
    SDKs treat as a transient error of the service."""


def bad_request_message(detail: object) -> str:
    # aiohttp's parser errors draw a caret under the bad byte on further lines: keep the first.
    first_line = (str(detail).strip().splitlines() or ["(no detail)"])[0].rstrip(":")
    return f"Malformed HTTP request: {first_line}"


def error_response(error: AwsError, close: bool = False) -> web.Response:
    status, headers, body = error.to_response_parts()
    response = web.Response(status=status, headers=headers, body=body)
    if close:
        response.force_close()
        response.headers["Connection"] = "close"
    return response


class QuietProtocol(RequestHandler):
    """aiohttp's connection protocol, answering the requests its parser rejects with an
    AWS-shaped 400 and one log line instead of a traceback, and a request head that does not
    arrive within HEADER_TIMEOUT_S of its first byte with 408 (aiohttp itself would only
    close the connection, without an answer, once its keep-alive timer ran out)."""

    _head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        # Between requests (none being handled or queued), new bytes begin a request head.
        between = self._current_request is None and not self._messages
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._stop_head_timer()  # a head arrived in full
        elif between and data and self._head_timer is None and self.transport is not None and not self._force_close:
            deadline = self._loop.time() + HEADER_TIMEOUT_S
            self._head_timer = self._loop.call_at(deadline, self._head_timed_out)
            # aiohttp's keep-alive check would close the connection unanswered: not before us.
            self._next_keepalive_close_time = max(self._next_keepalive_close_time, deadline + 1.0)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        timer, self._head_timer = self._head_timer, None
        if timer is not None:
            timer.cancel()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        error = RequestTimeout(f"The request head did not arrive within {HEADER_TIMEOUT_S:g} s.")
        peer = transport.get_extra_info("peername")
        log.info("rejected a request from %s: %s", peer[0] if peer else "?", error.message)
        transport.write(encode_response(error))
        self.force_close()  # the transport sends what was written, then closes

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already under way; the connection cannot carry an error")
        text = bad_request_message(getattr(exc, "message", None) or message or type(exc).__name__)
        log.info("rejected a request from %s: %s", request.remote, text)
        return error_response(MalformedRequest(text), close=True)


def encode_response(error: AwsError) -> bytes:
    """`error` as a whole HTTP/1.1 response that closes the connection (for a request no
    handler will see)."""
    status, headers, payload = error.to_response_parts()
    lines = [http_status_line(status), f"Content-Length: {len(payload)}"]
    lines.extend(f"{key}: {value}" for key, value in headers.items())
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def http_status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"


# Every status's reason phrase (a dict, not an HTTPStatus call per response: the fast path).
REASONS = {status.value: status.phrase for status in http.HTTPStatus}
