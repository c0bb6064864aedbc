"""One endpoint for every AWS API: Lambda is ours, everything else goes to the backend.

The service is read from the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/
aws4_request`), which every SDK and the CLI send. Lambda requests that match none of our
routes get an AWS-shaped error here; they are never passed to moto's own Lambda backend.
Nor are unsigned requests (a mistyped path, a browser, a port scanner): they name no service,
so they get UnknownOperationException instead of whatever the backend guesses. An error the
backend answers as HTML or plain text (its web framework's 404 or 500 pages) becomes an
AWS-shaped error too: clients parse AWS errors, never HTML.

While the backend cannot serve (the supervised moto child died and is restarting, or was
given up on: emulator/backend/moto_process.py), or does not answer, calls for it get
`503 ServiceUnavailable` in their own protocol's error shape, naming what happened.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Callable
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from emulator.errors import AwsError, ServiceError, UnknownOperation

log = logging.getLogger("emulator.proxy")

_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Hop-by-hop headers (RFC 9110 §7.6.1) and those aiohttp recomputes.
_DROP_REQUEST = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
_DROP_RESPONSE = _DROP_REQUEST | {"content-encoding", "server", "date"}


def signed_service(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    match = _SCOPE_RE.search(auth)
    if match:
        return match.group(1)
    credential = request.query.get("X-Amz-Credential")  # presigned URLs
    if credential:
        parts = credential.split("/")
        if len(parts) >= 4:
            return parts[3]
    return None


# The code AWS services answer when they cannot serve for a while; SDKs retry it.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html
UNAVAILABLE_CODE, UNAVAILABLE_STATUS = "ServiceUnavailable", 503


def backend_unavailable(request: web.Request, message: str) -> web.Response:
    """503 ServiceUnavailable as the request's protocol writes errors: JSON for the JSON
    protocols (`__type`, and the header REST-JSON clients read), XML for the others."""
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": UNAVAILABLE_CODE}
    if "X-Amz-Target" in request.headers or "json" in request.headers.get("Content-Type", ""):
        body = json.dumps({"__type": UNAVAILABLE_CODE, "message": message}).encode()
        return web.Response(status=UNAVAILABLE_STATUS, headers=headers, body=body, content_type="application/json")
    body = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{UNAVAILABLE_CODE}</Code><Message>{escape(message)}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return web.Response(status=UNAVAILABLE_STATUS, headers=headers, body=body, content_type="text/xml")


class AwsProxy:
    def __init__(self, backend_url: str | None, unavailable_reason: Callable[[], str | None] | None = None) -> None:
        self.backend_url = backend_url.rstrip("/") if backend_url else None
        # None while the backend serves, else why not (MotoServer.unavailable_reason).
        self._unavailable_reason = unavailable_reason or (lambda: None)
        self._unreachable_logged = False  # once per outage, not once per call
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        service = signed_service(request)
        if service == "lambda":
            raise UnknownOperation(f"The emulator does not implement the Lambda operation {request.method} {request.path}.")
        if service is None:
            raise UnknownOperation(
                f"No operation at {request.method} {request.path}. Requests for AWS APIs other than Lambda must be "
                "signed (SigV4) as the SDKs and the AWS CLI do, so that the emulator can tell which service they are for."
            )
        if self.backend_url is None:
            raise ServiceError(f"No backend for the {service} API: the emulator runs without moto (see --backend).")
        reason = self._unavailable_reason()
        if reason is not None:
            return backend_unavailable(request, reason)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                auto_decompress=False,
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        body = await request.read()
        try:
            async with self._session.request(
                request.method, self.backend_url + request.rel_url.raw_path_qs, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                payload = await upstream.read()
                self._unreachable_logged = False
                if upstream.status >= 400 and payload and _is_page(upstream.headers.get("Content-Type", "")):
                    raise _backend_error(service, request, upstream.status, payload)
                out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE}
                if upstream.headers.get("Content-Encoding"):
                    out_headers["Content-Encoding"] = upstream.headers["Content-Encoding"]
                return web.Response(status=upstream.status, headers=out_headers, body=payload)
        except aiohttp.ClientError as exc:
            # The backend went away during this call (its death is noticed and logged by its
            # supervisor), or an external one (--aws-endpoint) does not answer.
            reason = self._unavailable_reason()
            if reason is None:
                reason = f"The emulator's AWS backend ({self.backend_url}) did not answer: {exc}"
                if not self._unreachable_logged:
                    self._unreachable_logged = True
                    log.warning("%s; calls for it answer 503 ServiceUnavailable until it answers again", reason)
            return backend_unavailable(request, reason)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class BackendError(AwsError):
    """An error the backend answered as a web page; its status is kept, its code is AWS's
    for the class of failure."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.blame = "User" if status < 500 else "Service"


def _is_page(content_type: str) -> bool:
    # AWS protocols answer errors as XML or JSON (x-amz-json, rest-json, query, rest-xml).
    return content_type.split(";")[0].strip().lower() in ("text/html", "text/plain")


def _backend_error(service: str, request: web.Request, status: int, payload: bytes) -> AwsError:
    excerpt = " ".join(payload[:200].decode("utf-8", "replace").split())
    log.info("the backend answered %s %s (%s) with HTTP %d and a page: %s", request.method, request.path, service, status, excerpt)
    if status in (404, 405, 501):
        return UnknownOperation(f"The {service} backend has no operation at {request.method} {request.path}.")
    if status >= 500:
        return ServiceError(f"The {service} backend failed on {request.method} {request.path} (HTTP {status}); see the emulator's log.")
    return BackendError(f"The {service} backend refused {request.method} {request.path} (HTTP {status}): {excerpt}", status, "ValidationException")
