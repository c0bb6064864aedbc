"""REST stage caching: which methods are cached and for how long, the cache key of a request,
`Cache-Control: max-age=0` invalidation, and the per-stage stores. No I/O: time comes in as
`now` from the injected clock.

https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-caching.html:
* a method is cached when its stage has a cache cluster and caching is enabled for it; "when
  you enable caching for a stage, only GET methods have caching enabled by default": the
  stage's `*/*` MethodSettings entry (and a `*` method of a path) enables GET; another method
  needs an entry of its own;
* TTL 300 s by default, at most 3,600, 0 disables; a response over 1 MB is not cached;
* the cache key is the method and resource path plus the method request parameters declared
  as cache keys (query strings, headers, path parameters): two requests that differ only in
  an undeclared parameter share an entry, as on AWS (a greedy `{proxy+}` needs
  `method.request.path.proxy` as a key to tell paths apart);
* a client invalidates its entry with `Cache-Control: max-age=0`; with
  `RequireAuthorizationForCacheControl` (the default) only an authorized client may, else
  `UnauthorizedCacheControlHeaderStrategy` decides: FAIL_WITH_403 (default),
  SUCCEED_WITH_RESPONSE_HEADER, SUCCEED_WITHOUT_RESPONSE_HEADER. "Authorized" needs IAM's
  `execute-api:InvalidateCache`; the emulator counts any SigV4-signed request as authorized
  (README 'Choices').
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

from emulator.apigateway.events import GatewayRequest, GatewayResponse
from emulator.apigateway.routing import RouteMatch
from emulator.policy.api_cache import CACHE_TTL_DEFAULT_S, MAX_CACHED_RESPONSE_BYTES, TtlCache, cluster_capacity_bytes
from emulator.template.api_specs import REST, WILDCARD, MethodCacheSpec, RouteSpec, StageSpec

FAIL_WITH_403 = "FAIL_WITH_403"
SUCCEED_WITH_RESPONSE_HEADER = "SUCCEED_WITH_RESPONSE_HEADER"
# The warning an ignored Cache-Control header earns with SUCCEED_WITH_RESPONSE_HEADER (AWS
# does not publish its text; README 'Choices').
IGNORED_CACHE_CONTROL_WARNING = '199 - "Cache-Control: max-age=0 ignored: the request is not authorized to invalidate the cache"'
SIGV4_PREFIX = "AWS4-HMAC-SHA256"


class CacheStatuses(StrEnum):
    """Which integration responses are cached (AWS does not say; users report cached 4xx and
    5xx answers of their functions: README 'Choices')."""

    ALL = "all"
    SUCCESS = "2xx"


@dataclass(frozen=True, slots=True)
class CachePlan:
    ttl_s: int
    get_only: bool  # enabled by the stage's default (or a `*` method): GET requests only
    require_authorization: bool
    unauthorized_strategy: str


def _lookup(table: Mapping[tuple[str, str], MethodCacheSpec], route: RouteSpec) -> tuple[MethodCacheSpec | None, bool]:
    """The route's own entry, and whether it names the method exactly."""
    for key, exact in (((route.method, route.path), True), ((WILDCARD, route.path), False), ((route.method, WILDCARD), True)):
        found = table.get(key)
        if found is not None:
            return found, exact
    return None, False


def cache_plan(kind: str, stage: StageSpec, route: RouteSpec) -> CachePlan | None:
    """How a method is cached in a stage; None: not cached."""
    if kind != REST or not stage.cache_cluster_enabled or route.integration is None:
        return None
    own, exact = _lookup(stage.route_cache, route)
    default = stage.default_cache
    layers = [spec for spec in (own, default) if spec is not None]
    enabled = next((spec.enabled for spec in layers if spec.enabled is not None), False)
    if not enabled:
        return None
    get_only = not (own is not None and own.enabled and exact)
    ttl = next((spec.ttl_s for spec in layers if spec.ttl_s is not None), CACHE_TTL_DEFAULT_S)
    if ttl <= 0:
        return None
    require = next((spec.require_authorization for spec in layers if spec.require_authorization is not None), True)
    strategy = next((spec.unauthorized_strategy for spec in layers if spec.unauthorized_strategy), FAIL_WITH_403)
    return CachePlan(ttl, get_only, require, strategy)


def _values(request: GatewayRequest, match: RouteMatch, parameter: str) -> tuple[str, ...]:
    _, _, where_name = parameter.partition("method.request.")
    where, _, name = where_name.partition(".")
    if where in ("header", "multivalueheader"):
        lower = name.lower()
        return tuple(value for key, value in request.headers if key.lower() == lower)
    if where in ("querystring", "multivaluequerystring"):
        return tuple(value for key, value in parse_qsl(request.raw_query, keep_blank_values=True) if key == name)
    if where == "path":
        value = (match.path_parameters or {}).get(name)
        return () if value is None else (value,)
    return ()


def cache_key(request: GatewayRequest, match: RouteMatch) -> tuple[str, ...]:
    """The request's cache key in its stage's store."""
    key = [request.method, match.route.path]
    for parameter in match.route.cache_key_parameters:
        key.append(parameter)
        key.extend(_values(request, match, parameter))
        key.append("\x00")  # ends this parameter's values: ("a", "b") and ("a b",) differ
    return tuple(key)


def asks_invalidation(request: GatewayRequest) -> bool:
    for key, value in request.headers:
        if key.lower() == "cache-control":
            if any(part.strip().lower().replace(" ", "") == "max-age=0" for part in value.split(",")):
                return True
    return False


def is_signed(request: GatewayRequest) -> bool:
    """A SigV4-signed request: an `Authorization: AWS4-HMAC-SHA256 ...` header, or a presigned
    URL's `X-Amz-Signature` (the signature itself is not verified: README)."""
    for key, value in request.headers:
        if key.lower() == "authorization" and value.startswith(SIGV4_PREFIX):
            return True
    return "X-Amz-Signature=" in request.raw_query


def response_size(response: GatewayResponse) -> int:
    return len(response.body) + sum(len(k) + len(v) + 4 for k, v in response.headers) + 64


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[str, str], ...]  # without the per-request id headers
    body: bytes


class StageCaches:
    """Every stage's store, each bounded by its cluster size (at most `cap_mb`)."""

    def __init__(self, cap_mb: int, statuses: CacheStatuses = CacheStatuses.ALL) -> None:
        self.cap_mb = cap_mb
        self.statuses = statuses
        self._stores: dict[tuple[str, str], TtlCache[CachedResponse]] = {}
        self._plans: dict[tuple[str, str, str, str], CachePlan | None] = {}

    def plan(self, match: RouteMatch) -> CachePlan | None:
        key = (match.api.api_id, match.stage.name, match.route.method, match.route.path)
        if key not in self._plans:
            self._plans[key] = cache_plan(match.api.kind, match.stage, match.route)
        return self._plans[key]

    def store(self, match: RouteMatch) -> TtlCache[CachedResponse]:
        key = (match.api.api_id, match.stage.name)
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = TtlCache(cluster_capacity_bytes(match.stage.cache_cluster_size, self.cap_mb))
        return store

    def cacheable(self, status: int, size: int) -> bool:
        if size > MAX_CACHED_RESPONSE_BYTES:
            return False
        return self.statuses is CacheStatuses.ALL or 200 <= status < 300

    def snapshot(self, api_id: str, stage: str) -> dict[str, int] | None:
        store = self._stores.get((api_id, stage))
        if store is None:
            return None
        return {"Entries": len(store), "Bytes": store.used, "CapacityBytes": store.capacity, "Evictions": store.evictions}
