"""REST stage caching and authorizers through real HTTP: hits answered without invoking (exact
hit and miss counts), cache keys, `Cache-Control: max-age=0`, Lambda authorizers (REST TOKEN
and REQUEST, HTTP API simple and IAM-policy answers), identity sources, result caching,
policies evaluated per method, authorizer failures and throttles, AWS_IAM.

One emulator serves the module (reset before each test). Every answer of the function
carries the request id it was invoked for, so a cached answer is recognisable, and the
functions' Invocations count the invocations exactly.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-caching.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterator

import pytest

from apigw_testkit import Reply, gateway_metrics
from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator
from emulator.template.api_ids import api_id

pytestmark = pytest.mark.scenario

ECHO = """
import json
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-From": "fn"},
            "body": json.dumps({"id": context.aws_request_id, "authorizer": event["requestContext"].get("authorizer"),
                                "path": event["path"] if "path" in event else event["rawPath"]})}
"""
# A TOKEN / REQUEST authorizer: the token (or the `who` query string) says what to answer.
AUTHORIZER = """
def handler(event, context):
    token = event.get("authorizationToken") or (event.get("queryStringParameters") or {}).get("who") or ""
    word = token.split(" ")[-1]
    arn = event["methodArn"]
    base = arn.split("/", 1)[0]
    if word == "unauthorized":
        raise Exception("Unauthorized")
    if word == "boom":
        raise ValueError("the authorizer broke")
    if word == "bad":
        return {"principalId": "x"}
    effect, resource = {"allow": ("Allow", base + "/*"), "deny": ("Deny", arn), "other": ("Allow", base + "/*/POST/*"),
                        "narrow": ("Allow", base + "/*/GET/a")}[word]
    return {"principalId": "alice", "policyDocument": {"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
        "context": {"user": "alice", "n": 3, "ok": True, "type": event["type"]}}
"""
SIMPLE = """
def handler(event, context):
    token = event["headers"].get("x-token")
    return {"isAuthorized": token == "yes", "context": {"who": token, "type": event["type"], "arn": event["routeArn"],
                                                        "sources": event["identitySource"]}}
"""
POLICY_V1 = """
def handler(event, context):
    return {"principalId": "bob", "policyDocument": {"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:*", "Effect": "Allow", "Resource": event["methodArn"].rsplit("/", 2)[0] + "/*"}]},
        "context": {"token": event["authorizationToken"], "version": event["version"]}}
