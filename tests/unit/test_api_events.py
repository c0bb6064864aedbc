"""Lambda proxy events and response mapping (emulator/apigateway/events.py), field by field as
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
and https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
give them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from emulator.apigateway.event_json import encode_event
from emulator.apigateway.events import (
    AuthorizerOutcome, EventContext, GatewayRequest, MalformedResponse, build_event, event_v1, event_v2, map_response_v1,
    map_response_v2, matches_media_types, request_time,
)
from emulator.apigateway.routing import Catalogue, RouteMatch
from emulator.template.api_specs import HTTP, REST, ApiSpec, IntegrationSpec, RouteSpec, StageSpec

WALL = 1_583_348_638.390  # 04/Mar/2020:19:03:58 +0000
CONTEXT = EventContext("req-1", "ext-1=", "123456789012", "us-east-1", WALL)


def request(method: str, path: str, query: str = "", headers: list[tuple[str, str]] | None = None,
            body: bytes = b"") -> GatewayRequest:
    return GatewayRequest(method, path, query, headers or [("Host", "127.0.0.1:3000"), ("User-Agent", "ua")], body,
                          "10.0.0.9", "127.0.0.1:3000", 3000)


def matched(kind: str, route: str, path: str, method: str = "GET", binary: tuple[str, ...] = (),
            payload: str = "1.0", stage: StageSpec | None = None) -> RouteMatch:
    route_method, route_path = route.split(" ") if route != "$default" else ("ANY", "$default")
    spec = ApiSpec("Api", "abcdef1234", kind, "api", (RouteSpec(route_method, route_path, IntegrationSpec("fn", None, payload, 1000)),),
                   (stage or StageSpec("Prod" if kind == REST else "$default"),), binary)
    found = Catalogue([spec]).lookup("127.0.0.1:3000", method, path)
    assert isinstance(found, RouteMatch)
    return found


def test_request_time_format() -> None:
    assert request_time(WALL) == "04/Mar/2020:19:03:58 +0000"


def test_rest_event_payload_1_0() -> None:
    req = request("POST", "/Prod/pets/7", "a=1&a=2&b=", [("Host", "127.0.0.1:3000"), ("User-Agent", "ua"),
                                                        ("X-Multi", "1"), ("X-Multi", "2"), ("Content-Type", "application/json")],
                  b'{"x": 1}')
    match = matched(REST, "POST /pets/{id}", "/Prod/pets/7", "POST",
                    stage=StageSpec("Prod", {"env": "test"}))
    event = event_v1(req, match, CONTEXT)
    assert event == {
        "resource": "/pets/{id}",
        "path": "/pets/7",
        "httpMethod": "POST",
        "headers": {"Host": "127.0.0.1:3000", "User-Agent": "ua", "X-Multi": "2", "Content-Type": "application/json",
                    "X-Forwarded-For": "10.0.0.9", "X-Forwarded-Port": "3000", "X-Forwarded-Proto": "http"},
        "multiValueHeaders": {"Host": ["127.0.0.1:3000"], "User-Agent": ["ua"], "X-Multi": ["1", "2"],
                              "Content-Type": ["application/json"], "X-Forwarded-For": ["10.0.0.9"],
                              "X-Forwarded-Port": ["3000"], "X-Forwarded-Proto": ["http"]},
        "queryStringParameters": {"a": "2", "b": ""},
        "multiValueQueryStringParameters": {"a": ["1", "2"], "b": [""]},
        "pathParameters": {"id": "7"},
        "stageVariables": {"env": "test"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234", "domainName": "127.0.0.1", "domainPrefix": "127",
            "extendedRequestId": "ext-1=", "httpMethod": "POST",
            "identity": {"cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
                         "sourceIp": "10.0.0.9", "principalOrgId": None, "accessKey": None,
                         "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
                         "userAgent": "ua", "user": None},
            "path": "/Prod/pets/7", "protocol": "HTTP/1.1", "requestId": "req-1",
            "requestTime": "04/Mar/2020:19:03:58 +0000", "requestTimeEpoch": 1583348638390,
            "resourceId": match.resource_id, "resourcePath": "/pets/{id}", "stage": "Prod",
            "deploymentId": "abcdef",
        },
        "body": '{"x": 1}',
        "isBase64Encoded": False,
    }


def test_rest_event_without_query_parameters_or_body_has_nulls_and_api_key_identity() -> None:
    context = EventContext("r", "e=", "1", "us-east-1", WALL, "the-key", "key-id")
    event = event_v1(request("GET", "/Prod/"), matched(REST, "GET /", "/Prod/"), context)
    assert [event[k] for k in ("queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
                               "stageVariables", "body")] == [None] * 5
    assert (event["path"], event["resource"]) == ("/", "/")
    assert (event["requestContext"]["identity"]["apiKey"], event["requestContext"]["identity"]["apiKeyId"]) == ("the-key", "key-id")


def test_rest_binary_request_body_is_base64_for_a_binary_media_type() -> None:
    body = bytes(range(256))
    req = request("PUT", "/Prod/up", headers=[("Content-Type", "image/png")], body=body)
    event = event_v1(req, matched(REST, "PUT /up", "/Prod/up", "PUT", binary=("image/*",)), CONTEXT)
    assert (event["isBase64Encoded"], base64.b64decode(event["body"])) == (True, body)


def test_http_api_event_payload_2_0() -> None:
    req = request("GET", "/pets/7", "a=1&a=2", [("Host", "h"), ("User-Agent", "ua"), ("X-Multi", "1"), ("x-multi", "2"),
                                                 ("Cookie", "c1=v1; c2=v2")])
    match = matched(HTTP, "GET /pets/{id}", "/pets/7", payload="2.0")
    assert event_v2(req, match, CONTEXT) == {
        "version": "2.0",
        "routeKey": "GET /pets/{id}",
        "rawPath": "/pets/7",
        "rawQueryString": "a=1&a=2",
        "cookies": ["c1=v1", "c2=v2"],
        "headers": {"host": "h", "user-agent": "ua", "x-multi": "1,2"},
        "queryStringParameters": {"a": "1,2"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234", "domainName": "127.0.0.1", "domainPrefix": "127",
            "http": {"method": "GET", "path": "/pets/7", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.9", "userAgent": "ua"},
            "requestId": "req-1", "routeKey": "GET /pets/{id}", "stage": "$default",
            "time": "04/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390,
        },
        "isBase64Encoded": False,
        "pathParameters": {"id": "7"},
    }


@pytest.mark.parametrize(("content_type", "encoded"), [
    ("application/json", False), ("text/plain; charset=utf-8", False), ("application/vnd.api+json", False),
    ("application/octet-stream", True), ("application/x-www-form-urlencoded", True), (None, True),
])
def test_http_api_body_is_text_only_for_text_media_types(content_type: str | None, encoded: bool) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    event = event_v2(request("POST", "/x", headers=headers, body=b"a=1"), matched(HTTP, "$default", "/x", "POST", payload="2.0"), CONTEXT)
    assert event["isBase64Encoded"] is encoded
    assert event["body"] == (base64.b64encode(b"a=1").decode() if encoded else "a=1")


def test_http_api_format_1_0_carries_a_version() -> None:
    event = event_v1(request("GET", "/x"), matched(HTTP, "GET /x", "/x"), CONTEXT)
    assert event["version"] == "1.0" and event["requestContext"]["stage"] == "$default"
    assert "X-Forwarded-For" not in event["headers"]


# --- responses -----------------------------------------------------------------------------


def v1(result: Any, binary: tuple[str, ...] = (), accept: str | None = None, kind: str = REST):
    return map_response_v1(json.dumps(result).encode(), binary, accept, kind)


def test_v1_response_headers_merge_with_multi_value_winning() -> None:
    response = v1({"statusCode": 201, "headers": {"A": "1", "B": "x"}, "multiValueHeaders": {"B": ["y", "z"]},
                   "body": "hi"})
    assert (response.status, response.body) == (201, b"hi")
    assert response.headers == [("A", "1"), ("B", "y"), ("B", "z"), ("Content-Type", "application/json")]


@pytest.mark.parametrize("result", [
    {"body": "no status"}, {"statusCode": 200, "body": {"an": "object"}}, {"statusCode": 200, "extra": 1},
    {"statusCode": "abc"}, {"statusCode": 99}, "a string", [1, 2], {"statusCode": 200, "headers": "x"},
])
def test_v1_malformed_responses(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        v1(result)


def test_a_body_that_is_not_base64_is_malformed_where_it_is_decoded() -> None:
    result = {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"}
    assert v1(result).body == b"not base64!"  # REST without a binary media type passes it on
    with pytest.raises(MalformedResponse):
        v1(result, kind=HTTP)


def test_v1_numeric_string_status_and_missing_body() -> None:
    response = v1({"statusCode": "204"})
    assert (response.status, response.body) == (204, b"")


def test_rest_decodes_base64_only_for_a_binary_accept() -> None:
    data = base64.b64encode(b"\x00\x01binary").decode()
    result = {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "body": data, "isBase64Encoded": True}
    assert v1(result, ("image/png",), "image/png, */*").body == b"\x00\x01binary"
    assert v1(result, ("image/png",), "text/html, image/png").body == data.encode()  # the first Accept decides
    assert v1(result, (), "image/png").body == data.encode()  # no binary media types
    assert v1(result, ("*/*",), None).body == b"\x00\x01binary"  # no Accept: the Content-Type
    assert v1(result, (), None, kind=HTTP).body == b"\x00\x01binary"  # HTTP APIs always decode


@pytest.mark.parametrize(("returned", "body"), [
    ("Hello from Lambda!", b"Hello from Lambda!"),
    ({"message": "Hello from Lambda!"}, b'{"message": "Hello from Lambda!"}'),
    ([1, 2], b"[1, 2]"),
    (None, b"null"),
])
def test_v2_infers_a_response_without_status_code(returned: Any, body: bytes) -> None:
    response = map_response_v2(json.dumps(returned).encode())
    assert (response.status, response.headers, response.body) == (200, [("Content-Type", "application/json")], body)


def test_v2_structured_response_with_cookies() -> None:
    response = map_response_v2(json.dumps({"statusCode": 302, "headers": {"Location": "/x"}, "cookies": ["a=1", "b=2"],
                                           "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True}).encode())
    assert response.status == 302 and response.body == b"\xff"
    assert response.headers == [("Location", "/x"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                ("Content-Type", "text/plain; charset=utf-8")]


@pytest.mark.parametrize("result", [{"statusCode": "x"}, {"statusCode": 200, "body": {"a": 1}}, {"statusCode": 200, "cookies": "a"}])
def test_v2_malformed(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        map_response_v2(json.dumps(result).encode())


def test_media_type_patterns() -> None:
    assert matches_media_types("image/png; q=1", ("image/*",))
    assert matches_media_types("application/pdf", ("*/*",))
    assert not matches_media_types("text/html", ("image/*",))
    assert not matches_media_types(None, ("*/*",))


_VARIED_HEADERS = [
    [],
    [("Host", "h"), ("X-Multi", "1"), ("x-multi", "2"), ("X-Multi", "3")],
    [("Host", "ü.example"), ("X-Quote", 'a "b" \\ c'), ("X-Ctl", "tab\there"), ("User-Agent", "ä€😀")],
    [("Cookie", "a=1; b=2"), ("X-Forwarded-For", "1.2.3.4"), ("Content-Type", "image/png")],
    [("Content-Type", "text/plain; charset=utf-8"), ("Host", "h:1"), ("cookie", "c=3")],
]


@pytest.mark.parametrize("headers", _VARIED_HEADERS)
@pytest.mark.parametrize("query", ["", "a=1&a=2&b=&c=%C3%BC&d=%zz"])
@pytest.mark.parametrize("body", [b"", b'{"x": "\\u00fc"}', "ü".encode(), b"\xff\x00\x89PNG"])
@pytest.mark.parametrize(("kind", "payload"), [(REST, "1.0"), (HTTP, "1.0"), (HTTP, "2.0")])
@pytest.mark.parametrize("extra", ["none", "api-key", "authorizer", "stage-variables"])
def test_encode_event_writes_the_bytes_json_dumps_gives(headers: list[tuple[str, str]], query: str, body: bytes,
                                                        kind: str, payload: str, extra: str) -> None:
    stage = StageSpec("Prod" if kind == REST else "$default", {"env": "t\u00e9st"} if extra == "stage-variables" else {})
    path = "/Prod/pets/7%20x" if kind == REST else "/pets/7%20x"
    match = matched(kind, "POST /pets/{id}", path, "POST", binary=("image/png",), payload=payload, stage=stage)
    context = CONTEXT
    if extra == "api-key":
        context = EventContext("req-1", "ext-1=", "123456789012", "us-east-1", WALL, "key-value", "key-id")
    elif extra == "authorizer":
        context = EventContext("req-1", "ext-1=", "123456789012", "us-east-1", WALL,
                               authorizer=AuthorizerOutcome("me", {"n": 1, "s": "x"}, 3))
    req = GatewayRequest("POST", path, query, headers, body, "10.0.0.9", headers[0][1] if headers else "", 3000)
    assert encode_event(req, match, context) == json.dumps(build_event(req, match, context)).encode()
