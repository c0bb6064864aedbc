"""What a template declares for API Gateway: APIs, their routes and stages, usage plans and keys.

Plain frozen values, produced by emulator.template.apis and served by emulator.apigateway.
Both kinds of API share one shape: a REST API's methods and an HTTP API's routes are both
`RouteSpec`s (method + path), and REST's stage `MethodSettings` and HTTP's `RouteSettings`
are both per-route throttles of a `StageSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

REST = "REST"  # API Gateway REST API (v1), payload format 1.0
HTTP = "HTTP"  # API Gateway HTTP API (v2), payload format 2.0 by default
DEFAULT_ROUTE = "$default"  # HTTP APIs' catch-all route and unprefixed stage
ANY_METHOD = "ANY"
WILDCARD = "*"

# Integration timeouts. REST: 50 ms to 29 s, 29 s by default
# (https://docs.aws.amazon.com/apigateway/latest/api/API_Integration.html#apigw-Type-Integration-timeoutInMillis);
# above 29 s only for Regional and private APIs after a quota increase, up to 300 s
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html). HTTP APIs: 50 ms
# to 30 s, 30 s by default
# (https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-integrations-integrationid.html#apis-apiid-integrations-integrationid-prop-integration-timeoutinmillis).
MIN_TIMEOUT_MS = 50
REST_DEFAULT_TIMEOUT_MS = 29_000
REST_RAISED_TIMEOUT_MS = 300_000
HTTP_MAX_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class ThrottleSpec:
    """A token bucket's settings: steady rate (requests per second) and burst (capacity).
    None where the template leaves one out; the gateway then uses the account's value."""

    rate: float | None = None
    burst: int | None = None


@dataclass(frozen=True)
class IntegrationSpec:
    """A Lambda proxy integration."""

    function: str  # the function's name
    qualifier: str | None  # version or alias named in the integration URI
    payload_format: str  # "1.0" or "2.0"
    timeout_ms: int


@dataclass(frozen=True)
class IdentitySource:
    """Where an authorizer's identity comes from: a request header, a query string, a stage
    variable or a context variable (REST `method.request.header.Auth`, HTTP `$request.header.Auth`)."""

    where: str  # header, querystring, stageVariables, context
    name: str
    declared: str  # as the template wrote it


# Authorizer kinds. TOKEN and REQUEST are Lambda authorizers (an HTTP API's Lambda authorizer
# is a REQUEST one); IAM, COGNITO and JWT are accepted, not verified (README).
TOKEN, REQUEST, IAM, COGNITO, JWT = "TOKEN", "REQUEST", "AWS_IAM", "COGNITO_USER_POOLS", "JWT"
LAMBDA_AUTHORIZERS = (TOKEN, REQUEST)


@dataclass(frozen=True)
class AuthorizerSpec:
    name: str
    authorizer_id: str
    kind: str  # TOKEN, REQUEST, AWS_IAM, COGNITO_USER_POOLS, JWT
    function: str | None = None  # Lambda authorizers: the function's name and qualifier
    qualifier: str | None = None
    identity_sources: tuple[IdentitySource, ...] = ()
    validation_expression: str | None = None  # TOKEN: a regular expression the token must match
    ttl_s: int = 300  # result caching by identity; 0 disables
    payload_format: str = "1.0"  # HTTP APIs: 1.0 or 2.0; REST: 1.0
    simple_responses: bool = False  # HTTP APIs, payload 2.0: {"isAuthorized": ...}
    api_kind: str = "REST"

    @property
    def is_lambda(self) -> bool:
        return self.kind in LAMBDA_AUTHORIZERS


@dataclass(frozen=True)
class MethodCacheSpec:
    """A REST method's cache settings (MethodSettings `CachingEnabled`, `CacheTtlInSeconds`,
    `RequireAuthorizationForCacheControl`, `UnauthorizedCacheControlHeaderStrategy`); None
    where the entry leaves one out."""

    enabled: bool | None = None
    ttl_s: int | None = None
    require_authorization: bool | None = None
    unauthorized_strategy: str | None = None


@dataclass(frozen=True)
class RouteSpec:
    """A REST method or an HTTP API route: `GET /pets/{id}`, `ANY /{proxy+}`, `$default`."""

    method: str  # upper case, or ANY
    path: str  # a resource path, or $default
    integration: IntegrationSpec | None  # None: declared, but not a Lambda proxy integration
    api_key_required: bool = False
    declared_by: str = ""  # where, for messages: "function 'Hello', event 'Get'"
    unsupported: str = ""  # why the integration is not served, when it is not
    authorizer: AuthorizerSpec | None = None
    # REST: the method request parameters that are cache keys (`method.request.querystring.q`).
    cache_key_parameters: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The route key as AWS writes it (`GET /pets`, `$default`)."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


@dataclass(frozen=True)
class StageSpec:
    name: str
    variables: Mapping[str, str] = field(default_factory=dict)
    # REST: MethodSettings `*/*` ("default method throttling"); HTTP: DefaultRouteSettings.
    default_throttle: ThrottleSpec | None = None
    # REST: MethodSettings per (method, resource path), `*` allowed in either; HTTP:
    # RouteSettings per route key. Keyed by (method, path).
    route_throttles: Mapping[tuple[str, str], ThrottleSpec] = field(default_factory=dict)
    # REST caching: the stage's cache cluster, MethodSettings `*/*` and per-method entries.
    cache_cluster_enabled: bool = False
    cache_cluster_size: str = "0.5"
    default_cache: MethodCacheSpec | None = None
    route_cache: Mapping[tuple[str, str], MethodCacheSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    api_id: str
    kind: str  # REST or HTTP
    name: str
    routes: tuple[RouteSpec, ...] = ()
    stages: tuple[StageSpec, ...] = ()
    binary_media_types: tuple[str, ...] = ()
    description: str = ""
    disable_execute_api_endpoint: bool = False


@dataclass(frozen=True)
class QuotaSpec:
    limit: int
    period: str  # DAY, WEEK or MONTH
    offset: int = 0


@dataclass(frozen=True)
class UsagePlanStageSpec:
    api_id: str
    stage: str
    # Per-method throttles of this stage, keyed (method, resource path): ApiStages.Throttle
    # `"/pets/GET": {...}` becomes ("GET", "/pets").
    method_throttles: Mapping[tuple[str, str], ThrottleSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class UsagePlanSpec:
    logical_id: str
    plan_id: str
    name: str
    stages: tuple[UsagePlanStageSpec, ...] = ()
    throttle: ThrottleSpec | None = None
    quota: QuotaSpec | None = None
    description: str = ""


@dataclass(frozen=True)
class ApiKeySpec:
    logical_id: str
    key_id: str
    name: str
    value: str
    enabled: bool
    description: str = ""
    stage_keys: tuple[str, ...] = ()  # "{restApiId}/{stageName}"


@dataclass(frozen=True)
class GatewaySpec:
    """Every API, usage plan and key of a template."""

    apis: Mapping[str, ApiSpec] = field(default_factory=dict)  # by API id, in template order
    usage_plans: Mapping[str, UsagePlanSpec] = field(default_factory=dict)  # by plan id
    api_keys: Mapping[str, ApiKeySpec] = field(default_factory=dict)  # by key id
    plan_keys: tuple[tuple[str, str], ...] = ()  # (plan id, key id)
