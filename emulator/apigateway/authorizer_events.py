"""What a Lambda authorizer is sent, and the identity it is cached by. Pure.

REST TOKEN: `{"type": "TOKEN", "authorizationToken", "methodArn"}`; REST REQUEST: the request
as a format 1.0 event without its body, with `"type": "REQUEST"` and `methodArn`
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-input.html).
HTTP APIs: payload 2.0 is the 2.0 event without its body, with `"type": "REQUEST"`,
`routeArn` and `identitySource` (a list); payload 1.0 the 1.0 event with `methodArn`,
`identitySource` and `authorizationToken` (the identity values joined by commas)
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from emulator.apigateway.events import EventContext, GatewayRequest, event_v1, event_v2
from emulator.apigateway.routing import RouteMatch
from emulator.template.api_specs import HTTP, TOKEN, AuthorizerSpec, IdentitySource

_BODY_KEYS = ("body", "isBase64Encoded")


def _header(request: GatewayRequest, name: str) -> str | None:
    lower = name.lower()
    values = [value for key, value in request.headers if key.lower() == lower]
    return ",".join(values) if values else None


def _dotted(tree: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def identity_values(request: GatewayRequest, match: RouteMatch, sources: tuple[IdentitySource, ...],
                    context: EventContext) -> list[str | None]:
    """Each identity source's value; None (or "") where the request lacks it."""
    values: list[str | None] = []
    request_context: dict[str, Any] | None = None
    for source in sources:
        if source.where == "header":
            values.append(_header(request, source.name))
        elif source.where == "querystring":
            found = [v for k, v in parse_qsl(request.raw_query, keep_blank_values=True) if k == source.name]
            values.append(",".join(found) if found else None)
        elif source.where == "stageVariables":
            values.append(match.stage.variables.get(source.name))
        else:  # context variables: read from the request context the event would carry
            if request_context is None:
                request_context = event_v1(request, match, context)["requestContext"]
            value = _dotted(request_context, source.name)
            values.append(None if value is None else str(value))
    return values


def _without_body(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key not in _BODY_KEYS}


def authorizer_event(authorizer: AuthorizerSpec, request: GatewayRequest, match: RouteMatch, context: EventContext,
                     arn: str, values: list[str | None]) -> dict[str, Any]:
    if authorizer.kind == TOKEN:
        return {"type": "TOKEN", "authorizationToken": values[0] if values else "", "methodArn": arn}
    present = [value for value in values if value]
    if authorizer.api_kind == HTTP and authorizer.payload_format == "2.0":
        event = _without_body(event_v2(request, match, context))
        return {"version": "2.0", "type": "REQUEST", "routeArn": arn, "identitySource": present,
                **{k: v for k, v in event.items() if k != "version"}}
    event = _without_body(event_v1(request, match, context))
    extra: dict[str, Any] = {}
    if authorizer.api_kind == HTTP:  # HTTP APIs' format 1.0 names the identity like a token
        extra = {"identitySource": ",".join(present), "authorizationToken": ",".join(present)}
    head = {"version": event.pop("version")} if "version" in event else {}
    return {**head, "type": "REQUEST", "methodArn": arn, **extra, **event}
