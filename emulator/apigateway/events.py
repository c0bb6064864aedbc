"""Lambda proxy integration: the event API Gateway sends, and how it reads the answer. Pure.

Payload format 1.0 (REST APIs, and HTTP APIs that ask for it):
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
Payload format 2.0 (HTTP APIs' default), and 2.0's inference of a response from a bare
string or object:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
A proxy response in the wrong shape is API Gateway's 502 (REST) or 500 (HTTP API):
https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qsl

from emulator.apigateway.routing import RouteMatch
from emulator.policy.authorizer_policy import stringified_context
from emulator.template.api_specs import HTTP, REST

# The keys a format 1.0 proxy response may have; any other makes it malformed (ibid.).
V1_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# What REST APIs answer when the function gives no Content-Type, and what HTTP APIs infer
# for a response without statusCode (the 2.0 page above). A 2.0 response with statusCode but
# no Content-Type: AWS does not say; we send text/plain (README 'Choices').
REST_DEFAULT_CONTENT_TYPE = "application/json"
V2_INFERRED_CONTENT_TYPE = "application/json"
V2_DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
# Request bodies an HTTP API passes as text; any other Content-Type is base64-encoded (AWS
# does not list them; README 'Choices').
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "application/ecmascript")
_TEXT_SUFFIXES = ("+json", "+xml")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(slots=True)
class GatewayRequest:
    """A request as the gateway received it."""

    method: str
    raw_path: str  # path as received, still percent-encoded, no query
    raw_query: str
    headers: list[tuple[str, str]]  # as received: order and case kept
    body: bytes
    source_ip: str
    host: str
    port: int
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the gateway knows about a request besides the request itself."""

    request_id: str
    extended_request_id: str
    account_id: str
    region: str
    received_wall: float  # epoch seconds
    api_key: str | None = None  # the key value and id, when the method required one
    api_key_id: str | None = None
    # What a Lambda authorizer let through: `principalId` and its `context` (REST: values as
    # strings), and the authorizer's latency in ms; None when the route has no Lambda authorizer.
    authorizer: "AuthorizerOutcome | None" = None


@dataclass(frozen=True, slots=True)
class AuthorizerOutcome:
    principal_id: str | None
    context: Mapping[str, Any]
    latency_ms: int
    simple: bool = False  # an HTTP API simple response (no principal)


