"""Counters per API, stage and route with CloudWatch's names, served at /_emulator/metrics.

REST APIs: Count, 4XXError, 5XXError, Latency, IntegrationLatency
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html);
HTTP APIs: Count, 4xx, 5xx, Latency, IntegrationLatency
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html). Latencies
are kept as CloudWatch's statistics (SampleCount, Sum, Minimum, Maximum, Average), in ms.
REST caching: CacheHitCount and CacheMissCount, counted for requests to methods that are
cached (a hit answered from the stage cache, a miss went to the integration).
Ours, not CloudWatch's: Authorizer (what the route's authorizer did with each request:
invoked, cached, unauthorized, denied, failed, throttled), ThrottlesByLayer (which layer answered 429), LambdaThrottles (the
function was throttled: 500), IntegrationTimeouts.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emulator.template.api_specs import REST


@dataclass(slots=True)
class Statistic:
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def snapshot(self) -> dict[str, float]:
        if not self.count:
            return {"SampleCount": 0}
        return {"SampleCount": self.count, "Sum": round(self.total, 3), "Minimum": round(self.minimum, 3),
                "Maximum": round(self.maximum, 3), "Average": round(self.total / self.count, 3)}


@dataclass(slots=True)
class RequestCounters:
    count: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latency: Statistic = field(default_factory=Statistic)
    integration_latency: Statistic = field(default_factory=Statistic)
    throttles: Counter = field(default_factory=Counter)
    lambda_throttles: int = 0
    integration_timeouts: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    authorizer: Counter = field(default_factory=Counter)

    def record(self, status: int, latency_ms: float, integration_ms: float | None) -> None:
        self.count += 1
        if 400 <= status < 500:
            self.client_errors += 1
        elif status >= 500:
            self.server_errors += 1
        self.latency.add(latency_ms)
        if integration_ms is not None:
            self.integration_latency.add(integration_ms)

    def snapshot(self, kind: str) -> dict[str, Any]:
        client, server = ("4XXError", "5XXError") if kind == REST else ("4xx", "5xx")
        return {"Count": self.count, client: self.client_errors, server: self.server_errors,
                "Latency": self.latency.snapshot(), "IntegrationLatency": self.integration_latency.snapshot(),
                "ThrottlesByLayer": dict(sorted(self.throttles.items())), "LambdaThrottles": self.lambda_throttles,
                "IntegrationTimeouts": self.integration_timeouts,
                **({"CacheHitCount": self.cache_hits, "CacheMissCount": self.cache_misses} if kind == REST else {}),
                "Authorizer": dict(sorted(self.authorizer.items()))}


@dataclass(slots=True)
class StageCounters:
    totals: RequestCounters = field(default_factory=RequestCounters)
    routes: dict[str, RequestCounters] = field(default_factory=dict)

    def route(self, key: str) -> RequestCounters:
        counters = self.routes.get(key)
        if counters is None:
            counters = self.routes[key] = RequestCounters()
        return counters


class GatewayMetrics:
    def __init__(self) -> None:
        self.stages: dict[tuple[str, str], StageCounters] = {}  # (api id, stage)
        self.unmatched = 0  # requests no API stage took (no log, no metric on AWS)
        self.account_throttles = 0

    def stage(self, api_id: str, stage: str) -> StageCounters:
        counters = self.stages.get((api_id, stage))
        if counters is None:
            counters = self.stages[(api_id, stage)] = StageCounters()
        return counters

    def reset(self) -> None:
        self.stages.clear()
        self.unmatched = 0
        self.account_throttles = 0

    def snapshot_stage(self, api_id: str, stage: str, kind: str) -> dict[str, Any]:
        counters = self.stages.get((api_id, stage)) or StageCounters()
        return {**counters.totals.snapshot(kind),
                "Routes": {key: route.snapshot(kind) for key, route in sorted(counters.routes.items())}}
