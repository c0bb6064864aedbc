"""The HTTP front door: one route table, one error serialiser, nothing else.

Handlers live in the *_api modules and stay thin (STYLE.md principle 6). Whatever goes
wrong, the client gets an AWS-shaped error; a traceback only ever reaches our own log.
"""

from __future__ import annotations

import functools
import json
import logging
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


def build_app(routes: list[web.RouteDef], fallback: Handler | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args={"access_log": None})
    app.add_routes([web.route(r.method, r.path, aws_errors(r.handler), **r.kwargs) for r in routes])
    if fallback is not None:
        app.router.add_route("*", "/{tail:.*}", aws_errors(fallback))
    return app
