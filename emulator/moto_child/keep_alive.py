"""Keep-alive for the AWS JSON-protocol calls moto's server answers (werkzeug's dev server).

werkzeug's development server answers every request with `Connection: close`, because
http.server cannot skip a request body the application left unread; after each response
it also drains the socket. So every call costs a TCP connection and a new thread on both
sides (~0.3 ms of the server's CPU). For the calls the emulator's pollers make in a loop
(POST with an `X-Amz-Target` header and a Content-Length body: SQS, Kinesis, DynamoDB,
...), for query-protocol calls (a form POSTed to "/": SNS's Publish and PublishBatch,
which every publisher's request costs) and for the control plane's GETs of
`/_emulator/...` (the SNS outbox's long poll, one per batch of messages), this handler
reads the body before the application runs, buffers the response and sends it with a
Content-Length, and keeps the connection open. Every other request (S3, chunked uploads,
HEAD, ...) goes through werkzeug's own code, which closes the connection as before. moto's line of log per request, which the
emulator discards anyway, is not written.
"""

from __future__ import annotations

import io
import sys
import traceback
from typing import Any, Callable

from emulator.moto_child.short_path import FORM_CONTENT_TYPE  # query-protocol calls (SNS Publish, STS, ...)

# Bodies up to this size are read ahead; larger ones take werkzeug's path.
MAX_READ_AHEAD_BYTES = 16 * 1024 * 1024
# Framing the handler sets itself: the application's values are dropped.
_OWN_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
# The moto child's own endpoints for the control plane (emulator/moto_child/sns_outbox.py).
_EMULATOR_PATHS = "/_emulator/"


def handler_class(base: type) -> type:
    """A subclass of moto's MotoRequestHandler with keep-alive for JSON-protocol calls."""

    class KeepAliveRequestHandler(base):  # type: ignore[misc, valid-type]
        def run_wsgi(self) -> None:
            length = self._body_length()
            if length is None:
                super().run_wsgi()  # werkzeug's path: Connection: close
                return
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                self.close_connection = True  # the client went away mid-body
                return
            environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            status, headers, payload = self._call_app(environ)
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            for name, value in headers:
                if name.lower() not in _OWN_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            # Head and body in one write: two small writes meet Nagle's algorithm and the
            # client's delayed ACK (+40 ms per call on a kept-alive connection).
            self._headers_buffer.append(b"\r\n" + payload)
            self.flush_headers()

        def _body_length(self) -> int | None:
            """The body's length when this request can stay on a kept-alive connection."""
            if self.request_version != "HTTP/1.1" or self.close_connection or "Transfer-Encoding" in self.headers:
                return None
            path = self.path.partition("?")[0]
            if self.command == "GET" and path.startswith(_EMULATOR_PATHS):
                # The control plane's own calls (the SNS outbox's long poll): no body.
                return 0 if self.headers.get("Content-Length", "0") == "0" else None
            if self.command != "POST":
                return None
            query_protocol = path == "/" and self.headers.get("Content-Type", "").startswith(FORM_CONTENT_TYPE)
            if "X-Amz-Target" not in self.headers and not query_protocol:
                return None
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return None
            return length if 0 <= length <= MAX_READ_AHEAD_BYTES else None

        def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
            started: list[Any] = []
            written: list[bytes] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
                started[:] = [status, headers]
                return written.append

            try:
                result = self.server.app(environ, start_response)
                try:
                    written.extend(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                return started[0], started[1], b"".join(written)
            except Exception:  # what werkzeug does: a 500, the traceback on stderr
                traceback.print_exc(file=sys.stderr)
                self.close_connection = True
                return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error"

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            pass

    return KeepAliveRequestHandler
