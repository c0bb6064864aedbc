"""The API Gateway front door as the composition root sees it: built from the template's
GatewaySpec, started on its own port (only when the template declares an API), listed at
start-up, counted in /_emulator/metrics, reset and shut down with the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.apigateway.authorizers import AuthorizerStage
from emulator.apigateway.cache_stage import CacheStage
from emulator.apigateway.caching import CacheStatuses, StageCaches
from emulator.apigateway.http import GatewayHttp
from emulator.apigateway.management import ApiGatewayManagement
from emulator.apigateway.metrics import GatewayMetrics
from emulator.apigateway.pipeline import GatewayPipeline, PipelineSettings
from emulator.apigateway.routing import Catalogue
from emulator.apigateway.throttles import GatewayThrottles, ThrottleSettings
from emulator.clock import Clock
from emulator.policy.api_throttling import QuotaOffset, SpendRule
from emulator.service.lambda_service import LambdaService
from emulator.template.api_specs import DEFAULT_ROUTE, REST, GatewaySpec


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int
    region: str
    account_id: str
    account_rate: float  # already divided by --scale-factor
    account_burst: int
    lambda_throttle_status: int = 500
    quota_offset: QuotaOffset = QuotaOffset.REQUESTS
    spend: SpendRule = SpendRule.ADMITTED
    cache_max_mb: int = 64  # a REST stage cache's memory, at most (README 'Choices')
    cache_statuses: str = "all"


class ApiGatewayFrontDoor:
    def __init__(self, gateway: GatewaySpec, config: GatewayConfig, service: LambdaService, clock: Clock) -> None:
        self.gateway = gateway
        self.config = config
        self.clock = clock
        self.catalogue = Catalogue(list(gateway.apis.values()))
        self.metrics = GatewayMetrics()
        self.throttles = self._new_throttles()
        self.pipeline = GatewayPipeline(
            catalogue=self.catalogue, throttles=self.throttles, service=service, clock=clock, metrics=self.metrics,
            settings=PipelineSettings(config.account_id, config.region, config.lambda_throttle_status))
        self.authorizers = AuthorizerStage(self.pipeline)
        self.authorizers.install()
        self.caches = self._new_caches()
        self.cache_stage = CacheStage(self.pipeline, self.caches)
        self.cache_stage.install()
        self.http = GatewayHttp(self.pipeline)
        self.management = ApiGatewayManagement(gateway, region=config.region, account_id=config.account_id,
                                               account_rate=config.account_rate, account_burst=config.account_burst)

    def _new_throttles(self) -> GatewayThrottles:
        config = self.config
        settings = ThrottleSettings(config.account_rate, config.account_burst, config.spend, config.quota_offset)
        return GatewayThrottles(self.gateway, settings, self.clock.wall())

    def _new_caches(self) -> StageCaches:
        return StageCaches(self.config.cache_max_mb, CacheStatuses(self.config.cache_statuses))

    @property
    def serving(self) -> bool:
        return bool(self.gateway.apis)

    async def start(self) -> None:
        """Listen on the gateway's port; raises OSError when it cannot."""
        if self.serving:
            await self.http.start(self.config.host, self.config.port)

    @property
    def port(self) -> int | None:
        return self.http.port

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def describe(self) -> list[str]:
        """One line per API stage with its URLs, then its routes."""
        lines = []
        for api in self.gateway.apis.values():
            for stage in api.stages:
                prefix = "" if stage.name == DEFAULT_ROUTE else f"/{stage.name}"
                host_url = f"http://{api.api_id}.execute-api.localhost:{self.port}{prefix}/"
                lines.append(f"{'REST' if api.kind == REST else 'HTTP'} API {api.name} ({api.api_id}), stage "
                             f"{stage.name}: {self.url}{prefix}/  or  {host_url}")
            for route in api.routes:
                target = route.integration.function if route.integration else f"not served: {route.unsupported}"
                key = " (API key)" if route.api_key_required else ""
                auth = f" (authorizer {route.authorizer.name})" if route.authorizer else ""
                lines.append(f"    {route.key} -> {target}{key}{auth}")
        return lines

    def snapshot(self) -> dict[str, Any]:
        wall = self.clock.wall()
        apis = {}
        for api in self.gateway.apis.values():
            stages = {}
            for stage in api.stages:
                stages[stage.name] = self.metrics.snapshot_stage(api.api_id, stage.name, api.kind)
                cache = self.caches.snapshot(api.api_id, stage.name)
                if cache is not None:
                    stages[stage.name]["Cache"] = cache
            apis[api.api_id] = {"Name": api.name, "LogicalId": api.logical_id, "Type": api.kind, "Stages": stages}
        plans = {}
        for plan in self.gateway.usage_plans.values():
            keys = {}
            for plan_id, key_id in self.gateway.plan_keys:
                if plan_id != plan.plan_id:
                    continue
                entry: dict[str, Any] = {"Name": self.gateway.api_keys[key_id].name}
                counter = self.throttles.quota(plan, key_id)
                if counter is not None:
                    remaining = counter.remaining(wall)  # first: it starts a new period when one is due
                    entry.update(QuotaUsed=counter.used, QuotaRemaining=remaining)
                keys[key_id] = entry
            plans[plan.plan_id] = {"Name": plan.name, "LogicalId": plan.logical_id, "Keys": keys}
        return {
            "url": self.url if self.port else None,
            "account": {"RateLimit": self.config.account_rate, "BurstLimit": self.config.account_burst,
                        "Throttles": self.metrics.account_throttles},
            "unmatched_requests": self.metrics.unmatched,
            "apis": apis,
            "usage_plans": plans,
        }

    async def reset(self) -> None:
        """Back to start-up: full buckets, fresh quotas, no counters, no invocation left over."""
        await self.pipeline.close()
        self.metrics.reset()
        self.throttles = self.pipeline.throttles = self._new_throttles()
        self.caches = self.cache_stage.caches = self._new_caches()
        self.authorizers.reset()

    # -- shutdown ---------------------------------------------------------------------------------
    async def begin_shutdown(self) -> None:
        await self.http.stop_listening()
        self.http.begin_shutdown()

    @property
    def requests_in_flight(self) -> int:
        return self.http.requests_in_flight

    def answer_remaining(self) -> None:
        self.http.answer_remaining()

    async def close(self) -> None:
        await self.pipeline.close()
        await self.http.close()
