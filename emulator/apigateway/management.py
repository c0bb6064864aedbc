"""API Gateway's management API for what the gateway really serves, on the emulator's endpoint.

Calls signed for the `apigateway` service (both `apigateway` and `apigatewayv2` clients sign so)
that read APIs, stages, routes, usage plans and keys are answered here from the template,
before the proxy would send them to moto: GetRestApis, GetRestApi, GetResources, GetStages,
GetStage, GetUsagePlans, GetUsagePlan, GetApiKeys, GetApiKey, GetUsagePlanKeys (v1) and
GetApis, GetApi, GetRoutes, GetStages (v2). Everything else goes on to the backend.
Shapes: https://docs.aws.amazon.com/apigateway/latest/api/API_Operations.html and
https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/api-reference.html.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.apigateway.routing import resource_id
from emulator.backend.proxy import signed_service
from emulator.template import api_ids
from emulator.template.api_specs import (
    DEFAULT_ROUTE, HTTP, REST, WILDCARD, ApiKeySpec, ApiSpec, GatewaySpec, RouteSpec, StageSpec, ThrottleSpec,
    UsagePlanSpec,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiGatewayManagement:
    def __init__(self, gateway: GatewaySpec, *, region: str, account_id: str, account_rate: float, account_burst: int) -> None:
        self.gateway = gateway
        self.region = region
        self.account_id = account_id
        self.account = ThrottleSpec(account_rate, account_burst)
        self.created = time.time()
        self.apis = list(gateway.apis.values())
        self._routes: list[tuple[re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            (re.compile(r"/restapis"), self.get_rest_apis),
            (re.compile(r"/restapis/([^/]+)"), self.get_rest_api),
            (re.compile(r"/restapis/([^/]+)/resources"), self.get_resources),
            (re.compile(r"/restapis/([^/]+)/stages"), self.get_stages),
            (re.compile(r"/restapis/([^/]+)/stages/([^/]+)"), self.get_stage),
            (re.compile(r"/usageplans"), self.get_usage_plans),
            (re.compile(r"/usageplans/([^/]+)"), self.get_usage_plan),
            (re.compile(r"/usageplans/([^/]+)/keys"), self.get_usage_plan_keys),
            (re.compile(r"/apikeys"), self.get_api_keys),
            (re.compile(r"/apikeys/([^/]+)"), self.get_api_key),
            (re.compile(r"/v2/apis"), self.get_apis),
            (re.compile(r"/v2/apis/([^/]+)"), self.get_api),
            (re.compile(r"/v2/apis/([^/]+)/routes"), self.get_routes),
            (re.compile(r"/v2/apis/([^/]+)/stages"), self.get_v2_stages),
        ]

    def intercept(self, fallback: Handler) -> Handler:
        """A handler answering the calls above and passing everything else to `fallback`."""

        async def handle(request: web.Request) -> web.StreamResponse:
            if request.method == "GET" and signed_service(request) == "apigateway":
                path = request.rel_url.path.rstrip("/") or "/"
                for pattern, answer in self._routes:
                    match = pattern.fullmatch(path)
                    if match is not None:
                        try:
                            body = answer(request.query, *match.groups())
                        except NotFound as missing:
                            return _error(404, "NotFoundException", str(missing))
                        return web.Response(body=json.dumps(body).encode(), content_type="application/json",
                                            headers={"x-amzn-RequestId": str(uuid.uuid4())})
            return await fallback(request)

        return handle

    # -- lookups ----------------------------------------------------------------------------------
    def _api(self, api_id: str, kind: str) -> ApiSpec:
        api = self.gateway.apis.get(api_id)
        if api is None or api.kind != kind:
            raise NotFound(f"Invalid API identifier specified {self.account_id}:{api_id}")
        return api

    def _throttle(self, throttle: ThrottleSpec | None) -> ThrottleSpec:
        throttle = throttle or self.account
        return ThrottleSpec(self.account.rate if throttle.rate is None else throttle.rate,
                            self.account.burst if throttle.burst is None else throttle.burst)

    # -- REST (v1) -------------------------------------------------------------------------------
    def _rest_api(self, api: ApiSpec) -> dict[str, Any]:
        return {"id": api.api_id, "name": api.name, "description": api.description, "createdDate": int(self.created),
                "apiKeySource": "HEADER", "binaryMediaTypes": [t.replace("/", "~1") for t in api.binary_media_types],
                "endpointConfiguration": {"types": ["EDGE"]}, "disableExecuteApiEndpoint": api.disable_execute_api_endpoint,
                "rootResourceId": api_ids.root_resource_id(api.logical_id)}

    def get_rest_apis(self, query: Any) -> dict[str, Any]:
        return {"item": [self._rest_api(api) for api in self.apis if api.kind == REST]}

    def get_rest_api(self, query: Any, api_id: str) -> dict[str, Any]:
        return self._rest_api(self._api(api_id, REST))

    def get_resources(self, query: Any, api_id: str) -> dict[str, Any]:
        api = self._api(api_id, REST)
        embed = "methods" in query.getall("embed", [])
        by_path: dict[str, dict[str, RouteSpec]] = {"/": {}}
        for route in api.routes:
            parts = [p for p in route.path.split("/") if p]
            for depth in range(1, len(parts) + 1):
                by_path.setdefault("/" + "/".join(parts[:depth]), {})
            by_path[route.path][route.method] = route
        items = []
        for path, methods in sorted(by_path.items()):
            item: dict[str, Any] = {"id": resource_id(api, path), "path": path}
            if path != "/":
                parent = path.rsplit("/", 1)[0] or "/"
                item.update(parentId=resource_id(api, parent), pathPart=path.rsplit("/", 1)[1])
            if methods:
                item["resourceMethods"] = {m: (self._method(r) if embed else {}) for m, r in sorted(methods.items())}
            items.append(item)
        return {"item": items}

    def _method(self, route: RouteSpec) -> dict[str, Any]:
        method: dict[str, Any] = {"httpMethod": route.method, "authorizationType": "NONE",
                                  "apiKeyRequired": route.api_key_required}
        if route.integration is not None:
            target = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{route.integration.function}"
            if route.integration.qualifier:
                target += f":{route.integration.qualifier}"
            method["methodIntegration"] = {
                "type": "AWS_PROXY", "httpMethod": "POST", "timeoutInMillis": route.integration.timeout_ms,
                "uri": f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{target}/invocations"}
        return method

    def _method_settings(self, stage: StageSpec) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        if stage.default_throttle is not None:
            entries["*/*"] = stage.default_throttle
        for (method, path), throttle in stage.route_throttles.items():
            # AWS's key: the resource path with every "/" as "~1", then the method (`~1pets/GET`).
            entries[f"{'*' if path == WILDCARD else path.replace('/', '~1')}/{method}"] = throttle
        return {key: {"metricsEnabled": False, "loggingLevel": "OFF", "dataTraceEnabled": False,
                      "throttlingBurstLimit": self._throttle(t).burst, "throttlingRateLimit": self._throttle(t).rate,
                      "cachingEnabled": False, "cacheTtlInSeconds": 300, "cacheDataEncrypted": False,
                      "requireAuthorizationForCacheControl": True,
                      "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER"}
                for key, t in entries.items()}

    def _stage(self, api: ApiSpec, stage: StageSpec) -> dict[str, Any]:
        return {"deploymentId": api.api_id[:6], "stageName": stage.name, "cacheClusterEnabled": False,
                "cacheClusterStatus": "NOT_AVAILABLE", "methodSettings": self._method_settings(stage),
                "variables": dict(stage.variables), "tracingEnabled": False, "createdDate": int(self.created),
                "lastUpdatedDate": int(self.created)}

    def get_stages(self, query: Any, api_id: str) -> dict[str, Any]:
        api = self._api(api_id, REST)
        return {"item": [self._stage(api, stage) for stage in api.stages]}

    def get_stage(self, query: Any, api_id: str, name: str) -> dict[str, Any]:
        api = self._api(api_id, REST)
        for stage in api.stages:
            if stage.name == name:
                return self._stage(api, stage)
        raise NotFound("Invalid stage identifier specified")

    def _plan(self, plan: UsagePlanSpec) -> dict[str, Any]:
        body: dict[str, Any] = {"id": plan.plan_id, "name": plan.name, "description": plan.description, "apiStages": [
            {"apiId": s.api_id, "stage": s.stage, **({"throttle": {
                f"{path}/{method}": {"burstLimit": self._throttle(t).burst, "rateLimit": self._throttle(t).rate}
                for (method, path), t in s.method_throttles.items()}} if s.method_throttles else {})}
            for s in plan.stages]}
        if plan.throttle is not None:
            throttle = self._throttle(plan.throttle)
            body["throttle"] = {"burstLimit": throttle.burst, "rateLimit": throttle.rate}
        if plan.quota is not None:
            body["quota"] = {"limit": plan.quota.limit, "offset": plan.quota.offset, "period": plan.quota.period}
        return body

    def get_usage_plans(self, query: Any) -> dict[str, Any]:
        key = query.get("keyId")
        plans = [p for p in self.gateway.usage_plans.values()
                 if key is None or (p.plan_id, key) in self.gateway.plan_keys]
        return {"item": [self._plan(plan) for plan in plans]}

    def get_usage_plan(self, query: Any, plan_id: str) -> dict[str, Any]:
        plan = self.gateway.usage_plans.get(plan_id)
        if plan is None:
            raise NotFound("Invalid Usage Plan ID specified")
        return self._plan(plan)

    def _key(self, key: ApiKeySpec, include_value: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"id": key.key_id, "name": key.name, "description": key.description,
                                "enabled": key.enabled, "createdDate": int(self.created),
                                "lastUpdatedDate": int(self.created), "stageKeys": list(key.stage_keys)}
        if include_value:
            body["value"] = key.value
        return body

    def get_api_keys(self, query: Any) -> dict[str, Any]:
        include = query.get("includeValues", "false").lower() == "true"
        name = query.get("name")
        return {"item": [self._key(key, include) for key in self.gateway.api_keys.values()
                         if name is None or key.name.startswith(name)]}

    def get_api_key(self, query: Any, key_id: str) -> dict[str, Any]:
        key = self.gateway.api_keys.get(key_id)
        if key is None:
            raise NotFound("Invalid API Key identifier specified")
        return self._key(key, query.get("includeValue", "false").lower() == "true")

    def get_usage_plan_keys(self, query: Any, plan_id: str) -> dict[str, Any]:
        if plan_id not in self.gateway.usage_plans:
            raise NotFound("Invalid Usage Plan ID specified")
        keys = [self.gateway.api_keys[key_id] for plan, key_id in self.gateway.plan_keys if plan == plan_id]
        return {"item": [{"id": k.key_id, "type": "API_KEY", "name": k.name, "value": k.value} for k in keys]}

    # -- HTTP APIs (v2) --------------------------------------------------------------------------
    def _http_api(self, api: ApiSpec) -> dict[str, Any]:
        return {"apiId": api.api_id, "name": api.name, "description": api.description, "protocolType": "HTTP",
                "routeSelectionExpression": "$request.method $request.path",
                "apiKeySelectionExpression": "$request.header.x-api-key",
                "apiEndpoint": f"https://{api.api_id}.execute-api.{self.region}.amazonaws.com",
                "createdDate": _iso(self.created), "disableExecuteApiEndpoint": api.disable_execute_api_endpoint}

    def get_apis(self, query: Any) -> dict[str, Any]:
        return {"items": [self._http_api(api) for api in self.apis if api.kind == HTTP]}

    def get_api(self, query: Any, api_id: str) -> dict[str, Any]:
        return self._http_api(self._api(api_id, HTTP))

    def get_routes(self, query: Any, api_id: str) -> dict[str, Any]:
        api = self._api(api_id, HTTP)
        items = []
        for route in api.routes:
            item: dict[str, Any] = {"routeId": api_ids.derived_id("route-key", f"{api_id}:{route.key}", 7),
                                    "routeKey": route.key, "apiKeyRequired": False, "authorizationType": "NONE"}
            if route.integration is not None:
                item["target"] = "integrations/" + api_ids.derived_id("integration-key", f"{api_id}:{route.key}", 7)
            items.append(item)
        return {"items": items}

    def _route_settings(self, throttle: ThrottleSpec | None) -> dict[str, Any]:
        settings: dict[str, Any] = {"detailedMetricsEnabled": False}
        if throttle is not None:
            served = self._throttle(throttle)
            settings.update(throttlingBurstLimit=served.burst, throttlingRateLimit=served.rate)
        return settings

    def get_v2_stages(self, query: Any, api_id: str) -> dict[str, Any]:
        api = self._api(api_id, HTTP)
        return {"items": [{
            "stageName": stage.name, "autoDeploy": True, "deploymentId": api.api_id[:6],
            "defaultRouteSettings": self._route_settings(stage.default_throttle),
            "routeSettings": {(DEFAULT_ROUTE if path == DEFAULT_ROUTE else f"{method} {path}"): self._route_settings(t)
                              for (method, path), t in stage.route_throttles.items()},
            "stageVariables": dict(stage.variables), "createdDate": _iso(self.created),
            "lastUpdatedDate": _iso(self.created)} for stage in api.stages]}


class NotFound(LookupError):
    """A management call names something the gateway does not serve."""


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, body=json.dumps({"message": message}).encode(), content_type="application/json",
                        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())})