@dataclass(slots=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedResponse(ValueError):
    """The function's answer is not a valid proxy response."""


def request_time(wall: float) -> str:
    """`12/Mar/2020:19:03:58 +0000`, the format of requestContext.requestTime / time. Every
    request of a second has the same text: it is formatted once per second (a profile put
    the formatting at ~1 % of a gateway request)."""
    second = int(wall)
    if second != _last_time[0]:
        moment = datetime.fromtimestamp(second, timezone.utc)
        _last_time[:] = [second, f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:"
                                 f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"]
    return _last_time[1]  # type: ignore[return-value]


_last_time: list[object] = [None, ""]


def domain_of(host: str, api_id: str, region: str) -> str:
    name = host.split(":", 1)[0] if host and not host.startswith("[") else host
    return name or f"{api_id}.execute-api.{region}.amazonaws.com"


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def matches_media_types(value: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether a media type matches one of an API's binary media types (`image/*`, `*/*`)."""
    kind = media_type(value)
    if not kind or not patterns:
        return False
    main, _, sub = kind.partition("/")
    for pattern in patterns:
        p_main, _, p_sub = pattern.strip().lower().partition("/")
        if p_main in ("*", main) and p_sub in ("*", sub):
            return True
    return False


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True) if raw_query else []


# --- payload format 1.0 ------------------------------------------------------------------------


def body_v1(request: GatewayRequest, binary_types: tuple[str, ...]) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    if matches_media_types(header_value(request.headers, "content-type"), binary_types):
        return base64.b64encode(request.body).decode(), True
    return request.body.decode("utf-8", "replace"), False


def _identity(request: GatewayRequest, context: EventContext) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
        "sourceIp": request.source_ip, "principalOrgId": None, "accessKey": None,
        "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
        "userAgent": header_value(request.headers, "user-agent"), "user": None,
    }
    if context.api_key is not None:
        identity["apiKey"] = context.api_key
        identity["apiKeyId"] = context.api_key_id
    return identity


def forwarded_headers(request: GatewayRequest) -> list[tuple[str, str]]:
    """What the client sent, plus the X-Forwarded-* headers API Gateway adds."""
    names = {key.lower() for key, _ in request.headers}
    headers = list(request.headers)
    if "x-forwarded-for" not in names:
        headers.append(("X-Forwarded-For", request.source_ip))
    if "x-forwarded-port" not in names:
        headers.append(("X-Forwarded-Port", str(request.port)))
    if "x-forwarded-proto" not in names:
        headers.append(("X-Forwarded-Proto", "http"))
    return headers


def event_v1(request: GatewayRequest, match: RouteMatch, context: EventContext) -> dict[str, Any]:
    """The format 1.0 event: REST APIs, and HTTP API routes with payloadFormatVersion 1.0."""
    api = match.api
    headers = forwarded_headers(request) if api.kind == REST else list(request.headers)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in headers:
        single[key] = value  # the last value of a repeated header
        multi.setdefault(key, []).append(value)
    pairs = query_pairs(request.raw_query)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    body, encoded = body_v1(request, api.binary_media_types)
    domain = domain_of(request.host, api.api_id, context.region)
    route = match.route
    stage = match.stage.name
    request_context: dict[str, Any] = {
        "accountId": context.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "extendedRequestId": context.extended_request_id,
        "httpMethod": request.method,
        "identity": _identity(request, context),
        "path": request.raw_path,
        "protocol": request.protocol,
        "requestId": context.request_id,
        "requestTime": request_time(context.received_wall),
        "requestTimeEpoch": int(context.received_wall * 1000),
        "resourceId": match.resource_id or None,
        "resourcePath": route.path,
        "stage": stage,
    }
    event: dict[str, Any] = {
        "resource": route.path,
        "path": match.path,
        "httpMethod": request.method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters,
        "stageVariables": dict(match.stage.variables) or None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": encoded,
    }
    if api.kind == REST:
        request_context["deploymentId"] = match.api.api_id[:6]
        if context.authorizer is not None:
            request_context["authorizer"] = authorizer_v1(context.authorizer, stringify=True)
    else:
        event = {"version": "1.0", **event}
        request_context["authorizer"] = ({"claims": None, "scopes": None} if context.authorizer is None
                                         else authorizer_v1(context.authorizer, stringify=False))
    return event


def authorizer_v1(outcome: AuthorizerOutcome, stringify: bool) -> dict[str, Any]:
    """`requestContext.authorizer` of a format 1.0 event behind a Lambda authorizer: the
    context's keys, `principalId` and `integrationLatency` (the authorizer's)
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html)."""
    values: dict[str, Any] = stringified_context(outcome.context) if stringify else dict(outcome.context)
    if outcome.principal_id is not None:
        values["principalId"] = outcome.principal_id
    values["integrationLatency"] = outcome.latency_ms
    return values


# --- payload format 2.0 ------------------------------------------------------------------------


def is_text_media_type(value: str | None) -> bool:
    kind = media_type(value)
    return bool(kind) and (kind.startswith(_TEXT_TYPES) or kind.endswith(_TEXT_SUFFIXES))


def body_v2(body: bytes, content_type: str | None) -> tuple[str, bool]:
    if is_text_media_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


def event_v2(request: GatewayRequest, match: RouteMatch, context: EventContext) -> dict[str, Any]:
    """The format 2.0 event of HTTP APIs: headers lower-cased and repeated values joined with
    commas, cookies apart, query parameters joined with commas."""
    headers, cookies, query = v2_fields(request)
    domain = domain_of(request.host, match.api.api_id, context.region)
    route_key = match.route.key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": context.account_id,
        "apiId": match.api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": context.request_id,
        "routeKey": route_key,
        **({"authorizer": {"lambda": dict(context.authorizer.context)}} if context.authorizer is not None else {}),
        "stage": match.stage.name,
        "time": request_time(context.received_wall),
        "timeEpoch": int(context.received_wall * 1000),
    }
    if request.body:
        event["body"], event["isBase64Encoded"] = body_v2(request.body, headers.get("content-type"))
    else:
        event["isBase64Encoded"] = False
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if match.stage.variables:
        event["stageVariables"] = dict(match.stage.variables)
    return event


