"""Routes out of an OpenAPI (2.0 or 3.x) definition with API Gateway's extensions.

Read: `paths` with their methods (and `x-amazon-apigateway-any-method`), each method's
`x-amazon-apigateway-integration` (a Lambda proxy integration is `type: aws_proxy` with a
Lambda URI), `security` naming an `apiKey` scheme (API key required), and
`x-amazon-apigateway-binary-media-types`.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.template.api_caching import cache_key_parameters
from emulator.template.api_reading import ApiProps, check_path, normalise_method, served_integration
from emulator.template.api_specs import DEFAULT_ROUTE, RouteSpec
from emulator.template.specs import FunctionSpec

ANY_METHOD_KEY = "x-amazon-apigateway-any-method"
INTEGRATION_KEY = "x-amazon-apigateway-integration"
BINARY_TYPES_KEY = "x-amazon-apigateway-binary-media-types"
_OPENAPI_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", ANY_METHOD_KEY}
PROXY_TYPE = "aws_proxy"


def definition_routes(props: ApiProps, prop: str, definition: Any, functions: Mapping[str, FunctionSpec],
                      kind: str) -> tuple[list[RouteSpec], tuple[str, ...]]:
    """(routes, binary media types) of a definition."""
    document = props.mapping(prop, definition)
    paths = props.mapping(f"{prop}.paths", document.get("paths"))
    key_schemes = _api_key_schemes(document)
    default_security = document.get("security")
    routes: list[RouteSpec] = []
    for path, item in paths.items():
        where = f"{prop}.paths.{path}"
        item = props.mapping(where, item)
        path = check_path(props, where, path, kind)
        for method_key, operation in item.items():
            if str(method_key).lower() not in _OPENAPI_METHODS:
                continue  # parameters, summary, servers, ...
            method = normalise_method(props, f"{where}.{method_key}", method_key)
            operation = props.mapping(f"{where}.{method_key}", operation)
            routes.append(_operation_route(props, f"{where}.{method_key}", path, method, operation, functions, kind,
                                           key_schemes, default_security))
    binary = document.get(BINARY_TYPES_KEY) or []
    if not isinstance(binary, list) or not all(isinstance(t, str) for t in binary):
        props.fail(f"{prop}.{BINARY_TYPES_KEY}", "must be a list of media types")
    return routes, tuple(binary)


def _operation_route(props: ApiProps, where: str, path: str, method: str, operation: Mapping[str, Any],
                     functions: Mapping[str, FunctionSpec], kind: str, key_schemes: set[str],
                     default_security: Any) -> RouteSpec:
    security = operation.get("security", default_security)
    key_required = any(isinstance(requirement, Mapping) and key_schemes & set(requirement)
                       for requirement in (security if isinstance(security, list) else []))
    settings = props.mapping(f"{where}.{INTEGRATION_KEY}", operation.get(INTEGRATION_KEY))
    integration_type = str(settings.get("type", "")).lower()
    declared_by = f"resource {props.logical_id!r}, {where}"
    if path == DEFAULT_ROUTE:
        method = "ANY"
    if not settings:
        return RouteSpec(method, path, None, key_required, declared_by, "it has no x-amazon-apigateway-integration")
    if integration_type != PROXY_TYPE:
        return RouteSpec(method, path, None, key_required, declared_by,
                         f"its integration type {settings.get('type')!r} is not emulated (only aws_proxy to Lambda is)")
    spec, why = served_integration(props, f"{where}.{INTEGRATION_KEY}", settings.get("uri"), functions, kind=kind,
                                   payload=settings.get("payloadFormatVersion"), timeout=settings.get("timeoutInMillis"))
    return RouteSpec(method, path, spec, key_required, declared_by, why, cache_key_parameters=cache_key_parameters(
        props, f"{where}.{INTEGRATION_KEY}.cacheKeyParameters", settings.get("cacheKeyParameters")))


def _api_key_schemes(document: Mapping[str, Any]) -> set[str]:
    """Names of the security schemes that are API keys (2.0 securityDefinitions, 3.x
    components.securitySchemes): `type: apiKey, name: x-api-key, in: header`."""
    schemes: dict[str, Any] = {}
    for source in (document.get("securityDefinitions"), (document.get("components") or {}).get("securitySchemes")):
        if isinstance(source, Mapping):
            schemes.update(source)
    return {name for name, scheme in schemes.items()
            if isinstance(scheme, Mapping) and scheme.get("type") == "apiKey"
            and str(scheme.get("name", "")).lower() == "x-api-key"}
