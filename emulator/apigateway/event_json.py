"""The Lambda proxy event (emulator/apigateway/events.py) written as JSON. Pure.

json.dumps(build_event(...)) was the largest share of a request through the gateway (the C
encoder spends ~10 us on a REST event on the benchmark machine, docs/benchmarks.md).
encode_event writes the same bytes with the encoder's own string quoting, without building
the dicts first; tests/unit/test_api_events.py holds it to json.dumps(build_event(...)) byte
for byte. An event with a Lambda authorizer's context takes json.dumps (not the hot path).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quoted  # json.dumps' own string encoder

from emulator.apigateway.events import (
    EventContext, GatewayRequest, body_v1, body_v2, domain_of, event_v1, event_v2, forwarded_headers, header_value,
    query_pairs, request_time, v2_fields,
)
from emulator.apigateway.routing import RouteMatch
from emulator.template.api_specs import HTTP, REST

_IDENTITY_HEAD = ('"identity": {"cognitoIdentityPoolId": null, "accountId": null, "cognitoIdentityId": null, '
                  '"caller": null, "sourceIp": ')
_IDENTITY_MIDDLE = (', "principalOrgId": null, "accessKey": null, "cognitoAuthenticationType": null, '
                    '"cognitoAuthenticationProvider": null, "userArn": null, "userAgent": ')


def _headers_json(headers: list[tuple[str, str]]) -> tuple[str, str]:
    """`headers` and `multiValueHeaders` of a format 1.0 event, as JSON."""
    if not headers:
        return "null", "null"
    if len({key for key, _ in headers}) != len(headers):  # a repeated name: the dicts' order rules
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for key, value in headers:
            single[key] = value
            multi.setdefault(key, []).append(value)
        return json.dumps(single), json.dumps(multi)
    singles, multis = [], []
    for key, value in headers:
        name, text = _quoted(key), _quoted(value)
        singles.append(name + ": " + text)
        multis.append(name + ": [" + text + "]")
    return "{" + ", ".join(singles) + "}", "{" + ", ".join(multis) + "}"


def _optional(value: str | None) -> str:
    return "null" if value is None else _quoted(value)


def encode_event_v1(request: GatewayRequest, match: RouteMatch, context: EventContext) -> bytes:
    """json.dumps(event_v1(request, match, context)).encode(), key for key."""
    if context.authorizer is not None:
        return json.dumps(event_v1(request, match, context)).encode()
    api = match.api
    rest = api.kind == REST
    headers_json, multi_json = _headers_json(forwarded_headers(request) if rest else request.headers)
    query_json = multi_query_json = "null"
    if pairs := query_pairs(request.raw_query):
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in pairs:
            query[key] = value
            multi_query.setdefault(key, []).append(value)
        query_json, multi_query_json = json.dumps(query), json.dumps(multi_query)
    body, encoded = body_v1(request, api.binary_media_types)
    domain = domain_of(request.host, api.api_id, context.region)
    route = match.route
    method = _quoted(request.method)
    parts = [
        '{"version": "1.0", "resource": ' if not rest else '{"resource": ', _quoted(route.path),
        ', "path": ', _quoted(match.path), ', "httpMethod": ', method,
        ', "headers": ', headers_json, ', "multiValueHeaders": ', multi_json,
        ', "queryStringParameters": ', query_json, ', "multiValueQueryStringParameters": ', multi_query_json,
        ', "pathParameters": ', "null" if match.path_parameters is None else json.dumps(match.path_parameters),
        ', "stageVariables": ', json.dumps(dict(match.stage.variables)) if match.stage.variables else "null",
        ', "requestContext": {"accountId": ', _quoted(context.account_id), ', "apiId": ', _quoted(api.api_id),
        ', "domainName": ', _quoted(domain), ', "domainPrefix": ', _quoted(domain.split(".", 1)[0]),
        ', "extendedRequestId": ', _quoted(context.extended_request_id), ', "httpMethod": ', method,
        ", ", _IDENTITY_HEAD, _quoted(request.source_ip), _IDENTITY_MIDDLE,
        _optional(header_value(request.headers, "user-agent")), ', "user": null',
    ]
    if context.api_key is not None:
        parts += [', "apiKey": ', _quoted(context.api_key), ', "apiKeyId": ', _optional(context.api_key_id)]
    parts += [
        '}, "path": ', _quoted(request.raw_path), ', "protocol": ', _quoted(request.protocol),
        ', "requestId": ', _quoted(context.request_id), ', "requestTime": ', _quoted(request_time(context.received_wall)),
        ', "requestTimeEpoch": ', str(int(context.received_wall * 1000)),
        ', "resourceId": ', _quoted(match.resource_id) if match.resource_id else "null",
        ', "resourcePath": ', _quoted(route.path), ', "stage": ', _quoted(match.stage.name),
        ', "deploymentId": ' + _quoted(api.api_id[:6]) + "}" if rest else ', "authorizer": {"claims": null, "scopes": null}}',
        ', "body": ', _optional(body), ', "isBase64Encoded": ', "true" if encoded else "false", "}",
    ]
    return "".join(parts).encode()


def _object_json(values: dict[str, str]) -> str:
    return "{" + ", ".join(_quoted(key) + ": " + _quoted(value) for key, value in values.items()) + "}"


def encode_event_v2(request: GatewayRequest, match: RouteMatch, context: EventContext) -> bytes:
    """json.dumps(event_v2(request, match, context)).encode(), key for key."""
    if context.authorizer is not None:
        return json.dumps(event_v2(request, match, context)).encode()
    headers, cookies, query = v2_fields(request)
    domain = domain_of(request.host, match.api.api_id, context.region)
    route_key = _quoted(match.route.key)
    parts = ['{"version": "2.0", "routeKey": ', route_key, ', "rawPath": ', _quoted(request.raw_path),
             ', "rawQueryString": ', _quoted(request.raw_query)]
    if cookies:
        parts += [', "cookies": [', ", ".join(map(_quoted, cookies)), "]"]
    parts += [', "headers": ', _object_json(headers)]
    if query:
        parts += [', "queryStringParameters": ', _object_json(query)]
    parts += [
        ', "requestContext": {"accountId": ', _quoted(context.account_id), ', "apiId": ', _quoted(match.api.api_id),
        ', "domainName": ', _quoted(domain), ', "domainPrefix": ', _quoted(domain.split(".", 1)[0]),
        ', "http": {"method": ', _quoted(request.method), ', "path": ', _quoted(request.raw_path),
        ', "protocol": ', _quoted(request.protocol), ', "sourceIp": ', _quoted(request.source_ip),
        ', "userAgent": ', _quoted(headers.get("user-agent", "")), '}, "requestId": ', _quoted(context.request_id),
        ', "routeKey": ', route_key, ', "stage": ', _quoted(match.stage.name),
        ', "time": ', _quoted(request_time(context.received_wall)), ', "timeEpoch": ', str(int(context.received_wall * 1000)), "}",
    ]
    if request.body:
        body, encoded = body_v2(request.body, headers.get("content-type"))
        parts += [', "body": ', _quoted(body), ', "isBase64Encoded": ', "true" if encoded else "false"]
    else:
        parts.append(', "isBase64Encoded": false')
    if match.path_parameters:
        parts += [', "pathParameters": ', json.dumps(match.path_parameters)]
    if match.stage.variables:
        parts += [', "stageVariables": ', json.dumps(dict(match.stage.variables))]
    parts.append("}")
    return "".join(parts).encode()


def encode_event(request: GatewayRequest, match: RouteMatch, context: EventContext) -> bytes:
    """The event of build_event as the bytes json.dumps gives."""
    integration = match.route.integration
    assert integration is not None
    if match.api.kind == HTTP and integration.payload_format == "2.0":
        return encode_event_v2(request, match, context)
    return encode_event_v1(request, match, context)
