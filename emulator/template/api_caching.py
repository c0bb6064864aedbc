"""REST stage caching in a template: the stage's cache cluster (`CacheClusterEnabled`,
`CacheClusterSize`), its `MethodSettings` (`CachingEnabled`, `CacheTtlInSeconds`,
`RequireAuthorizationForCacheControl`, `UnauthorizedCacheControlHeaderStrategy`) and the
methods' cache key parameters (SAM `RequestParameters` with `Caching: true`, a Method's
`Integration.CacheKeyParameters`, OpenAPI `cacheKeyParameters`).
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-caching.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-apigateway-stage-methodsetting.html
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from emulator.policy.api_cache import CACHE_CLUSTER_SIZES, CACHE_TTL_MAX_S, DEFAULT_CACHE_CLUSTER_SIZE
from emulator.template.api_reading import ApiProps, method_setting_key
from emulator.template.api_specs import WILDCARD, MethodCacheSpec, StageSpec

# https://docs.aws.amazon.com/apigateway/latest/api/API_MethodSetting.html#apigw-Type-MethodSetting-unauthorizedCacheControlHeaderStrategy
UNAUTHORIZED_STRATEGIES = ("FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER")
# Method request parameters a cache key may name (path, query string, header).
_CACHE_KEY = re.compile(r"method\.request\.(path|querystring|multivaluequerystring|header|multivalueheader)\.[^.\s]+")


def method_cache(props: ApiProps, where: str, item: Any) -> MethodCacheSpec | None:
    """The cache settings of one MethodSettings entry (or a Deployment's StageDescription), None
    when it has none."""
    settings = props.mapping(where, item)
    enabled = settings.get("CachingEnabled")
    ttl = props.number(f"{where}.CacheTtlInSeconds", settings.get("CacheTtlInSeconds"), 0, CACHE_TTL_MAX_S, integer=True)
    require = settings.get("RequireAuthorizationForCacheControl")
    strategy = settings.get("UnauthorizedCacheControlHeaderStrategy")
    if enabled is None and ttl is None and require is None and strategy is None:
        return None
    if strategy is not None:
        strategy = props.text(f"{where}.UnauthorizedCacheControlHeaderStrategy", strategy).upper()
        if strategy not in UNAUTHORIZED_STRATEGIES:
            props.fail(f"{where}.UnauthorizedCacheControlHeaderStrategy",
                       f"{strategy!r} is not one of {', '.join(UNAUTHORIZED_STRATEGIES)}")
    return MethodCacheSpec(
        None if enabled is None else props.boolean(f"{where}.CachingEnabled", enabled),
        None if ttl is None else int(ttl),
        None if require is None else props.boolean(f"{where}.RequireAuthorizationForCacheControl", require),
        strategy)


def method_cache_settings(props: ApiProps, prop: str, value: Any) -> tuple[MethodCacheSpec | None, dict[tuple[str, str], MethodCacheSpec]]:
    """MethodSettings' cache entries: the stage's default (`/*`, `*`) and per method, keyed like
    the throttles (emulator.template.apis.method_settings)."""
    if not isinstance(value, list):
        return None, {}  # method_settings reports a malformed list
    default: MethodCacheSpec | None = None
    per_route: dict[tuple[str, str], MethodCacheSpec] = {}
    for index, item in enumerate(value):
        where = f"{prop}[{index}]"
        spec = method_cache(props, where, item)
        if spec is None:
            continue
        item = props.mapping(where, item)
        key = method_setting_key(props, where, item)
        if key == (WILDCARD, WILDCARD):
            default = spec
        else:
            per_route[key] = spec
    return default, per_route


def cluster(props: ApiProps, prefix: str, settings: Any) -> tuple[bool, str]:
    """(CacheClusterEnabled, CacheClusterSize) of a stage's properties."""
    settings = props.mapping(prefix.rstrip(".") or "Properties", settings)
    enabled = props.boolean(f"{prefix}CacheClusterEnabled", settings.get("CacheClusterEnabled"))
    size = props.text(f"{prefix}CacheClusterSize", settings.get("CacheClusterSize"), DEFAULT_CACHE_CLUSTER_SIZE)
    if size not in CACHE_CLUSTER_SIZES:
        props.fail(f"{prefix}CacheClusterSize", f"{size!r} is not a cache size API Gateway offers "
                   f"({', '.join(CACHE_CLUSTER_SIZES)} GB)")
    return enabled, size


def with_cache(props: ApiProps, stage: StageSpec, prefix: str, settings: Any, method_settings: Any) -> StageSpec:
    """The stage with its cache cluster and MethodSettings' cache entries."""
    enabled, size = cluster(props, prefix, settings)
    default, per_route = method_cache_settings(props, f"{prefix}MethodSettings", method_settings)
    if prefix:  # a Deployment's StageDescription may give the stage's default directly
        default = default or method_cache(props, prefix.rstrip("."), settings)
    return replace(stage, cache_cluster_enabled=enabled, cache_cluster_size=size, default_cache=default,
                   route_cache=per_route)


def cache_key_parameters(props: ApiProps, prop: str, value: Any) -> tuple[str, ...]:
    """A list of `method.request.{path|querystring|header}.NAME`."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        props.fail(prop, "must be a list of method request parameters, e.g. ['method.request.querystring.q']")
    for item in value:
        if not _CACHE_KEY.fullmatch(item):
            props.fail(prop, f"{item!r} is not a method request parameter (method.request.path|querystring|header.NAME)")
    return tuple(value)


def sam_request_parameters(props: ApiProps, prop: str, value: Any) -> tuple[str, ...]:
    """SAM's `RequestParameters`: strings, or `{name: {Required, Caching}}`; the ones with
    `Caching: true` are cache keys
    (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-api.html#sam-function-api-requestparameters)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        props.fail(prop, "must be a list of parameters")
    keys = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            continue
        for name, settings in props.mapping(f"{prop}[{index}]", item).items():
            if props.boolean(f"{prop}[{index}].{name}.Caching", props.mapping(f"{prop}[{index}].{name}", settings).get("Caching")):
                keys.append(str(name))
    return cache_key_parameters(props, prop, keys)
