"""The stage cache in the gateway's pipeline: looked up just before the integration (after the
authorizer, the API key and the throttles, so a hit still spends its tokens and quota, as on
AWS), and filled from the integration's answer. A hit answers without invoking the function.
The rules are in emulator.apigateway.caching.
"""

from __future__ import annotations

import logging

from emulator.apigateway.answers import Answer, id_headers
from emulator.apigateway.caching import (
    FAIL_WITH_403, IGNORED_CACHE_CONTROL_WARNING, SUCCEED_WITH_RESPONSE_HEADER, CachedResponse, StageCaches,
    asks_invalidation, cache_key, is_signed, response_size,
)
from emulator.apigateway.events import GatewayResponse
from emulator.apigateway.pipeline import Exchange, GatewayPipeline

log = logging.getLogger("emulator.apigateway")


class CacheStage:
    def __init__(self, pipeline: GatewayPipeline, caches: StageCaches) -> None:
        self.pipeline = pipeline
        self.caches = caches

    def install(self) -> None:
        self.pipeline.insert_before_integration(self.lookup)
        self.pipeline.after_integration.append(self.remember)

    async def lookup(self, exchange: Exchange) -> GatewayResponse | None:
        match = exchange.match
        assert match is not None
        plan = self.caches.plan(match)
        request = exchange.request
        if plan is None or (plan.get_only and request.method != "GET"):
            return None
        key = cache_key(request, match)
        store = self.caches.store(match)
        now = self.pipeline.clock.now()
        if asks_invalidation(request):
            if not plan.require_authorization or is_signed(request):
                store.invalidate(key)
                exchange.cache_key, exchange.cache_ttl_s, exchange.cache_hit = key, plan.ttl_s, False
                return None  # a miss: the integration answers, and its answer is cached afresh
            if plan.unauthorized_strategy == FAIL_WITH_403:
                self.pipeline.log_once(exchange, "cache-control", "403: Cache-Control: max-age=0 from a request not "
                                       "authorized to invalidate the cache (RequireAuthorizationForCacheControl)")
                return self.pipeline.answer(exchange, Answer.CACHE_CONTROL_DENIED)
            if plan.unauthorized_strategy == SUCCEED_WITH_RESPONSE_HEADER:
                exchange.extra_headers.append(("Warning", IGNORED_CACHE_CONTROL_WARNING))
        cached = store.get(key, now)
        if cached is not None:
            exchange.cache_hit = True
            headers = list(cached.headers) + exchange.extra_headers
            headers.extend(id_headers(match.api.kind, exchange.request_id, exchange.extended_request_id))
            return GatewayResponse(cached.status, headers, cached.body)
        exchange.cache_key, exchange.cache_ttl_s, exchange.cache_hit = key, plan.ttl_s, False
        return None

    def remember(self, exchange: Exchange, response: GatewayResponse) -> None:
        """Cache the integration's answer (not API Gateway's own: a timeout or a malformed
        response is not an integration response)."""
        if exchange.cache_key is None or not exchange.integration_answered:
            return
        size = response_size(response)
        if not self.caches.cacheable(response.status, size):
            return
        match = exchange.match
        assert match is not None
        id_names = {name.lower() for name, _ in id_headers(match.api.kind, "", "")} | {"warning"}
        headers = tuple((k, v) for k, v in response.headers if k.lower() not in id_names)
        self.caches.store(match).put(exchange.cache_key, CachedResponse(response.status, headers, response.body), size,
                                     exchange.cache_ttl_s, self.pipeline.clock.now())
