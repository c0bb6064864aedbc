"""Which buckets guard a request and which keys open a stage (emulator/apigateway/throttles.py),
in virtual time with exact counts."""

from __future__ import annotations

from collections import Counter

from emulator.apigateway.routing import Catalogue, RouteMatch
from emulator.apigateway.throttles import GatewayThrottles, ThrottleSettings
from emulator.clock import VirtualClock
from emulator.policy.api_throttling import QuotaOffset, SpendRule, ThrottleLayer
from emulator.template.api_specs import (
    HTTP, REST, ApiKeySpec, ApiSpec, GatewaySpec, IntegrationSpec, QuotaSpec, RouteSpec, StageSpec, ThrottleSpec,
    UsagePlanSpec, UsagePlanStageSpec,
)

FN = IntegrationSpec("fn", None, "1.0", 29_000)
REST_API = ApiSpec("Api", "rest000001", REST, "api", (
    RouteSpec("GET", "/a", FN, True), RouteSpec("GET", "/b", FN, True), RouteSpec("GET", "/open", FN)),
    (StageSpec("Prod", default_throttle=ThrottleSpec(0, 3),
               route_throttles={("GET", "/b"): ThrottleSpec(0, 1), ("GET", "/a"): ThrottleSpec(0, 100)}),
     StageSpec("Other")))
HTTP_API = ApiSpec("Http", "http000001", HTTP, "http", (RouteSpec("GET", "/x", FN), RouteSpec("GET", "/y", FN)),
                   (StageSpec("$default", route_throttles={("GET", "/y"): ThrottleSpec(None, 2)}),))
PLAN = UsagePlanSpec("Plan", "plan000001", "plan", (UsagePlanStageSpec(REST_API.api_id, "Prod", {("GET", "/a"): ThrottleSpec(0, 5)}),),
                     ThrottleSpec(0, 8), QuotaSpec(6, "DAY", 0))
KEY = ApiKeySpec("Key", "key0000001", "key", "secret-value-0123456789", True)
OFF = ApiKeySpec("Off", "key0000002", "off", "disabled-value-01234567", False)
SPEC = GatewaySpec({REST_API.api_id: REST_API, HTTP_API.api_id: HTTP_API}, {PLAN.plan_id: PLAN},
                   {KEY.key_id: KEY, OFF.key_id: OFF}, ((PLAN.plan_id, KEY.key_id), (PLAN.plan_id, OFF.key_id)))
CATALOGUE = Catalogue([REST_API, HTTP_API])


def match(path: str, host: str = "h") -> RouteMatch:
    found = CATALOGUE.lookup(host, "GET", path)
    assert isinstance(found, RouteMatch)
    return found


def throttles(rate: float = 1000, burst: int = 100, **settings: object) -> GatewayThrottles:
    return GatewayThrottles(SPEC, ThrottleSettings(rate, burst, **settings), created_wall=1_700_000_000)  # type: ignore[arg-type]


def outcomes(state: GatewayThrottles, path: str, count: int, clock: VirtualClock, key: str | None = None) -> Counter:
    grant = state.grant(key, REST_API.api_id, "Prod") if key else None
    return Counter(state.check(match(path), grant, clock.now(), clock.wall()) for _ in range(count))


def test_each_method_has_its_own_bucket_with_the_stage_default() -> None:
    state, clock = throttles(), VirtualClock()
    assert outcomes(state, "/Prod/open", 5, clock) == Counter({None: 3, ThrottleLayer.STAGE: 2})
    # /b has its own MethodSettings entry (burst 1): the layer is named "method".
    assert outcomes(state, "/Prod/b", 3, clock, KEY.value) == Counter({None: 1, ThrottleLayer.METHOD: 2})
    # The other stage has no limits: only the account's.
    other = match("/Other/open")
    assert all(state.check(other, None, clock.now(), clock.wall()) is None for _ in range(50))


def test_account_bucket_is_shared_by_every_api() -> None:
    state, clock = throttles(rate=0, burst=4), VirtualClock()
    results = [state.check(match(p), None, clock.now(), clock.wall()) for p in ("/x", "/Prod/open", "/x", "/y", "/x")]
    assert results == [None, None, None, None, ThrottleLayer.ACCOUNT]


def test_http_route_settings_without_a_rate_take_the_accounts_rate() -> None:
    state, clock = throttles(rate=10, burst=100), VirtualClock()
    assert Counter(state.check(match("/y"), None, clock.now(), clock.wall()) for _ in range(4)) == \
        Counter({None: 2, ThrottleLayer.ROUTE: 2})
    clock.advance(0.1)  # the account's 10 rps: one token back
    assert state.check(match("/y"), None, clock.now(), clock.wall()) is None
    assert state.check(match("/y"), None, clock.now(), clock.wall()) is ThrottleLayer.ROUTE


def test_keys_open_only_the_stages_of_their_plan() -> None:
    state = throttles()
    assert state.grant(KEY.value, REST_API.api_id, "Prod") is not None
    assert state.grant(KEY.value, REST_API.api_id, "Other") is None  # the plan does not cover it
    assert state.grant(OFF.value, REST_API.api_id, "Prod") is None  # disabled
    assert state.grant("unknown", REST_API.api_id, "Prod") is None
    assert state.grant(None, REST_API.api_id, "Prod") is None


def test_usage_plan_layers_method_then_plan_then_quota() -> None:
    state, clock = throttles(), VirtualClock()
    # /a: the plan's per-method burst is 5 (the stage's own setting for /a allows 100).
    assert outcomes(state, "/Prod/a", 7, clock, KEY.value) == Counter({None: 5, ThrottleLayer.USAGE_PLAN_METHOD: 2})
    # The plan's own burst is 8 for the key, across methods; /open needs no key and does not count.
    assert outcomes(state, "/Prod/b", 1, clock, KEY.value) == Counter({None: 1})
    assert outcomes(state, "/Prod/open", 3, clock) == Counter({None: 3})


def test_quota_counts_admitted_requests_of_the_key() -> None:
    state, clock = throttles(), VirtualClock()
    plan_bucket_free = GatewaySpec(SPEC.apis, {PLAN.plan_id: UsagePlanSpec(
        "Plan", PLAN.plan_id, "plan", PLAN.stages, None, QuotaSpec(2, "DAY", 0))}, SPEC.api_keys, SPEC.plan_keys)
    state = GatewayThrottles(plan_bucket_free, ThrottleSettings(1000, 100), 1_700_000_000)
    assert outcomes(state, "/Prod/a", 4, clock, KEY.value) == Counter({None: 2, ThrottleLayer.QUOTA: 2})
    counter = state.quotas[(PLAN.plan_id, KEY.key_id)]
    assert (counter.used, counter.remaining(clock.wall())) == (2, 0)
    clock.advance(86_400)
    assert outcomes(state, "/Prod/a", 1, clock, KEY.value) == Counter({None: 1})


def test_settings_reach_the_policy() -> None:
    state = throttles(spend=SpendRule.EACH_LAYER, quota_offset=QuotaOffset.DAY)
    assert state.settings.spend is SpendRule.EACH_LAYER
    assert state.quota(PLAN, KEY.key_id).mode is QuotaOffset.DAY
