"""API Gateway in front of the functions, through real HTTP: routing, the proxy events, response
mapping, API Gateway's error answers and headers, and the integration timeout.

One emulator serves the module (reset before each test); its template has a REST API, an
HTTP API and SAM's implicit REST API. Exact counts are held with gates the test opens.
"""

from __future__ import annotations

import base64
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from apigw_testkit import Reply, gateway_metrics, request
from core_testkit import GATED_HANDLER_SOURCE, Gate, function_metrics, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator, start_emulator
from emulator.template.api_ids import api_id

pytestmark = pytest.mark.scenario

BEHAVE = GATED_HANDLER_SOURCE + """
import base64, json
def handler(event, context):
    query = event.get("queryStringParameters") or {}
    if query.get("gate"):
        wait_at_gate({"gate": query["gate"]}, context)
    mode = query.get("mode", "echo")
    if mode == "malformed":
        return {"statusCode": 200, "unexpected": True}
    if mode == "error":
        raise RuntimeError("boom")
    if mode == "string":
        return "just a string"
    if mode == "object":
        return {"message": "hi"}
    if mode == "binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode(), "isBase64Encoded": True}
    if mode == "cookies":
        return {"statusCode": 201, "cookies": ["a=1", "b=2"], "body": "c"}
    if mode == "huge":
        return {"statusCode": 200, "body": "x" * 7_000_000}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-One": "1"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]}, "body": json.dumps(event)}
"""
REST = "Rest"
HTTP = "Http"


def rest_event(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"Type": "Api", "Properties": {"RestApiId": {"Ref": REST}, "Path": path, "Method": method, **extra}}


