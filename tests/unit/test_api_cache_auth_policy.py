"""Pure rules of the stage cache and the authorizers: TTLs and capacity on a virtual clock,
which methods are cached, cache keys, IAM policy evaluation, authorizer answers, and how a
template declares them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.apigateway.authorizer_events import authorizer_event, identity_values
from emulator.apigateway.caching import CachePlan, asks_invalidation, cache_key, cache_plan, is_signed
from emulator.apigateway.events import EventContext, GatewayRequest
from emulator.apigateway.routing import Catalogue, RouteMatch
from emulator.clock import VirtualClock
from emulator.policy.api_cache import TtlCache, cluster_capacity_bytes
from emulator.policy.authorizer_policy import (
    MalformedAuthorizerAnswer, Verdict, evaluate_policy, glob_matches, parse_answer, request_arn,
)
from emulator.template.api_specs import (
    HTTP, REQUEST, REST, TOKEN, ApiSpec, AuthorizerSpec, IdentitySource, IntegrationSpec, MethodCacheSpec, RouteSpec,
    StageSpec,
)

FN = IntegrationSpec("fn", None, "1.0", 29_000)


# --- TtlCache, in virtual time --------------------------------------------------------------------


def test_entries_live_for_their_ttl_on_the_injected_clock() -> None:
    clock = VirtualClock()
    cache: TtlCache[str] = TtlCache(100)
    assert cache.put("k", "v", 10, 300, clock.now())
    clock.advance(299.999)
    assert cache.get("k", clock.now()) == "v"
    clock.advance(0.001)
    assert cache.get("k", clock.now()) is None and len(cache) == 0 and cache.used == 0


def test_ttl_0_and_oversized_entries_are_not_stored() -> None:
    cache: TtlCache[str] = TtlCache(100)
    assert not cache.put("a", "v", 10, 0, 0.0)
    assert not cache.put("b", "v", 101, 60, 0.0)
    assert len(cache) == 0


def test_capacity_evicts_the_least_recently_used_first() -> None:
    cache: TtlCache[str] = TtlCache(30)
    for key in "abc":
        cache.put(key, key, 10, 60, 0.0)
    assert cache.get("a", 1.0) == "a"  # a is now the most recent
    cache.put("d", "d", 10, 60, 1.0)
    assert [cache.get(k, 1.0) for k in "abcd"] == ["a", None, "c", "d"]
    assert (cache.used, cache.evictions) == (30, 1)


def test_invalidate_and_replace_keep_the_byte_count_exact() -> None:
    cache: TtlCache[str] = TtlCache(100)
    cache.put("a", "1", 40, 60, 0.0)
    cache.put("a", "2", 25, 60, 0.0)
    assert (cache.used, cache.get("a", 0.0)) == (25, "2")
    assert cache.invalidate("a") and not cache.invalidate("a") and cache.used == 0


def test_cluster_capacity_is_the_cluster_size_up_to_the_cap() -> None:
    assert cluster_capacity_bytes("0.5", 64) == 64 * 1024 * 1024
    assert cluster_capacity_bytes("0.5", 4096) == 512 * 1024 * 1024


# --- which methods are cached ---------------------------------------------------------------------


def stage(**settings: Any) -> StageSpec:
    return StageSpec("Prod", cache_cluster_enabled=True, **settings)


GET_A, POST_A = RouteSpec("GET", "/a", FN), RouteSpec("POST", "/a", FN)


def test_the_stage_default_caches_get_only_and_a_method_entry_any_method() -> None:
    default = stage(default_cache=MethodCacheSpec(enabled=True))
    assert cache_plan(REST, default, GET_A) == CachePlan(300, True, True, "FAIL_WITH_403")
    own = stage(default_cache=MethodCacheSpec(enabled=True, ttl_s=60),
                route_cache={("POST", "/a"): MethodCacheSpec(enabled=True, unauthorized_strategy="SUCCEED_WITHOUT_RESPONSE_HEADER")})
    assert cache_plan(REST, own, POST_A) == CachePlan(60, False, True, "SUCCEED_WITHOUT_RESPONSE_HEADER")


def test_no_cluster_no_setting_ttl_0_http_apis_and_disabled_methods_are_not_cached() -> None:
    on = MethodCacheSpec(enabled=True)
    assert cache_plan(REST, StageSpec("Prod", default_cache=on), GET_A) is None  # no cluster
    assert cache_plan(REST, stage(), GET_A) is None  # a cluster, caching not enabled
    assert cache_plan(REST, stage(default_cache=MethodCacheSpec(enabled=True, ttl_s=0)), GET_A) is None
    assert cache_plan(HTTP, stage(default_cache=on), GET_A) is None
    off = stage(default_cache=on, route_cache={("GET", "/a"): MethodCacheSpec(enabled=False)})
    assert cache_plan(REST, off, GET_A) is None


API = ApiSpec("Api", "api0000001", REST, "api", (
    RouteSpec("GET", "/q", FN, cache_key_parameters=("method.request.querystring.q", "method.request.header.X-T")),
    RouteSpec("GET", "/p/{id}", FN, cache_key_parameters=("method.request.path.id",)),
    RouteSpec("GET", "/u/{id}", FN)), (StageSpec("Prod", variables={"v": "1"}),))
CATALOGUE = Catalogue([API])


def req(path: str, query: str = "", headers: list[tuple[str, str]] | None = None, method: str = "GET") -> GatewayRequest:
    return GatewayRequest(method, path, query, headers or [], b"", "10.0.0.1", "h", 3000)


def matched(request: GatewayRequest) -> RouteMatch:
    found = CATALOGUE.lookup(request.host, request.method, request.raw_path)
    assert isinstance(found, RouteMatch)
    return found


def key(path: str, query: str = "", headers: list[tuple[str, str]] | None = None) -> tuple[str, ...]:
    request = req(path, query, headers)
    return cache_key(request, matched(request))


def test_cache_keys_are_the_resource_and_the_declared_parameters() -> None:
    assert key("/Prod/q", "q=1&z=9") == key("/Prod/q", "z=0&q=1")
    assert key("/Prod/q", "q=1") != key("/Prod/q", "q=2") != key("/Prod/q")
    assert key("/Prod/q", "q=1", [("x-t", "a")]) == key("/Prod/q", "q=1", [("X-T", "a")]) != key("/Prod/q", "q=1")
    assert key("/Prod/p/1") != key("/Prod/p/2")
    assert key("/Prod/u/1") == key("/Prod/u/2")  # the path parameter is not declared


def test_invalidation_and_signatures_are_read_from_the_headers() -> None:
    assert asks_invalidation(req("/", headers=[("Cache-Control", "no-store, max-age=0")]))
    assert not asks_invalidation(req("/", headers=[("cache-control", "max-age=10")]))
    assert is_signed(req("/", headers=[("authorization", "AWS4-HMAC-SHA256 Credential=x")]))
    assert is_signed(req("/", "X-Amz-Signature=abc"))
    assert not is_signed(req("/", headers=[("Authorization", "Bearer x")]))


# --- IAM policies ---------------------------------------------------------------------------------

ARN = request_arn("us-east-1", "123456789012", "api0000001", "Prod", "GET", "/pets/1")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(resource: Any, action: Any = "execute-api:Invoke", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def test_the_arn_is_the_request_path_after_the_stage() -> None:
    assert ARN == "arn:aws:execute-api:us-east-1:123456789012:api0000001/Prod/GET/pets/1"


@pytest.mark.parametrize(("document", "verdict"), [
    (policy(allow(ARN)), Verdict.ALLOW),
    (policy(allow("arn:aws:execute-api:us-east-1:123456789012:api0000001/*")), Verdict.ALLOW),
    (policy(allow("arn:aws:execute-api:*:*:api0000001/Prod/GET/pets/?")), Verdict.ALLOW),
    (policy(allow(["arn:x", ARN], action=["s3:*", "execute-api:*"])), Verdict.ALLOW),
    (policy(allow(ARN, action="*")), Verdict.ALLOW),
    (policy(allow(ARN, action="EXECUTE-API:invoke")), Verdict.ALLOW),  # actions ignore case
    (policy(allow(ARN.replace("GET", "get"))), Verdict.IMPLICIT_DENY),  # resources do not
    (policy(allow("arn:aws:execute-api:*:*:api0000001/Prod/POST/*")), Verdict.IMPLICIT_DENY),
    (policy(allow(ARN, action="execute-api:InvalidateCache")), Verdict.IMPLICIT_DENY),
    (policy(allow("*"), allow(ARN, effect="Deny")), Verdict.EXPLICIT_DENY),
    (policy(), Verdict.IMPLICIT_DENY),
    ({"Version": "2012-10-17", "Statement": allow(ARN)}, Verdict.ALLOW),  # a single statement object
])
def test_policy_evaluation(document: dict[str, Any], verdict: Verdict) -> None:
    assert evaluate_policy(document, ARN) is verdict


@pytest.mark.parametrize("document", [
    {"Version": "2012-10-17"}, policy(allow(ARN, effect="allow")), policy({"Effect": "Allow", "Resource": ARN}),
    policy(allow(5)),
])
def test_malformed_policies(document: dict[str, Any]) -> None:
    with pytest.raises(MalformedAuthorizerAnswer):
        evaluate_policy(document, ARN)


def test_glob_question_mark_is_one_character() -> None:
    assert glob_matches("a?c", "abc") and not glob_matches("a?c", "abbc") and glob_matches("a*c", "a/b/c")


def test_answers_policy_and_simple() -> None:
    answer = parse_answer(json.dumps({"principalId": 7, "policyDocument": policy(allow("*")), "context": {"n": 1},
                                      "usageIdentifierKey": "k"}).encode(), simple=False, flat_context=True)
    assert (answer.principal_id, answer.context, answer.usage_identifier_key, answer.verdict(ARN)) == ("7", {"n": 1}, "k", Verdict.ALLOW)
    simple = parse_answer(b'{"isAuthorized": false, "context": {"deep": {"a": 1}}}', simple=True, flat_context=False)
    assert simple.verdict(ARN) is Verdict.IMPLICIT_DENY and simple.context == {"deep": {"a": 1}}


@pytest.mark.parametrize(("payload", "simple", "flat"), [
    (b"not json", False, True), (b"[]", False, True), (b'{"principalId": "a"}', False, True),
    (b'{"isAuthorized": "yes"}', True, False), (b'{"policyDocument": {"Statement": []}, "context": {"a": [1]}}', False, True),
    (b'{"principalId": "a", "policyDocument": {"Statement": []}}', True, False),  # simple responses expect isAuthorized
])
def test_malformed_answers(payload: bytes, simple: bool, flat: bool) -> None:
    with pytest.raises(MalformedAuthorizerAnswer):
        parse_answer(payload, simple=simple, flat_context=flat)


# --- identity sources and events ------------------------------------------------------------------

CONTEXT = EventContext("req-1", "ext=", "123456789012", "us-east-1", 1_700_000_000.0)


def test_identity_values_from_headers_query_stage_variables_and_context() -> None:
    sources = (IdentitySource("header", "Auth", ""), IdentitySource("querystring", "q", ""),
               IdentitySource("stageVariables", "v", ""), IdentitySource("context", "identity.sourceIp", ""),
               IdentitySource("header", "Missing", ""))
    request = req("/Prod/u/1", "q=a&q=b", [("auth", "tok")])
    assert identity_values(request, matched(request), sources, CONTEXT) == ["tok", "a,b", "1", "10.0.0.1", None]


def test_token_and_request_events() -> None:
    request = req("/Prod/u/1", "q=a", [("Authorization", "Bearer t")])
    token = AuthorizerSpec("T", "t", TOKEN, "fn", identity_sources=(IdentitySource("header", "Authorization", ""),))
    arn = request_arn("us-east-1", "123456789012", API.api_id, "Prod", "GET", "/u/1")
    assert authorizer_event(token, request, matched(request), CONTEXT, arn, ["Bearer t"]) == {
        "type": "TOKEN", "authorizationToken": "Bearer t", "methodArn": arn}
    rest_request = authorizer_event(AuthorizerSpec("R", "r", REQUEST, "fn"), request, matched(request), CONTEXT, arn, [])
    assert (rest_request["type"], rest_request["methodArn"], rest_request["pathParameters"]) == ("REQUEST", arn, {"id": "1"})
    assert "body" not in rest_request and rest_request["queryStringParameters"] == {"q": "a"}
