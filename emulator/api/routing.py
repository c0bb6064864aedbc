"""The HTTP front door: one route table, one error serialiser, nothing else.

Handlers live in the *_api modules and stay thin (STYLE.md principle 6). Whatever goes
wrong, the client gets an AWS-shaped error; a traceback only ever reaches our own log.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from urllib.parse import unquote
from typing import Any, Awaitable, Callable

from aiohttp import web

from emulator.errors import AwsError, InvalidRequestContent, RequestTooLarge, ServiceError

log = logging.getLogger("emulator.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Larger than Lambda's 6 MB sync limit (aws-semantics §2.1) so we can answer with
# Lambda's own 413 instead of aiohttp's; larger bodies are refused by aiohttp itself.
MAX_BODY_BYTES = 16 * 1024 * 1024


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body of a control-plane call: a JSON object, or {} when empty."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("The request body must be a JSON object.")
    return body


def aws_error_response(error: AwsError) -> web.Response:
    status, headers, body = error.to_response_parts()
    return web.Response(status=status, headers=headers, body=body)


def aws_errors(handler: Handler) -> Handler:
    """Wrap one handler so every failure becomes an AWS-shaped response.

    A wrapper per route rather than an aiohttp middleware: middlewares add a call chain to
    every request, which showed in profiles of the invoke hot path.
    """

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AwsError as error:
            return aws_error_response(error)
        except web.HTTPRequestEntityTooLarge:
            return aws_error_response(RequestTooLarge("Request must be smaller than 6291456 bytes for the Invoke operation"))
        except web.HTTPException:
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            return aws_error_response(ServiceError("The emulator failed to process the request; see its log."))

    return wrapped


class RoutedRequest(web.BaseRequest):
    """A request of the low-level server, with the values its route's path captured."""

    ATTRS = web.BaseRequest.ATTRS | frozenset({"match_info"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.match_info: dict[str, str] = {}


_PARAM_RE = re.compile(r"\{(\w+)\}")


def _path_regex(path: str) -> re.Pattern[str]:
    # "/functions/{name}/invocations" -> one raw (still URL-encoded) segment per {param}.
    parts = _PARAM_RE.split(path)
    pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(pattern)


class Router:
    """Method + path -> handler for aiohttp's low-level server.

    aiohttp's Application (router, middleware and sub-app machinery) cost about a fifth
    of an invoke's control-plane time in profiles; our table has two dozen routes and the
    invoke route is tried first.
    """

    def __init__(self, routes: list[web.RouteDef], fallback: Handler) -> None:
        self._routes = [(route.method, _path_regex(route.path), aws_errors(route.handler)) for route in routes]
        self._fallback = aws_errors(fallback)

    async def __call__(self, request: RoutedRequest) -> web.StreamResponse:
        # Match the raw path, then decode each value, as aiohttp's router does: an encoded
        # "/" inside a function name is part of the name (and then invalid), not a separator.
        method, path = request.method, request.rel_url.raw_path
        for route_method, regex, handler in self._routes:
            if route_method == method:
                match = regex.fullmatch(path)
                if match is not None:
                    request.match_info = {key: unquote(value) for key, value in match.groupdict().items()}
                    return await handler(request)
        return await self._fallback(request)


def build_server(routes: list[web.RouteDef], fallback: Handler, fast_invoke: Any = None) -> web.Server:
    """The low-level server; with `fast_invoke`, connections start on emulator/api/fast_invoke.py."""

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> RoutedRequest:
        return RoutedRequest(message, payload, protocol, writer, task, protocol._loop, client_max_size=MAX_BODY_BYTES)

    if fast_invoke is None:
        return web.Server(Router(routes, fallback), request_factory=make_request, access_log=None)
    from emulator.api.fast_invoke import FastInvokeServer

    return FastInvokeServer(
        Router(routes, fallback), invoke=fast_invoke, max_body=MAX_BODY_BYTES, request_factory=make_request, access_log=None
    )