def http_event(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": HTTP}, "Path": path, "Method": method, **extra}}


TEMPLATE = {
    REST: {"Type": "AWS::Serverless::Api", "Properties": {
        "StageName": "Prod", "Variables": {"env": "test"}, "BinaryMediaTypes": ["image~1png"]}},
    HTTP: {"Type": "AWS::Serverless::HttpApi", "Properties": {"StageVariables": {"tier": "http"}}},
    "Behave": inline_function(BEHAVE, Timeout=30, Events={
        "RestEcho": rest_event("/echo/{id}"),
        "RestBehave": rest_event("/behave", "ANY"),
        "RestUpload": rest_event("/upload", "POST"),
        "RestProxy": rest_event("/files/{proxy+}"),
        "RestSlow": rest_event("/slow", TimeoutInMillis=300),
        "HttpEcho": http_event("/h/echo/{id}"),
        "HttpBehave": http_event("/h/behave", "ANY"),
        "HttpV1": http_event("/h/v1", PayloadFormatVersion="1.0"),
        "HttpSlow": http_event("/h/slow", TimeoutInMillis=300),
        "Implicit": {"Type": "Api", "Properties": {"Path": "/implicit", "Method": "get"}},
    }),
    "Single": inline_function(BEHAVE, Timeout=30, ReservedConcurrentExecutions=1, Events={
        "RestSingle": rest_event("/single"), "HttpSingle": http_event("/h/single")}),
    "Zero": inline_function(BEHAVE, ReservedConcurrentExecutions=0, Events={
        "RestZero": rest_event("/zero"), "HttpZero": http_event("/h/zero")}),
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(TEMPLATE, backend="none") as handle:
        yield handle


@pytest.fixture
def new_gate(tmp_path: Path) -> Callable[[], Gate]:
    counter = itertools.count()
    return lambda: Gate(tmp_path / f"gate-{next(counter)}")


# --- routing and the events --------------------------------------------------------------------


def test_rest_payload_1_0_through_the_stage_prefix(gw: Callable[..., Reply]) -> None:
    reply = gw("POST", "/Prod/behave?mode=echo&a=1&a=2", headers={"X-Multi": "1", "Content-Type": "application/json"},
               body=b'{"x": 1}')
    assert reply.status == 200
    event = reply.json()
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/behave", "/behave", "POST")
    assert event["multiValueQueryStringParameters"] == {"mode": ["echo"], "a": ["1", "2"]}
    assert event["queryStringParameters"]["a"] == "2"
    assert event["stageVariables"] == {"env": "test"} and event["body"] == '{"x": 1}'
    context = event["requestContext"]
    assert (context["stage"], context["resourcePath"], context["path"], context["apiId"]) == (
        "Prod", "/behave", "/Prod/behave", api_id(REST))
    # The ids in the event are the ones on the answer.
    assert reply.header("x-amzn-RequestId") == context["requestId"]
    assert reply.header("x-amz-apigw-id") == context["extendedRequestId"]
    assert reply.all("X-Multi") == ["a", "b"] and reply.header("X-One") == "1"
    assert context["identity"]["sourceIp"] == "127.0.0.1"


def test_path_parameters_greedy_proxy_and_the_implicit_api(gw: Callable[..., Reply]) -> None:
    event = gw("GET", "/Prod/echo/a%20b").json()
    assert (event["resource"], event["pathParameters"]) == ("/echo/{id}", {"id": "a b"})
    event = gw("GET", "/Prod/files/x/y/z.txt").json()
    assert event["pathParameters"] == {"proxy": "x/y/z.txt"}
    event = gw("GET", "/Prod/implicit").json()
    assert event["requestContext"]["apiId"] == api_id("ServerlessRestApi")
    # SAM's extra stage serves the same routes.
    assert gw("GET", "/Stage/echo/1").json()["requestContext"]["stage"] == "Stage"


def test_http_api_payload_2_0_and_1_0(gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/h/echo/7?q=1&q=2", headers={"Cookie": "c1=v1; c2=v2", "X-Dup": "1"})
    assert reply.status == 200 and reply.header("apigw-requestid") and reply.header("x-amzn-RequestId") is None
    event = reply.json()
    assert (event["version"], event["routeKey"], event["rawPath"], event["rawQueryString"]) == (
        "2.0", "GET /h/echo/{id}", "/h/echo/7", "q=1&q=2")
    assert event["queryStringParameters"] == {"q": "1,2"} and event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["pathParameters"] == {"id": "7"} and event["stageVariables"] == {"tier": "http"}
    assert event["requestContext"]["requestId"] == reply.header("apigw-requestid")
    assert "cookie" not in event["headers"] and event["headers"]["x-dup"] == "1"
    v1 = gw("GET", "/h/v1").json()
    assert v1["version"] == "1.0" and v1["requestContext"]["stage"] == "$default"


def test_execute_api_host_routing(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    port = emu.server.gateway.port  # type: ignore[union-attr]
    reply = gw("GET", "/Prod/echo/1", host=f"{api_id(REST)}.execute-api.localhost:{port}")
    assert reply.status == 200 and reply.json()["requestContext"]["domainName"] == f"{api_id(REST)}.execute-api.localhost"
    # The same path on the HTTP API's host is that API's: no such route there.
    assert gw("GET", "/Prod/echo/1", host=f"{api_id(HTTP)}.execute-api.localhost:{port}").status == 404
    unknown = gw("GET", "/Prod/echo/1", host=f"nosuchapi0.execute-api.localhost:{port}")
    assert unknown.status == 404


# --- response mapping -----------------------------------------------------------------------------


def test_binary_responses_follow_the_binary_media_types(gw: Callable[..., Reply]) -> None:
    png = b"\x89PNG\x00\xff"
    assert gw("GET", "/Prod/behave?mode=binary", headers={"Accept": "image/png"}).body == png
    assert gw("GET", "/Prod/behave?mode=binary", headers={"Accept": "text/html"}).body == base64.b64encode(png)
    assert gw("GET", "/h/behave?mode=binary").body == png  # HTTP APIs decode isBase64Encoded bodies


def test_binary_request_bodies(gw: Callable[..., Reply]) -> None:
    body = bytes(range(256))
    event = gw("POST", "/Prod/upload", headers={"Content-Type": "image/png"}, body=body).json()
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == body
    event = gw("POST", "/h/behave", headers={"Content-Type": "application/octet-stream"}, body=body).json()
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == body


def test_payload_2_0_inference_and_cookies(gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/h/behave?mode=string")
    assert (reply.status, reply.header("Content-Type"), reply.body) == (200, "application/json", b"just a string")
    reply = gw("GET", "/h/behave?mode=object")
    assert (reply.status, reply.json()) == (200, {"message": "hi"})
    reply = gw("GET", "/h/behave?mode=cookies")
    assert (reply.status, reply.all("Set-Cookie"), reply.body) == (201, ["a=1", "b=2"], b"c")


# --- API Gateway's own answers ----------------------------------------------------------------------


def test_unknown_routes(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/Prod/nothing")
    assert (reply.status, reply.body) == (403, b'{"message":"Missing Authentication Token"}')
    assert reply.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException" and reply.header("x-amzn-RequestId")
    assert gw("DELETE", "/Prod/echo/1").status == 403  # a resource without that method
    rest_host = f"{api_id(REST)}.execute-api.localhost:{emu.server.gateway.port}"  # type: ignore[union-attr]
    assert gw("GET", "/NoStage/echo/1", host=rest_host).status == 403  # no such stage
    # Without an API's host, the HTTP API's $default stage takes what no REST stage does.
    assert gw("GET", "/NoStage/echo/1").status == 404
    reply = gw("GET", "/h/nothing")
    assert (reply.status, reply.body) == (404, b'{"message":"Not Found"}')
    assert reply.header("apigw-requestid") and reply.header("x-amzn-ErrorType") is None


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/Prod/behave?mode=malformed", 502, b'{"message": "Internal server error"}'),
    ("/Prod/behave?mode=error", 502, b'{"message": "Internal server error"}'),
    ("/Prod/behave?mode=string", 502, b'{"message": "Internal server error"}'),
    ("/Prod/behave?mode=huge", 502, b'{"message": "Internal server error"}'),  # over Lambda's 6 MB response
    ("/h/behave?mode=error", 500, b'{"message":"Internal Server Error"}'),
    ("/h/v1?mode=malformed", 500, b'{"message":"Internal Server Error"}'),
])
def test_function_errors_and_malformed_responses(gw: Callable[..., Reply], path: str, status: int, body: bytes) -> None:
    reply = gw("GET", path)
    assert (reply.status, reply.body) == (status, body)


def test_a_lambda_throttle_is_api_gateways_500(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/Prod/zero")
    assert (reply.status, reply.body) == (500, b'{"message": "Internal server error"}')
    assert gw("GET", "/h/zero").status == 500
    assert function_metrics(emu, "Zero")["Throttles"] == 2
    stage = gateway_metrics(emu, api_id(REST), "Prod")
    assert stage["LambdaThrottles"] == 1 and stage["5XXError"] == 1


def test_gateway_invocations_share_the_functions_concurrency(emu: EmulatorHandle, gw: Callable[..., Reply],
                                                             new_gate: Callable[[], Gate]) -> None:
    gate = new_gate()
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(gw, "GET", f"/Prod/single?gate={gate.path}")
        assert wait_until(lambda: gate.arrived() == 1)
        # Reserved concurrency 1 is held: a direct Invoke and a second request are throttled.
        assert gw("GET", "/h/single").status == 500
        with pytest.raises(Exception, match="TooManyRequests"):
            emu.invoke("Single", {})
        gate.open()
        assert held.result().status == 200
    assert function_metrics(emu, "Single")["Throttles"] == 2


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/Prod/slow", 504, b'{"message": "Endpoint request timed out"}'),
    ("/h/slow", 503, b'{"message":"Service Unavailable"}'),
])
def test_integration_timeout_answers_while_the_invocation_runs_on(
        emu: EmulatorHandle, gw: Callable[..., Reply], new_gate: Callable[[], Gate], path: str, status: int, body: bytes) -> None:
    gate = new_gate()
    reply = gw("GET", f"{path}?gate={gate.path}")
    assert (reply.status, reply.body) == (status, body)
    # Held at the gate (a slow cold start may still be on its way there): it runs on.
    assert wait_until(lambda: gate.arrived() == 1) and function_metrics(emu, "Behave")["Invocations"] == 0
    gate.open()
    assert wait_until(lambda: function_metrics(emu, "Behave")["Invocations"] == 1)
    assert function_metrics(emu, "Behave")["Errors"] == 0
    kind_stage = (api_id(REST), "Prod") if path.startswith("/Prod") else (api_id(HTTP), "$default")
    assert gateway_metrics(emu, *kind_stage)["IntegrationTimeouts"] == 1


def test_payload_limits(gw: Callable[..., Reply]) -> None:
    reply = gw("POST", "/Prod/upload", headers={"Content-Type": "text/plain"}, body=b"x" * (10 * 1024 * 1024 + 1))
    assert (reply.status, reply.body) == (413, b'{"message":"Request Too Long"}')
    reply = gw("POST", "/h/behave", body=b"x" * (10 * 1024 * 1024 + 1))
    assert (reply.status, reply.body) == (413, b'{"message":"Request Entity Too Large"}') and reply.header("apigw-requestid")
    # Under API Gateway's 10 MB but over Lambda's 6 MB: Lambda refuses the event.
    reply = gw("POST", "/Prod/upload", headers={"Content-Type": "text/plain"}, body=b"x" * (7 * 1024 * 1024))
    assert (reply.status, reply.body) == (500, b'{"message": "Internal server error"}')
    assert gw("GET", "/Prod/echo/1").status == 200  # and the gateway serves on


def test_metrics_use_cloudwatchs_names(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    gw("GET", "/Prod/echo/1")
    gw("GET", "/Prod/behave?mode=error")
    gw("GET", "/Prod/nothing")
    gw("GET", "/h/echo/1")
    rest = gateway_metrics(emu, api_id(REST), "Prod")
    assert (rest["Count"], rest["4XXError"], rest["5XXError"]) == (3, 1, 1)
    assert rest["Latency"]["SampleCount"] == 3 and rest["IntegrationLatency"]["SampleCount"] == 2
    assert rest["Routes"]["GET /echo/{id}"]["Count"] == 1 and rest["Routes"]["ANY /behave"]["5XXError"] == 1
    http = gateway_metrics(emu, api_id(HTTP), "$default")
    assert (http["Count"], http["4xx"], http["5xx"]) == (1, 0, 0)


def test_shutdown_answers_a_request_still_waiting_at_the_deadline(new_gate: Callable[[], Gate]) -> None:
    handle = start_emulator({"Behave": inline_function(BEHAVE, Timeout=30, Events={"H": {"Type": "HttpApi"}})},
                            backend="none", shutdown_timeout=0.5)
    gate = new_gate()
    try:
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(request, handle.api_url, "GET", f"/x?gate={gate.path}")
            assert wait_until(lambda: gate.arrived() == 1)
            handle.stop()
            reply = held.result()
    finally:
        handle.stop()
    assert (reply.status, reply.body) == (503, b'{"message":"Service Unavailable"}')


def test_an_openapi_definition_with_an_api_key_scheme_and_an_integration_not_served(lambda_emulator_factory: Any) -> None:
    uri = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Behave.Arn}/invocations"}
    body = {
        "swagger": "2.0",
        "securityDefinitions": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}},
        "paths": {"/items": {
            "get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": uri}},
            "post": {"security": [{"api_key": []}],
                     "x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": uri}},
            "delete": {"x-amazon-apigateway-integration": {"type": "mock"}},
        }},
    }
    emu = lambda_emulator_factory({
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "v1", "DefinitionBody": body}},
        "Behave": inline_function(BEHAVE),
    }, backend="none")
    assert request(emu.api_url, "GET", "/v1/items").json()["resource"] == "/items"
    assert request(emu.api_url, "POST", "/v1/items").status == 403  # a key is required, and none opens it
    reply = request(emu.api_url, "DELETE", "/v1/items")
    assert (reply.status, reply.body) == (500, b'{"message": "Internal server error"}')
