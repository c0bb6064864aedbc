"""The HTTP front door: one route table, one error serialiser, nothing else.

Handlers live in the *_api modules and stay thin (parse, call a service, serialise). Whatever goes
wrong, the client gets an AWS-shaped error; a traceback only ever reaches our own log. The
router also keeps the general path's side of shutdown: it knows the requests in flight and,
at the deadline, answers each of them (emulator/server.py drives it).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from urllib.parse import unquote
from typing import Any, Awaitable, Callable

from aiohttp import web

from emulator.api import edge
from emulator.api.edge import RequestTimeout, error_response
from emulator.api.fast_invoke import FastInvokeServer
from emulator.errors import AwsError, InvalidRequestContent, RequestEntityTooLarge, ServiceError

log = logging.getLogger("emulator.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = edge.MAX_BODY_BYTES


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def parse_json(raw: bytes | str, decoder: json.JSONDecoder | None = None, what: str = "") -> Any:
    """JSON, or Lambda's InvalidRequestContentException (its message names `what` could not
    be parsed, after the request body). Nesting deeper than the interpreter's recursion limit
    (~1,000, also the default limit of Jackson, the JVM parser AWS's Java services use) is
    refused instead of failing with RecursionError."""
    prefix = "Could not parse request body into json: " + what
    try:
        return (decoder or _DECODER).decode(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(f"{prefix}{exc}") from None
    except RecursionError:
        raise InvalidRequestContent(f"{prefix}the JSON is nested too deeply.") from None


_DECODER = json.JSONDecoder()


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body of a control-plane call: a JSON object, or {} when empty."""
    raw = await request.read()
    if not raw:
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequestContent("The request body must be a JSON object.")
    return body


def aws_error_response(error: AwsError) -> web.Response:
    return error_response(error)


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
            return aws_error_response(edge.payload_too_large())
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
        # A route may allow a larger body than MAX_BODY_BYTES: `max_body=(bytes, operation)`
        # in its RouteDef (a deployment package upload is up to ~67 MB).
        self._routes = [(route.method, _path_regex(route.path), aws_errors(route.handler), route.kwargs.get("max_body"))
                        for route in routes]
        self._fallback = aws_errors(fallback)
        self._in_flight: set[asyncio.Task] = set()
        self._deadline_error: AwsError | None = None
        self.shutting_down = False

    async def __call__(self, request: RoutedRequest) -> web.StreamResponse:
        if self.shutting_down:
            return error_response(edge.ShuttingDown("The emulator is shutting down."), close=True)
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            return await self._dispatch(request)
        except asyncio.CancelledError:
            if self._deadline_error is None:
                raise
            return error_response(self._deadline_error, close=True)
        finally:
            self._in_flight.discard(task)

    async def _dispatch(self, request: RoutedRequest) -> web.StreamResponse:
        # Match the raw path, then decode each value, as aiohttp's router does: an encoded
        # "/" inside a function name is part of the name (and then invalid), not a separator.
        method, path = request.method, request.rel_url.raw_path
        for route_method, regex, handler, max_body in self._routes:
            if route_method == method:
                match = regex.fullmatch(path)
                if match is not None:
                    request.match_info = {key: unquote(value) for key, value in match.groupdict().items()}
                    refused = await self._read_body(request, max_body)
                    return refused if refused is not None else await handler(request)
        refused = await self._read_body(request, None)
        return refused if refused is not None else await self._fallback(request)

    @staticmethod
    async def _read_body(request: RoutedRequest, max_body: tuple[int, str] | None) -> web.StreamResponse | None:
        """The whole body, within the body timeout (a stalled client is answered 408);
        handlers then read it from aiohttp's cache. None when it was read."""
        if not request.body_exists:
            return None
        if max_body is not None:
            request._client_max_size = max_body[0]  # aiohttp reads at most this much
        try:
            await asyncio.wait_for(request.read(), edge.BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.info("rejected a request from %s: its body did not arrive within %g s", request.remote, edge.BODY_TIMEOUT_S)
            return error_response(RequestTimeout(f"The request body did not arrive within {edge.BODY_TIMEOUT_S:g} s."), close=True)
        except web.HTTPRequestEntityTooLarge:
            if max_body is not None:
                limit, operation = max_body
                return aws_error_response(RequestEntityTooLarge(f"Request must be smaller than {limit} bytes for the {operation} operation"))
            return aws_error_response(edge.payload_too_large())
        except ConnectionError:  # the client left mid-body: nobody to answer
            log.debug("a client left while sending %s %s", request.method, request.path)
            return error_response(RequestTimeout("The connection closed before the request body arrived."), close=True)
        return None

    @property
    def requests_in_flight(self) -> int:
        return len(self._in_flight)

    def answer_remaining(self, error: AwsError) -> None:
        """At the shutdown deadline: each handler still running is cancelled and its request
        answered `error` (the invocation behind it is stopped with its environment anyway)."""
        self._deadline_error = error
        for task in list(self._in_flight):
            task.cancel()


def build_server(routes: list[web.RouteDef], fallback: Handler, fast_invoke: Any) -> FastInvokeServer:
    """The low-level server; connections start on emulator/api/fast_invoke.py."""

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> RoutedRequest:
        return RoutedRequest(message, payload, protocol, writer, task, protocol._loop, client_max_size=MAX_BODY_BYTES)

    return FastInvokeServer(Router(routes, fallback), invoke=fast_invoke, request_factory=make_request, access_log=None)
