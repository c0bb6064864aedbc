"""API Gateway's throttling layers and usage plans through real HTTP, and the management calls
answered from what the gateway serves.

Limits here have a rate of 0 (or a rate so small that nothing refills during a test), so
the counts are exact without any timing: a burst of N admits exactly N requests.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any, Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from apigw_testkit import Reply, gateway_metrics, request
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator, start_emulator
from emulator.server import StartupError
from emulator.template.api_ids import api_id, derived_id

pytestmark = pytest.mark.scenario

OK = """
def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
"""
GOOD_KEY, OFF_KEY, STRAY_KEY = "good-key-0123456789abcdef", "off-key-0123456789abcdef", "stray-key-0123456789abcdef"


def event(api: str, path: str, key: bool | None = None, kind: str = "Api") -> dict[str, Any]:
    props: dict[str, Any] = {"Path": path, "Method": "get", ("RestApiId" if kind == "Api" else "ApiId"): {"Ref": api}}
    if key is not None:
        props["Auth"] = {"ApiKeyRequired": key}
    return {"Type": kind, "Properties": props}


def api_key(value: str, enabled: bool = True) -> dict[str, Any]:
    return {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Value": value, "Enabled": enabled}}


TEMPLATE = {
    "Limited": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "MethodSettings": [
        {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 0, "ThrottlingBurstLimit": 3},
        {"ResourcePath": "/~1method", "HttpMethod": "GET", "ThrottlingRateLimit": 0, "ThrottlingBurstLimit": 1}]}},
    "Keyed": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "live"}},
    "Metered": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "v1", "Auth": {
        "ApiKeyRequired": True, "UsagePlan": {"CreateUsagePlan": "PER_API", "Quota": {"Limit": 3, "Period": "DAY"}}}}},
    "Offset": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "v1", "Auth": {
        "ApiKeyRequired": True, "UsagePlan": {"CreateUsagePlan": "PER_API",
                                              "Quota": {"Limit": 5, "Offset": 3, "Period": "WEEK"}}}}},
    "Http": {"Type": "AWS::Serverless::HttpApi", "Properties": {
        "DefaultRouteSettings": {"ThrottlingRateLimit": 0, "ThrottlingBurstLimit": 2},
        "RouteSettings": {"GET /r/own": {"ThrottlingRateLimit": 0, "ThrottlingBurstLimit": 1}}}},
    "Plan": {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {
        "UsagePlanName": "gold", "Throttle": {"RateLimit": 0, "BurstLimit": 4},
        "ApiStages": [{"ApiId": {"Ref": "Keyed"}, "Stage": {"Ref": "Keyed.Stage"},
                       "Throttle": {"/k-method/GET": {"RateLimit": 0, "BurstLimit": 1}}}]}},
    "Good": api_key(GOOD_KEY), "Off": api_key(OFF_KEY, enabled=False), "Stray": api_key(STRAY_KEY),
    "GoodInPlan": {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
        "KeyId": {"Ref": "Good"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}},
    "OffInPlan": {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
        "KeyId": {"Ref": "Off"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}},
    "Fn": inline_function(OK, Events={
        "Default": event("Limited", "/default"), "Other": event("Limited", "/other"), "Method": event("Limited", "/method"),
        "K": event("Keyed", "/k", key=True), "KMethod": event("Keyed", "/k-method", key=True),
        "Free": event("Keyed", "/free"), "M": event("Metered", "/m"), "O": event("Offset", "/o"),
        "RDefault": event("Http", "/r/default", kind="HttpApi"), "ROwn": event("Http", "/r/own", kind="HttpApi"),
    }),
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(TEMPLATE, backend="none") as handle:
        yield handle


def statuses(gw: Callable[..., Reply], path: str, count: int, key: str | None = None) -> Counter:
    headers = {"x-api-key": key} if key else {}
    return Counter(gw("GET", path, headers=headers).status for _ in range(count))


def layers(handle: EmulatorHandle, api: str, stage: str, route: str) -> dict[str, int]:
    return gateway_metrics(handle, api_id(api), stage)["Routes"][route]["ThrottlesByLayer"]


# --- stage, method and route limits --------------------------------------------------------------


def test_stage_default_applies_to_each_method_on_its_own(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert statuses(gw, "/Prod/default", 5) == Counter({200: 3, 429: 2})
    assert statuses(gw, "/Prod/other", 4) == Counter({200: 3, 429: 1})  # its own bucket
    reply = gw("GET", "/Prod/default")
    assert (reply.status, reply.body) == (429, b'{"message":"Too Many Requests"}')
    assert reply.header("x-amzn-ErrorType") == "TooManyRequestsException"
    assert layers(emu, "Limited", "Prod", "GET /default") == {"stage": 3}


def test_method_settings_override_the_stage_default(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert statuses(gw, "/Prod/method", 3) == Counter({200: 1, 429: 2})
    assert layers(emu, "Limited", "Prod", "GET /method") == {"method": 2}


def test_http_default_route_settings_and_route_settings(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert statuses(gw, "/r/default", 4) == Counter({200: 2, 429: 2})
    assert statuses(gw, "/r/own", 3) == Counter({200: 1, 429: 2})
    assert layers(emu, "Http", "$default", "GET /r/own") == {"route": 2}
    assert gw("GET", "/r/own").body == b'{"message":"Too Many Requests"}'


def test_reset_fills_the_buckets_again(gw: Callable[..., Reply], emu: EmulatorHandle) -> None:
    assert statuses(gw, "/Prod/method", 2) == Counter({200: 1, 429: 1})
    emu.reset()
    assert statuses(gw, "/Prod/method", 1) == Counter({200: 1})


# --- API keys and usage plans --------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "no-such-key-0123456789", OFF_KEY, STRAY_KEY])
def test_a_missing_unknown_disabled_or_planless_key_is_forbidden(gw: Callable[..., Reply], key: str | None) -> None:
    reply = gw("GET", "/live/k", headers={"x-api-key": key} if key else {})
    assert (reply.status, reply.body, reply.header("x-amzn-ErrorType")) == (403, b'{"message":"Forbidden"}', "ForbiddenException")


def test_methods_without_a_required_key_ignore_usage_plans(gw: Callable[..., Reply]) -> None:
    assert statuses(gw, "/live/free", 6) == Counter({200: 6})


def test_usage_plan_limits_per_key_then_per_method(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert statuses(gw, "/live/k-method", 3, GOOD_KEY) == Counter({200: 1, 429: 2})
    assert layers(emu, "Keyed", "live", "GET /k-method") == {"usage-plan-method": 2}
    # The plan's burst of 4 for the key covers its methods together: 1 spent above.
    assert statuses(gw, "/live/k", 5, GOOD_KEY) == Counter({200: 3, 429: 2})
    assert layers(emu, "Keyed", "live", "GET /k") == {"usage-plan": 2}


def test_quota_spent_is_limit_exceeded(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    keys = emu.client("apigateway").get_api_keys(includeValues=True)["items"]
    value = next(k["value"] for k in keys if k["name"] == "MeteredApiKey")
    assert statuses(gw, "/v1/m", 3, value) == Counter({200: 3})
    reply = gw("GET", "/v1/m", headers={"x-api-key": value})
    assert (reply.status, reply.body, reply.header("x-amzn-ErrorType")) == (
        429, b'{"message":"Limit Exceeded"}', "LimitExceededException")
    plan = emu.metrics()["api_gateway"]["usage_plans"][derived_id("usage-plan", "MeteredUsagePlan")]
    assert plan["Keys"][derived_id("api-key", "MeteredApiKey")] == {"Name": "MeteredApiKey", "QuotaUsed": 3, "QuotaRemaining": 0}
    assert layers(emu, "Metered", "v1", "GET /m") == {"quota": 1}


def test_quota_offset_lowers_the_first_period(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    keys = emu.client("apigateway").get_api_keys(includeValues=True)["items"]
    value = next(k["value"] for k in keys if k["name"] == "OffsetApiKey")
    assert statuses(gw, "/v1/o", 4, value) == Counter({200: 2, 429: 2})


# --- the account ----------------------------------------------------------------------------------


def test_account_limit_divided_by_the_scale_factor_and_the_lambda_throttle_status(lambda_emulator_factory: Any) -> None:
    zero = inline_function(OK, ReservedConcurrentExecutions=0, Events={"Z": {"Type": "HttpApi", "Properties": {"Path": "/z", "Method": "get"}}})
    free = inline_function(OK, Events={"F": {"Type": "HttpApi", "Properties": {"Path": "/f", "Method": "get"}},
                                       "R": {"Type": "Api", "Properties": {"Path": "/f", "Method": "get"}}})
    emu = lambda_emulator_factory({"Zero": zero, "Free": free}, backend="none", api_account_rate=0.001,
                                  api_account_burst=8, scale_factor=2, api_lambda_throttle_status=503)
    gw = lambda path: request(emu.api_url, "GET", path)
    assert gw("/z").status == 503  # Lambda throttled the function: the status chosen
    # Burst 8 / 2 = 4, shared by every API of the account: 1 spent above.
    assert Counter(gw(path).status for path in ("/f", "/Prod/f", "/f", "/Prod/f", "/f")) == Counter({200: 3, 429: 2})
    snapshot = emu.metrics()["api_gateway"]
    assert snapshot["account"]["BurstLimit"] == 4 and snapshot["account"]["Throttles"] == 2


def test_a_taken_api_port_fails_start_up_with_the_option_to_change(tmp_path: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match="--api-port"):
            start_emulator({"Fn": inline_function(OK, Events={"G": {"Type": "HttpApi"}})}, backend="none", api_port=port)


# --- the management calls -------------------------------------------------------------------------


def test_management_calls_answer_what_is_served(emu: EmulatorHandle) -> None:
    v1, v2 = emu.client("apigateway"), emu.client("apigatewayv2")
    names = {api["name"]: api for api in v1.get_rest_apis()["items"]}
    assert set(names) == {"Limited", "Keyed", "Metered", "Offset"}
    limited = names["Limited"]["id"]
    assert limited == api_id("Limited") and v1.get_rest_api(restApiId=limited)["name"] == "Limited"
    resources = {r["path"]: r for r in v1.get_resources(restApiId=limited, embed=["methods"])["items"]}
    assert set(resources) == {"/", "/default", "/other", "/method"}
    method = resources["/method"]["resourceMethods"]["GET"]
    assert method["methodIntegration"]["type"] == "AWS_PROXY" and method["apiKeyRequired"] is False
    (prod, extra) = v1.get_stages(restApiId=limited)["item"]
    assert (prod["stageName"], extra["stageName"]) == ("Prod", "Stage")
    assert prod["methodSettings"]["*/*"]["throttlingBurstLimit"] == 3
    assert prod["methodSettings"]["~1method/GET"]["throttlingBurstLimit"] == 1
    plans = {plan["name"]: plan for plan in v1.get_usage_plans()["items"]}
    assert plans["gold"]["throttle"] == {"burstLimit": 4, "rateLimit": 0.0}
    assert plans["gold"]["apiStages"] == [{"apiId": api_id("Keyed"), "stage": "live",
                                           "throttle": {"/k-method/GET": {"burstLimit": 1, "rateLimit": 0.0}}}]
    assert plans["MeteredUsagePlan"]["quota"] == {"limit": 3, "offset": 0, "period": "DAY"}
    keys = {key["name"]: key for key in v1.get_api_keys(includeValues=True)["items"]}
    assert keys["Good"]["value"] == GOOD_KEY and keys["Off"]["enabled"] is False
    assert "value" not in v1.get_api_keys()["items"][0]
    plan_keys = v1.get_usage_plan_keys(usagePlanId=plans["gold"]["id"])["items"]
    assert sorted(k["value"] for k in plan_keys) == sorted([GOOD_KEY, OFF_KEY])
    (http,) = v2.get_apis()["Items"]
    assert (http["ApiId"], http["ProtocolType"]) == (api_id("Http"), "HTTP")
    assert sorted(r["RouteKey"] for r in v2.get_routes(ApiId=http["ApiId"])["Items"]) == ["GET /r/default", "GET /r/own"]
    (stage,) = v2.get_stages(ApiId=http["ApiId"])["Items"]
    assert stage["StageName"] == "$default" and stage["RouteSettings"]["GET /r/own"]["ThrottlingBurstLimit"] == 1
    with pytest.raises(ClientError) as missing:
        v1.get_rest_api(restApiId="nosuchapi0")
    assert missing.value.response["Error"]["Code"] == "NotFoundException"


# --- bad requests -----------------------------------------------------------------------------------


def raw(handle: EmulatorHandle, data: bytes) -> bytes:
    port = handle.server.gateway.port  # type: ignore[union-attr]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("data", [
    b"GET /Prod/default HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /Prod/default HTTP/1.1\r\nHost : x\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_malformed_requests_get_400_and_the_gateway_serves_on(emu: EmulatorHandle, gw: Callable[..., Reply], data: bytes) -> None:
    answer = raw(emu, data)
    assert answer.split(b" ", 2)[1] == b"400" and answer.endswith(b'{"message":"Bad Request"}')
    assert gw("GET", "/free-check-after-bad-input").status in (403, 404)
    assert gw("GET", "/live/free").status == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/Prod/%ZZ%"), ("GET", "/Prod//default"), ("GET", "/.." * 50), ("GET", "/Prod/a?x=%ff%fe"),
])
def test_odd_requests_get_api_gateways_answers(gw: Callable[..., Reply], method: str, path: str) -> None:
    reply = gw(method, path)
    assert reply.status in (200, 403, 404, 429)
    assert reply.body.startswith(b"{") or reply.body == b"ok"


def test_an_unknown_method_is_refused_by_the_parser(gw: Callable[..., Reply]) -> None:
    reply = gw("FOO", "/Prod/default")
    assert (reply.status, reply.body) == (400, b'{"message":"Bad Request"}')


def test_buckets_refill_on_the_emulators_clock(lambda_emulator_factory: Any) -> None:
    """--time-scale speeds the refill up like every emulated timer: at one request per 20
    emulated seconds, a time scale of 10^6 refills the bucket between any two requests (a
    round trip takes far more than 20 us), while at 1 nothing refills within the test."""
    template = {"Http": {"Type": "AWS::Serverless::HttpApi", "Properties": {
        "DefaultRouteSettings": {"ThrottlingRateLimit": 0.05, "ThrottlingBurstLimit": 1}}},
        "Fn": inline_function(OK, Events={"G": event("Http", "/g", kind="HttpApi")})}
    fast = lambda_emulator_factory(template, backend="none", time_scale=1_000_000)
    assert Counter(request(fast.api_url, "GET", "/g").status for _ in range(5)) == Counter({200: 5})
    slow = lambda_emulator_factory(template, backend="none")
    assert Counter(request(slow.api_url, "GET", "/g").status for _ in range(5)) == Counter({200: 1, 429: 4})