def v2_fields(request: GatewayRequest) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """A format 2.0 event's headers, cookies and query parameters."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers:
        name = key.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for key, value in query_pairs(request.raw_query):
        query[key] = f"{query[key]},{value}" if key in query else value
    return headers, cookies, query


def build_event(request: GatewayRequest, match: RouteMatch, context: EventContext) -> dict[str, Any]:
    integration = match.route.integration
    assert integration is not None
    if match.api.kind == HTTP and integration.payload_format == "2.0":
        return event_v2(request, match, context)
    return event_v1(request, match, context)


# --- responses ---------------------------------------------------------------------------------


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedResponse(f"statusCode {value!r} is not an integer")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # the JSON parser API Gateway uses accepts a numeric string
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status")
    return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    raise MalformedResponse(f"{what} {value!r} is not a string")


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MalformedResponse(f"isBase64Encoded {value!r} is not a boolean")


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{what} must be an object")
    return value


def _merged_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`headers` and `multiValueHeaders` merged; a name in both keeps multiValueHeaders' values."""
    multi = _mapping(result.get("multiValueHeaders"), "multiValueHeaders")
    headers: list[tuple[str, str]] = []
    for name, value in _mapping(result.get("headers"), "headers").items():
        if name not in multi and value is not None:
            headers.append((str(name), _text(value, f"header {name}")))
    for name, values in multi.items():
        if values is None:
            continue
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders {name} must be a list")
        headers.extend((str(name), _text(value, f"header {name}")) for value in values)
    return headers


def _decode_body(body: str, encoded: bool) -> bytes:
    if not encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse("isBase64Encoded is true but body is not base64") from None


def map_response_v1(payload: bytes, binary_types: tuple[str, ...], accept: str | None, kind: str) -> GatewayResponse:
    """A format 1.0 proxy response. REST APIs decode a base64 body only for a binary media
    type: "API Gateway uses the first Accept header from clients to determine if a response
    should return binary media"
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/lambda-proxy-binary-media.html);
    HTTP APIs decode whenever isBase64Encoded is true."""
    try:
        result = json.loads(payload)
    except (ValueError, RecursionError):
        raise MalformedResponse("the response is not JSON") from None
    if not isinstance(result, dict):
        raise MalformedResponse("the response is not a JSON object")
    unknown = set(result) - V1_RESPONSE_KEYS
    if unknown:
        raise MalformedResponse(f"unexpected field(s) {', '.join(sorted(unknown))}")
    if "statusCode" not in result:
        raise MalformedResponse("statusCode is missing")
    status = _status(result["statusCode"])
    headers = _merged_headers(result)
    body = result.get("body")
    if isinstance(body, (dict, list)):
        raise MalformedResponse("body must be a string")
    body_text = "" if body is None else _text(body, "body")
    encoded = _flag(result.get("isBase64Encoded"))
    if kind == REST:
        first_accept = (accept or "").split(",", 1)[0]
        content_type = header_value(headers, "content-type")
        binary = matches_media_types(first_accept or content_type, binary_types) if encoded else False
        data = _decode_body(body_text, binary)
        if content_type is None:
            headers.append(("Content-Type", REST_DEFAULT_CONTENT_TYPE))
    else:
        data = _decode_body(body_text, encoded)
        if header_value(headers, "content-type") is None:
            headers.append(("Content-Type", REST_DEFAULT_CONTENT_TYPE))
    return GatewayResponse(status, headers, data)


def map_response_v2(payload: bytes) -> GatewayResponse:
    """A format 2.0 response: an object with statusCode is read as one; anything else valid
    JSON is the body of a 200 with Content-Type application/json (a string unquoted)."""
    try:
        result = json.loads(payload)
    except (ValueError, RecursionError):
        raise MalformedResponse("the response is not JSON") from None
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result.encode() if isinstance(result, str) else payload
        return GatewayResponse(200, [("Content-Type", V2_INFERRED_CONTENT_TYPE)], body)
    status = _status(result["statusCode"])
    headers = [(str(name), _text(value, f"header {name}"))
               for name, value in _mapping(result.get("headers"), "headers").items() if value is not None]
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies must be a list")
    headers.extend(("Set-Cookie", _text(cookie, "cookie")) for cookie in cookies)
    body = result.get("body")
    if isinstance(body, (dict, list)):
        raise MalformedResponse("body must be a string")
    data = _decode_body("" if body is None else _text(body, "body"), _flag(result.get("isBase64Encoded")))
    if header_value(headers, "content-type") is None:
        headers.append(("Content-Type", V2_DEFAULT_CONTENT_TYPE))
    return GatewayResponse(status, headers, data)


def map_response(payload: bytes, match: RouteMatch, accept: str | None) -> GatewayResponse:
    integration = match.route.integration
    assert integration is not None
    if match.api.kind == HTTP and integration.payload_format == "2.0":
        return map_response_v2(payload)
    return map_response_v1(payload, match.api.binary_media_types, accept, match.api.kind)
