"""The fast HTTP/1.1 path for the one hot route, POST /2015-03-31/functions/{name}/invocations.

A connection starts on the fast path of fast_http.py. The first request that is not a plain
Content-Length POST to the invoke route hands the connection to aiohttp's protocol for good
(edge.QuietProtocol), so every other API, and every unusual request, keeps aiohttp's handling.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qs, unquote

from emulator.api.edge import ShuttingDown, http_status_line
from emulator.api.fast_http import FRAMING_HEADERS, FastHttpProtocol, FastHttpServer, Reply
from emulator.errors import AwsError, ServiceError

log = logging.getLogger("emulator.api.fast_invoke")

InvokeParts = Callable[[str, "str | None", dict[str, str], bytes], Awaitable[tuple[int, dict[str, str], bytes]]]

_INVOKE_TARGET = re.compile(rb"/2015-03-31/functions/([^/?]+)/invocations(?:\?(.*))?")
_SHUTDOWN_MESSAGE = "The emulator shut down before this request was answered (see --shutdown-timeout)."


class FastInvokeServer(FastHttpServer):
    """aiohttp's low-level server, whose connections start on the fast invoke path."""

    prefixes = (b"POST /2015-03-31/functions/",)
    # Framing, and what LambdaApi.invoke_parts looks at.
    watched_headers = FRAMING_HEADERS | {
        b"x-amz-invocation-type", b"x-amz-log-type", b"x-amz-client-context", b"x-amzn-trace-id", b"x-amz-tenant-id",
    }

    def __init__(self, handler: Any, *, invoke: InvokeParts, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._invoke = invoke

    def accept(self, protocol: FastHttpProtocol, method: bytes, url: bytes) -> Any:
        return _INVOKE_TARGET.fullmatch(url) if method == b"POST" else None

    async def respond(self, protocol: FastHttpProtocol, target: Any, body: bytes) -> Reply:
        name = unquote(target.group(1).decode("latin-1"))
        qualifier = None
        if query := target.group(2):
            values = parse_qs(query.decode("latin-1")).get("Qualifier")
            qualifier = values[0] if values else None
        try:
            status, headers, payload = await self._invoke(name, qualifier, protocol.headers, body)
        except AwsError as error:
            status, headers, payload = error.to_response_parts()
        return status, headers.items(), payload, False

    def encode(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
        lines = [http_status_line(status)]
        if status >= 200 and status not in (204, 304):  # RFC 9110 §8.6: no Content-Length on these
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{key}: {value}" for key, value in headers)
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def failure_reply(self) -> Reply:
        status, headers, payload = ServiceError("The emulator failed to process the request; see its log.").to_response_parts()
        return status, headers.items(), payload, False

    def shutdown_reply(self) -> Reply:
        return self._error_reply(ShuttingDown(_SHUTDOWN_MESSAGE))

    @staticmethod
    def _error_reply(error: AwsError) -> Reply:
        status, headers, payload = error.to_response_parts()
        return status, headers.items(), payload, True

    def answer_remaining(self) -> None:
        super().answer_remaining()
        self.general.answer_remaining(ShuttingDown(_SHUTDOWN_MESSAGE))