"""
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/execute-api/aws4_request, "
                           "SignedHeaders=host, Signature=0123456789abcdef"}


def rest(api: str, path: str, method: str = "GET", **props: Any) -> dict[str, Any]:
    return {"Type": "Api", "Properties": {"RestApiId": {"Ref": api}, "Path": path, "Method": method, **props}}


def http(path: str, **props: Any) -> dict[str, Any]:
    return {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": path, "Method": "GET", **props}}


def query_key(name: str) -> dict[str, Any]:
    return {"RequestParameters": [{f"method.request.querystring.{name}": {"Required": False, "Caching": True}}]}


TEMPLATE = {
    "Cached": {"Type": "AWS::Serverless::Api", "Properties": {
        "StageName": "c", "CacheClusterEnabled": True, "CacheClusterSize": "0.5", "MethodSettings": [
            {"ResourcePath": "/*", "HttpMethod": "*", "CachingEnabled": True, "CacheTtlInSeconds": 3600},
            {"ResourcePath": "/~1post", "HttpMethod": "POST", "CachingEnabled": True},
            {"ResourcePath": "/~1off", "HttpMethod": "GET", "CachingEnabled": False},
            {"ResourcePath": "/~1open", "HttpMethod": "GET", "RequireAuthorizationForCacheControl": False},
            {"ResourcePath": "/~1warn", "HttpMethod": "GET",
             "UnauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER"}]}},
    "Uncached": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "u"}},
    "Guarded": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "g", "Auth": {
        "DefaultAuthorizer": "Token",
        "Authorizers": {
            "Token": {"FunctionArn": {"Fn::GetAtt": ["Authorizer", "Arn"]},
                      "Identity": {"ValidationExpression": "^Bearer .+$"}},
            "Request": {"FunctionArn": {"Fn::GetAtt": ["Authorizer", "Arn"]}, "FunctionPayloadType": "REQUEST",
                        "Identity": {"QueryStrings": ["who"], "ReauthorizeEvery": 0}},
            "CachedRequest": {"FunctionArn": {"Fn::GetAtt": ["Authorizer", "Arn"]}, "FunctionPayloadType": "REQUEST",
                              "Identity": {"QueryStrings": ["who"]}},
            "Starved": {"FunctionArn": {"Fn::GetAtt": ["StarvedAuthorizer", "Arn"]}}}}}},
    "Http": {"Type": "AWS::Serverless::HttpApi", "Properties": {"Auth": {"Authorizers": {
        "Simple": {"FunctionArn": {"Fn::GetAtt": ["SimpleAuthorizer", "Arn"]}, "AuthorizerPayloadFormatVersion": "2.0",
                   "EnableSimpleResponses": True, "Identity": {"Headers": ["x-token"]}},
        "Policy": {"FunctionArn": {"Fn::GetAtt": ["PolicyAuthorizer", "Arn"]}, "AuthorizerPayloadFormatVersion": "1.0",
                   "Identity": {"Headers": ["Authorization"], "ReauthorizeEvery": 0}}}}}},
    "Fn": inline_function(ECHO, Events={
        "Item": rest("Cached", "/item"), "Q": rest("Cached", "/q", **query_key("q")),
        "H": rest("Cached", "/h", RequestParameters=[{"method.request.header.X-Tenant": {"Caching": True}}]),
        "PostDefault": rest("Cached", "/post-default", "POST"), "Post": rest("Cached", "/post", "POST"),
        "Off": rest("Cached", "/off"), "Open": rest("Cached", "/open"), "Warn": rest("Cached", "/warn"),
        "Proxy": rest("Cached", "/p/{proxy+}"), "Plain": rest("Uncached", "/plain"),
        "A": rest("Guarded", "/a"), "B": rest("Guarded", "/b"), "Free": rest("Guarded", "/free", Auth={"Authorizer": "NONE"}),
        "Req": rest("Guarded", "/req", Auth={"Authorizer": "Request"}),
        "CachedReq": rest("Guarded", "/cached-req", Auth={"Authorizer": "CachedRequest"}),
        "Starved": rest("Guarded", "/starved", Auth={"Authorizer": "Starved"}),
        "Iam": rest("Guarded", "/iam", Auth={"Authorizer": "AWS_IAM"}),
        "S": http("/s", Auth={"Authorizer": "Simple"}), "P": http("/p", Auth={"Authorizer": "Policy"}),
    }),
    "Authorizer": inline_function(AUTHORIZER),
    "StarvedAuthorizer": inline_function(AUTHORIZER, ReservedConcurrentExecutions=0),
    "SimpleAuthorizer": inline_function(SIMPLE),
    "PolicyAuthorizer": inline_function(POLICY_V1),
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(TEMPLATE, backend="none") as handle:
        yield handle


def invocations(handle: EmulatorHandle, function: str = "Fn") -> int:
    return handle.metrics()["functions"].get(function, {}).get("Invocations", 0)


def served_by(reply: Reply) -> str:
    assert reply.status == 200, (reply.status, reply.body)
    return reply.json()["id"]


def route_metrics(handle: EmulatorHandle, api: str, stage: str, route: str) -> dict[str, Any]:
    return gateway_metrics(handle, api_id(api), stage)["Routes"][route]


# --- caching ---------------------------------------------------------------------------------------


def test_hits_are_answered_without_invoking_and_counted_exactly(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    first = gw("GET", "/c/item")
    ids = {served_by(gw("GET", "/c/item")) for _ in range(4)}
    assert ids == {served_by(first)} and invocations(emu) == 1
    stage = gateway_metrics(emu, api_id("Cached"), "c")
    assert (stage["CacheHitCount"], stage["CacheMissCount"], stage["Count"]) == (4, 1, 5)
    hit = gw("GET", "/c/item")
    assert hit.header("X-From") == "fn" and hit.header("x-amzn-RequestId") not in (None, first.header("x-amzn-RequestId"))
    assert stage["Cache"]["Entries"] == 1 and 0 < stage["Cache"]["Bytes"] <= stage["Cache"]["CapacityBytes"]


def test_declared_query_strings_and_headers_are_keys_others_are_not(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert served_by(gw("GET", "/c/q?q=1")) == served_by(gw("GET", "/c/q?q=1&other=x"))
    assert served_by(gw("GET", "/c/q?q=2")) != served_by(gw("GET", "/c/q?q=1"))
    assert served_by(gw("GET", "/c/item?x=1")) == served_by(gw("GET", "/c/item?x=2"))  # x is no key
    assert served_by(gw("GET", "/c/h", headers={"X-Tenant": "a"})) != served_by(gw("GET", "/c/h", headers={"X-Tenant": "b"}))
    assert served_by(gw("GET", "/c/h", headers={"x-tenant": "a"})) == served_by(gw("GET", "/c/h", headers={"X-Tenant": "a"}))
    # a greedy path without method.request.path.proxy as a key: one entry for every path, as on AWS
    assert served_by(gw("GET", "/c/p/one")) == served_by(gw("GET", "/c/p/two"))
    assert invocations(emu) == 6  # q=1, q=2, /item, X-Tenant a and b, /p
    assert route_metrics(emu, "Cached", "c", "GET /q")["CacheMissCount"] == 2


def test_only_get_is_cached_by_the_stage_default_other_methods_need_their_own(emu: EmulatorHandle,
                                                                               gw: Callable[..., Reply]) -> None:
    assert served_by(gw("POST", "/c/post-default")) != served_by(gw("POST", "/c/post-default"))
    assert served_by(gw("POST", "/c/post")) == served_by(gw("POST", "/c/post"))
    assert served_by(gw("GET", "/c/off")) != served_by(gw("GET", "/c/off"))
    off = route_metrics(emu, "Cached", "c", "GET /off")
    assert (off["CacheHitCount"], off["CacheMissCount"]) == (0, 0)  # not a cached method: not counted


def test_a_stage_without_a_cache_cluster_invokes_every_time(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert served_by(gw("GET", "/u/plain")) != served_by(gw("GET", "/u/plain"))
    stage = gateway_metrics(emu, api_id("Uncached"), "u")
    assert (stage["CacheHitCount"], stage["CacheMissCount"]) == (0, 0) and "Cache" not in stage


def test_cache_control_max_age_0_needs_authorization_by_default(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    cached = served_by(gw("GET", "/c/item"))
    refused = gw("GET", "/c/item", headers={"Cache-Control": "max-age=0"})
    assert (refused.status, refused.body) == (403, b'{"Message":"User is not authorized to access this resource"}')
    assert served_by(gw("GET", "/c/item")) == cached  # still there
    fresh = served_by(gw("GET", "/c/item", headers={"Cache-Control": "no-cache, max-age=0", **SIGNED}))
    assert fresh != cached and served_by(gw("GET", "/c/item")) == fresh
    assert invocations(emu) == 2


def test_cache_control_without_required_authorization_and_with_a_warning(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    cached = served_by(gw("GET", "/c/open"))
    assert served_by(gw("GET", "/c/open", headers={"Cache-Control": "max-age=0"})) != cached
    warned_first = served_by(gw("GET", "/c/warn"))
    ignored = gw("GET", "/c/warn", headers={"Cache-Control": "max-age=0"})
    assert served_by(ignored) == warned_first and ignored.header("Warning") is not None
    assert gw("GET", "/c/warn").header("Warning") is None


def test_reset_empties_the_cache(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    cached = served_by(gw("GET", "/c/item"))
    emu.reset()
    assert served_by(gw("GET", "/c/item")) != cached


# --- REST Lambda authorizers ---------------------------------------------------------------------


def test_token_authorizer_allows_and_its_context_reaches_the_function(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/g/a", headers={"Authorization": "Bearer allow"})
    authorizer = reply.json()["authorizer"]
    assert authorizer.pop("integrationLatency") >= 0
    assert authorizer == {"user": "alice", "n": "3", "ok": "true", "type": "TOKEN", "principalId": "alice"}


def test_missing_or_invalid_token_is_401_without_invoking(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Basic allow"}):
        reply = gw("GET", "/g/a", headers=headers)
        assert (reply.status, reply.body, reply.header("x-amzn-ErrorType")) == (
            401, b'{"message":"Unauthorized"}', "UnauthorizedException")
    assert invocations(emu, "Authorizer") == 0 and invocations(emu) == 0
    assert route_metrics(emu, "Guarded", "g", "GET /a")["Authorizer"] == {"unauthorized": 3}


def test_results_are_cached_by_token_and_evaluated_per_method(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    narrow = {"Authorization": "Bearer narrow"}
    assert gw("GET", "/g/a", headers=narrow).status == 200
    denied = gw("GET", "/g/b", headers=narrow)  # the cached policy allows GET /a only
    assert (denied.status, denied.body) == (403, b'{"Message":"User is not authorized to access this resource"}')
    assert gw("GET", "/g/a", headers=narrow).status == 200
    assert invocations(emu, "Authorizer") == 1
    assert route_metrics(emu, "Guarded", "g", "GET /a")["Authorizer"] == {"cached": 1, "invoked": 1}
    assert gw("GET", "/g/a", headers={"Authorization": "Bearer allow"}).status == 200  # another identity
    assert invocations(emu, "Authorizer") == 2


@pytest.mark.parametrize(("token", "status", "body"), [
    ("deny", 403, b'{"Message":"User is not authorized to access this resource with an explicit deny"}'),
    ("other", 403, b'{"Message":"User is not authorized to access this resource"}'),
    ("unauthorized", 401, b'{"message":"Unauthorized"}'),
    ("boom", 500, b'{"message": null}'),
    ("bad", 500, b'{"message": null}'),
])
def test_authorizer_answers(emu: EmulatorHandle, gw: Callable[..., Reply], token: str, status: int, body: bytes) -> None:
    reply = gw("GET", "/g/a", headers={"Authorization": f"Bearer {token}"})
    assert (reply.status, reply.body) == (status, body)
    assert invocations(emu) == 0


def test_a_throttled_authorizer_is_500_and_the_function_is_not_invoked(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/g/starved", headers={"Authorization": "Bearer allow"})
    assert (reply.status, reply.body, reply.header("x-amzn-ErrorType")) == (
        500, b'{"message": null}', "AuthorizerConfigurationException")
    assert emu.metrics()["functions"]["StarvedAuthorizer"]["Throttles"] == 1 and invocations(emu) == 0
    assert route_metrics(emu, "Guarded", "g", "GET /starved")["Authorizer"] == {"throttled": 1}


def test_request_authorizer_without_caching_is_invoked_every_time(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    for _ in range(3):
        assert gw("GET", "/g/req?who=allow").status == 200
    assert invocations(emu, "Authorizer") == 3
    assert gw("GET", "/g/req").status == 500  # no identity check without caching: invoked, and it cannot decide
    assert invocations(emu, "Authorizer") == 4
    assert gw("GET", "/g/req?who=allow").json()["authorizer"]["type"] == "REQUEST"


def test_request_authorizer_with_caching_needs_its_identity_sources(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert gw("GET", "/g/cached-req").status == 401
    assert gw("GET", "/g/cached-req?who=allow").status == 200
    assert gw("GET", "/g/cached-req?who=allow&x=1").status == 200
    assert invocations(emu, "Authorizer") == 1


def test_default_authorizer_none_and_aws_iam(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    assert gw("GET", "/g/free").status == 200
    unsigned = gw("GET", "/g/iam")
    assert (unsigned.status, unsigned.body) == (403, b'{"message":"Missing Authentication Token"}')
    assert gw("GET", "/g/iam", headers=SIGNED).status == 200
    assert invocations(emu, "Authorizer") == 0


# --- HTTP API Lambda authorizers -----------------------------------------------------------------


def test_http_simple_responses(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/s", headers={"x-token": "yes"})
    assert reply.status == 200
    lambda_context = reply.json()["authorizer"]["lambda"]
    assert lambda_context["who"] == "yes" and lambda_context["type"] == "REQUEST" and lambda_context["sources"] == ["yes"]
    assert lambda_context["arn"].endswith(f":{api_id('Http')}/$default/GET/s")
    no = gw("GET", "/s", headers={"x-token": "no"})
    assert (no.status, no.body) == (403, b'{"message":"Forbidden"}')
    missing = gw("GET", "/s")
    assert (missing.status, missing.body) == (401, b'{"message":"Unauthorized"}')
    assert invocations(emu, "SimpleAuthorizer") == 2  # yes and no, each once (cached 300 s by default)
    gw("GET", "/s", headers={"x-token": "yes"})
    assert invocations(emu, "SimpleAuthorizer") == 2


def test_http_payload_1_0_policy_answer(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    reply = gw("GET", "/p", headers={"Authorization": "t1"})
    assert reply.json()["authorizer"] == {"lambda": {"token": "t1", "version": "1.0"}}  # the route's payload is 2.0
    assert gw("GET", "/p", headers={"Authorization": "t1"}).status == 200
    assert invocations(emu, "PolicyAuthorizer") == 2  # ReauthorizeEvery 0
    assert json.loads(gw("GET", "/p").body) == {"message": "Unauthorized"}


def test_cache_counts_reach_the_timeline_per_stage_and_method(emu: EmulatorHandle, gw: Callable[..., Reply]) -> None:
    for _ in range(5):
        gw("GET", "/c/item")
    cloudwatch = emu.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc)
    stage = [{"Name": "ApiName", "Value": "Cached"}, {"Name": "Stage", "Value": "c"}]
    method = stage + [{"Name": "Method", "Value": "GET"}, {"Name": "Resource", "Value": "/item"}]

    def totals() -> dict[str, float]:
        answer = cloudwatch.get_metric_data(
            StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=5), MetricDataQueries=[
                {"Id": f"{name.lower()}_{where}", "MetricStat": {"Metric": {
                    "Namespace": "AWS/ApiGateway", "MetricName": name, "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}
                for name in ("CacheHitCount", "CacheMissCount") for where, dims in (("stage", stage), ("method", method))])
        return {r["Id"]: sum(r["Values"]) for r in answer["MetricDataResults"]}

    expected = {"cachehitcount_stage": 4, "cachehitcount_method": 4, "cachemisscount_stage": 1, "cachemisscount_method": 1}
    assert wait_until(lambda: totals() == expected, timeout_s=15), totals()
