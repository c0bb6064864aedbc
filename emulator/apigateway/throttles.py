"""Which token buckets and quota guard a request, and the API keys that open usage plans. Pure:
the buckets and counters live here; time comes in as arguments.

Buckets (emulator.policy.api_throttling), in AWS's order:
* the key's per-method limit in its usage plan (`ApiStages[].Throttle["/pets/GET"]`), one bucket
  per key and method; then the plan's own limit, one bucket per key; then the plan's quota;
* the stage's limit for the method or route: its own entry (REST MethodSettings, HTTP
  RouteSettings), else the stage's default (`*/*`, DefaultRouteSettings). "Per-API, per-stage
  throttling limits are applied at the API method level for a stage"
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): each method or
  route has its own bucket, also when it takes the stage's default;
* the account, one bucket for every API of the Region.
A limit that gives only a rate or only a burst takes the other from the account (README
'Choices'). Usage plans only meter methods that require an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from emulator.apigateway.routing import RouteMatch
from emulator.policy.api_throttling import (
    Gate, QuotaCounter, QuotaOffset, RequestBucket, SpendRule, ThrottleLayer, admit,
)
from emulator.template.api_specs import (
    REST, WILDCARD, ApiKeySpec, GatewaySpec, RouteSpec, ThrottleSpec, UsagePlanSpec, UsagePlanStageSpec,
)


@dataclass(frozen=True)
class ThrottleSettings:
    account_rate: float
    account_burst: int
    spend: SpendRule = SpendRule.ADMITTED
    quota_offset: QuotaOffset = QuotaOffset.REQUESTS


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """An API key that may call an API stage, through the one usage plan that covers both
    (AWS lets a key be in one plan per stage:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html)."""

    plan: UsagePlanSpec
    key: ApiKeySpec
    stage: UsagePlanStageSpec


def _lookup(throttles: Mapping[tuple[str, str], ThrottleSpec], route: RouteSpec) -> ThrottleSpec | None:
    for key in ((route.method, route.path), (WILDCARD, route.path), (route.method, WILDCARD)):
        found = throttles.get(key)
        if found is not None:
            return found
    return None


class GatewayThrottles:
    def __init__(self, gateway: GatewaySpec, settings: ThrottleSettings, created_wall: float) -> None:
        self.gateway = gateway
        self.settings = settings
        self.created_wall = created_wall
        self.account = RequestBucket(settings.account_rate, settings.account_burst)
        self._account_gate = Gate(ThrottleLayer.ACCOUNT, self.account)
        self._stage_gates: dict[tuple[str, str, str, str], tuple[Gate, ...]] = {}
        self._key_gates: dict[tuple[str, str, str, str, str, str], tuple[Gate, ...]] = {}
        self._plan_buckets: dict[tuple[str, str], RequestBucket] = {}
        self.quotas: dict[tuple[str, str], QuotaCounter] = {}
        self._grants: dict[tuple[str, str, str], KeyGrant] = {}
        keys = gateway.api_keys
        for plan_id, key_id in gateway.plan_keys:
            plan, key = gateway.usage_plans[plan_id], keys[key_id]
            if not key.enabled:
                continue
            for stage in plan.stages:
                self._grants.setdefault((key.value, stage.api_id, stage.stage), KeyGrant(plan, key, stage))

    def _bucket(self, throttle: ThrottleSpec) -> RequestBucket:
        rate = self.settings.account_rate if throttle.rate is None else throttle.rate
        burst = self.settings.account_burst if throttle.burst is None else throttle.burst
        return RequestBucket(rate, burst)

    def grant(self, key_value: str | None, api_id: str, stage: str) -> KeyGrant | None:
        """The usage plan a key opens for this API stage; None: missing, unknown, disabled or
        in no plan of this stage (403 Forbidden)."""
        if not key_value:
            return None
        return self._grants.get((key_value, api_id, stage))

    def stage_gates(self, match: RouteMatch) -> tuple[Gate, ...]:
        route, stage = match.route, match.stage
        key = (match.api.api_id, stage.name, route.method, route.path)
        gates = self._stage_gates.get(key)
        if gates is None:
            own = _lookup(stage.route_throttles, route)
            layer = (ThrottleLayer.METHOD if match.api.kind == REST else ThrottleLayer.ROUTE) if own else ThrottleLayer.STAGE
            throttle = own or stage.default_throttle
            gates = ((Gate(layer, self._bucket(throttle)),) if throttle else ()) + (self._account_gate,)
            self._stage_gates[key] = gates
        return gates

    def key_layers(self, grant: KeyGrant, match: RouteMatch) -> tuple[tuple[Gate, ...], QuotaCounter | None]:
        plan, key_id = grant.plan, grant.key.key_id
        route = match.route
        cache_key = (plan.plan_id, key_id, match.api.api_id, match.stage.name, route.method, route.path)
        gates = self._key_gates.get(cache_key)
        if gates is None:
            gates = ()
            method_throttle = _lookup(grant.stage.method_throttles, route)
            if method_throttle is not None:
                gates += (Gate(ThrottleLayer.USAGE_PLAN_METHOD, self._bucket(method_throttle)),)
            if plan.throttle is not None:
                bucket = self._plan_buckets.get((plan.plan_id, key_id))
                if bucket is None:
                    bucket = self._plan_buckets[(plan.plan_id, key_id)] = self._bucket(plan.throttle)
                gates += (Gate(ThrottleLayer.USAGE_PLAN, bucket),)
            self._key_gates[cache_key] = gates
        return gates, self.quota(plan, key_id)

    def quota(self, plan: UsagePlanSpec, key_id: str) -> QuotaCounter | None:
        if plan.quota is None:
            return None
        counter = self.quotas.get((plan.plan_id, key_id))
        if counter is None:
            quota = plan.quota
            counter = self.quotas[(plan.plan_id, key_id)] = QuotaCounter(
                quota.limit, quota.period, quota.offset, self.settings.quota_offset, self.created_wall)
        return counter

    def check(self, match: RouteMatch, grant: KeyGrant | None, now: float, wall: float) -> ThrottleLayer | None:
        """None: admitted; else the layer that refused (the request spent nothing, under the
        default spend rule)."""
        key_gates, quota = self.key_layers(grant, match) if grant is not None else ((), None)
        return admit(key_gates, quota, self.stage_gates(match), now, wall, self.settings.spend)
