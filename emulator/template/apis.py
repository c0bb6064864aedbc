"""SAM's APIs in a template: AWS::Serverless::Api / HttpApi, functions' Api / HttpApi events,
Auth.UsagePlan, and the builder every API Gateway reader fills in.

`prepare_gateway` plays SAM's transform before anything is read (Globals.Api /
Globals.HttpApi, the implicit ServerlessRestApi / ServerlessHttpApi, the stage names SAM
lets a template refer to). emulator.template.gateway runs the readers in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emulator.template import api_ids
from emulator.template.api_ids import IMPLICIT_HTTP_API, IMPLICIT_REST_API, SAM_API, SAM_HTTP_API
from emulator.template.api_auth import route_authorizer, sam_authorizers
from emulator.template.api_caching import sam_request_parameters, with_cache
from emulator.template.api_reading import (
    ApiProps, check_path, function_target, method_setting_key, normalise_method, payload_format, quota, timeout_ms,
    usage_plan_id,
)
from emulator.template.api_specs import (
    ANY_METHOD, DEFAULT_ROUTE, HTTP, REST, WILDCARD, ApiKeySpec, ApiSpec, AuthorizerSpec, GatewaySpec,
    IntegrationSpec, RouteSpec,
    StageSpec, ThrottleSpec, UsagePlanSpec, UsagePlanStageSpec,
)
from emulator.template.intrinsics import IntrinsicError, StackScope, merge_globals, resolve
from emulator.template.openapi import definition_routes
from emulator.template.specs import FunctionSpec

ReadDocument = Callable[[Path], Any]

# SAM's default stage names: "Prod" for the implicit REST API
# (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-api.html),
# "$default" for HTTP APIs
# (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-httpapi.html#sam-httpapi-stagename).
IMPLICIT_REST_STAGE = "Prod"
# Without OpenApiVersion, SAM's deployment of a REST API also makes a stage named "Stage"
# (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-api.html#sam-api-openapiversion).
SAM_EXTRA_STAGE = "Stage"
# SAM's usage plan options, and the names of what it makes:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-api-apiusageplan.html
USAGE_PLAN_OPTIONS = ("PER_API", "SHARED", "NONE")
SHARED_PLAN, SHARED_KEY = "ServerlessUsagePlan", "ServerlessApiKey"
# Marks the stage entries prepare_gateway adds so `!Ref MyApi.Stage` and `!Ref MyApiProdStage`
# resolve to the stage name, as SAM makes them resolve.
_SAM_STAGE_MARK = "EmulatorSamStage"

_SAM_API_USED = {"StageName", "Name", "DefinitionBody", "DefinitionUri", "Auth", "MethodSettings", "Variables",
                 "BinaryMediaTypes", "Description", "OpenApiVersion", "DisableExecuteApiEndpoint",
                 "CacheClusterEnabled", "CacheClusterSize"}
_SAM_HTTP_API_USED = {"StageName", "Name", "DefinitionBody", "DefinitionUri", "DefaultRouteSettings", "RouteSettings",
                      "StageVariables", "Description", "DisableExecuteApiEndpoint", "Auth"}
# Accepted quietly: they change nothing that can be observed locally.
_QUIET = {"EndpointConfiguration", "TracingEnabled", "AccessLogSetting", "AccessLogSettings", "Tags", "PropagateTags",
          "MinimumCompressionSize", "Models", "Mode", "FailOnWarnings", "AlwaysDeploy", "MergeDefinitions",
          "ApiKeySourceType"}


@dataclass
class ApiDraft:
    """An API while its routes and stages are collected from several resources."""

    logical_id: str
    kind: str
    name: str
    description: str = ""
    binary_media_types: tuple[str, ...] = ()
    disable_execute_api_endpoint: bool = False
    api_key_required: bool = False  # SAM Auth.ApiKeyRequired: the default of its events
    routes: dict[tuple[str, str], RouteSpec] = field(default_factory=dict)
    stages: dict[str, StageSpec] = field(default_factory=dict)
    authorizers: dict[str, AuthorizerSpec] = field(default_factory=dict)  # SAM Auth.Authorizers, by name
    default_authorizer: AuthorizerSpec | None = None  # SAM DefaultAuthorizer
    explicit_auth: set[tuple[str, str]] = field(default_factory=set)  # routes whose event names one (or NONE)

    @property
    def api_id(self) -> str:
        return api_ids.api_id(self.logical_id)

    def add_route(self, route: RouteSpec, explicit_auth: bool = False) -> None:
        self.routes[(route.method, route.path)] = route  # a later declaration wins, as SAM's events do
        if explicit_auth:
            self.explicit_auth.add((route.method, route.path))

    def set_stage(self, stage: StageSpec) -> None:
        self.stages[stage.name] = stage

    def spec(self) -> ApiSpec:
        routes = tuple(self.routes.values())
        if self.default_authorizer is not None:  # SAM puts the default on every route that names none
            routes = tuple(replace(route, authorizer=self.default_authorizer)
                           if route.authorizer is None and (route.method, route.path) not in self.explicit_auth else route
                           for route in routes)
        return ApiSpec(self.logical_id, self.api_id, self.kind, self.name, routes,
                       tuple(self.stages.values()), self.binary_media_types, self.description,
                       self.disable_execute_api_endpoint)


@dataclass
class GatewayBuilder:
    stack: StackScope
    functions: Mapping[str, FunctionSpec]
    read_document: ReadDocument
    apis: dict[str, ApiDraft] = field(default_factory=dict)  # by logical id, in template order
    plans: dict[str, UsagePlanSpec] = field(default_factory=dict)
    keys: dict[str, ApiKeySpec] = field(default_factory=dict)
    plan_keys: list[tuple[str, str]] = field(default_factory=list)
    authorizers: dict[str, AuthorizerSpec] = field(default_factory=dict)  # CloudFormation's, by authorizer id

    def api_by_id(self, props: ApiProps, prop: str, value: Any, kind: str | None = None) -> ApiDraft:
        """The API an `ApiId` / `RestApiId` names (its resolved id, or its logical id)."""
        text = props.text(prop, value)
        for draft in self.apis.values():
            if text in (draft.api_id, draft.logical_id) and (kind is None or draft.kind == kind):
                return draft
        props.fail(prop, f"{text!r} names no {'REST' if kind == REST else 'HTTP' if kind == HTTP else ''} API of this "
                   "template; use !Ref on the API's logical id")

    def spec(self) -> GatewaySpec:
        apis = {draft.api_id: draft.spec() for draft in self.apis.values()}
        return GatewaySpec(apis, {p.plan_id: p for p in self.plans.values()},
                           {k.key_id: k for k in self.keys.values()}, tuple(dict.fromkeys(self.plan_keys)))


# --- SAM's transform, before anything is read ---------------------------------------------


def prepare_gateway(stack: StackScope, doc: Mapping[str, Any]) -> None:
    """Globals.Api / Globals.HttpApi, the implicit APIs, and the stage names SAM lets a
    template refer to (`MyApi.Stage`, `MyApiProdStage`)."""
    globals_ = doc.get("Globals") if isinstance(doc.get("Globals"), Mapping) else {}
    api_globals = {SAM_API: globals_.get("Api") or {}, SAM_HTTP_API: globals_.get("HttpApi") or {}}
    for rtype, section in api_globals.items():
        if not isinstance(section, Mapping):
            stack.fail(f"Globals.{'Api' if rtype == SAM_API else 'HttpApi'} must be a mapping of API properties")
    needs = _implicit_apis_needed(stack)
    if needs[REST] and IMPLICIT_REST_API not in stack.raw:
        _add(stack, IMPLICIT_REST_API, SAM_API, {"StageName": IMPLICIT_REST_STAGE})
    if needs[HTTP] and IMPLICIT_HTTP_API not in stack.raw:
        _add(stack, IMPLICIT_HTTP_API, SAM_HTTP_API, {})
    for logical_id, rtype in list(stack.types.items()):
        if rtype in api_globals and api_globals[rtype]:
            raw = stack.raw[logical_id]
            stack.raw[logical_id] = {**raw, "Properties": merge_globals(api_globals[rtype], raw["Properties"])}
        if rtype == SAM_API:
            stage = stack.raw[logical_id]["Properties"].get("StageName")
            aliases = [f"{logical_id}.Stage"] + ([f"{logical_id}{stage}Stage"] if isinstance(stage, str) else [])
            for alias in aliases:
                if alias not in stack.raw:
                    _add(stack, alias, api_ids.REST_STAGE, {"StageName": stage, _SAM_STAGE_MARK: True})


def _add(stack: StackScope, logical_id: str, rtype: str, properties: dict[str, Any]) -> None:
    stack.raw[logical_id] = {"Type": rtype, "Properties": properties}
    stack.types[logical_id] = rtype


def _implicit_apis_needed(stack: StackScope) -> dict[str, bool]:
    needs = {REST: False, HTTP: False}
    for logical_id, rtype in stack.types.items():
        if rtype != "AWS::Serverless::Function":
            continue
        events = stack.raw[logical_id]["Properties"].get("Events")
        for event in (events.values() if isinstance(events, Mapping) else ()):
            if not isinstance(event, Mapping):
                continue
            properties = event.get("Properties") if isinstance(event.get("Properties"), Mapping) else {}
            if event.get("Type") == "Api" and "RestApiId" not in properties:
                needs[REST] = True
            if event.get("Type") == "HttpApi" and "ApiId" not in properties:
                needs[HTTP] = True
    return needs


def is_sam_stage_alias(stack: StackScope, logical_id: str) -> bool:
    return bool(stack.raw[logical_id]["Properties"].get(_SAM_STAGE_MARK))


# --- reading -------------------------------------------------------------------------------


def read_sam_apis(builder: GatewayBuilder, included: list[str]) -> None:
    for logical_id in included:
        rtype = builder.stack.types[logical_id]
        if rtype == SAM_API:
            _read_sam_rest_api(builder, ApiProps(builder.stack, logical_id))
        elif rtype == SAM_HTTP_API:
            _read_sam_http_api(builder, ApiProps(builder.stack, logical_id))


def read_sam_usage_plans(builder: GatewayBuilder, included: list[str]) -> None:
    for logical_id in included:
        if builder.stack.types[logical_id] == SAM_API:
            _sam_usage_plan(builder, ApiProps(builder.stack, logical_id))


def _check_properties(props: ApiProps, used: set[str]) -> None:
    for prop in props.raw:
        if prop in used or prop in _QUIET:
            continue
        props.warn_once(prop, f"{props.stack.settings.source}: {props.type} property {prop!r} (first seen on "
                        f"{props.logical_id!r}) is not emulated; ignored")


def definition(builder: GatewayBuilder, props: ApiProps, body_prop: str, uri_prop: str | None) -> Any:
    """The OpenAPI document of DefinitionBody / Body (an AWS::Include is read from its file) or
    of the local file DefinitionUri names; None if there is none."""
    raw_body = props.raw.get(body_prop)
    include = _include_location(raw_body)
    if include is not None and include.startswith("s3://"):
        _unread(props, body_prop, include)
        return None
    if include is not None:
        return _resolve_document(builder, props, body_prop, include)
    if raw_body is not None:
        return props.get(body_prop)
    if uri_prop is None or props.raw.get(uri_prop) is None:
        return None
    uri = props.get(uri_prop)
    if isinstance(uri, Mapping) or (isinstance(uri, str) and uri.startswith("s3://")):
        _unread(props, uri_prop, uri)
        return None
    return _resolve_document(builder, props, uri_prop, props.text(uri_prop, uri))


def _unread(props: ApiProps, prop: str, location: Any) -> None:
    props.stack.settings.warn(f"{props.stack.settings.source}: resource {props.logical_id!r}, property {prop!r}: "
                              f"{location!r} is in S3, which the emulator cannot read; the API serves only the routes "
                              "its functions' events declare (point it at a local OpenAPI file to serve the rest)")


def _include_location(raw: Any) -> str | None:
    if isinstance(raw, Mapping) and set(raw) == {"Fn::Transform"}:
        transform = raw["Fn::Transform"]
        if isinstance(transform, Mapping) and transform.get("Name") == "AWS::Include":
            location = (transform.get("Parameters") or {}).get("Location")
            return location if isinstance(location, str) else ""
    return None


def _resolve_document(builder: GatewayBuilder, props: ApiProps, prop: str, location: str) -> Any:
    if not location:
        props.fail(prop, "the AWS::Include has no Location; give the OpenAPI file's path relative to the template")
    document = builder.read_document(builder.stack.settings.base_dir / location)
    try:
        return resolve(document, builder.stack, (prop,))
    except IntrinsicError as err:
        props.fail(prop, err.problem)


def _read_sam_rest_api(builder: GatewayBuilder, props: ApiProps) -> None:
    _check_properties(props, _SAM_API_USED)
    auth = props.mapping("Auth", props.get("Auth"))
    for key in auth:
        if key not in ("ApiKeyRequired", "UsagePlan", "AddApiKeyRequiredToCorsPreflight", "ResourcePolicy",
                       "Authorizers", "DefaultAuthorizer", "AddDefaultAuthorizerToCorsPreflight", "InvokeRole"):
            props.warn_once(f"Auth.{key}", f"{props.stack.settings.source}: {props.type} Auth.{key} (first seen on "
                            f"{props.logical_id!r}) is not emulated; ignored")
    draft = ApiDraft(props.logical_id, REST, props.text("Name", props.get("Name"), props.logical_id),
                     props.text("Description", props.get("Description")),
                     binary_media_types(props, "BinaryMediaTypes", props.get("BinaryMediaTypes")),
                     props.boolean("DisableExecuteApiEndpoint", props.get("DisableExecuteApiEndpoint")),
                     props.boolean("Auth.ApiKeyRequired", auth.get("ApiKeyRequired")))
    _sam_auth(props, draft, auth, builder, REST)
    document = definition(builder, props, "DefinitionBody", "DefinitionUri")
    if document is not None:
        routes, binary = definition_routes(props, "DefinitionBody", document, builder.functions, REST)
        for route in routes:
            draft.add_route(replace(route, api_key_required=route.api_key_required or draft.api_key_required))
        draft.binary_media_types += tuple(t for t in binary if t not in draft.binary_media_types)
    stage_name = props.get("StageName")
    if stage_name is None:
        props.fail("StageName", "is required: name the stage, e.g. StageName: Prod")
    default, per_route = method_settings(props, "MethodSettings", props.get("MethodSettings"))
    stage = StageSpec(props.text("StageName", stage_name), variables(props, "Variables", props.get("Variables")),
                      default, per_route)
    cluster = {"CacheClusterEnabled": props.get("CacheClusterEnabled"), "CacheClusterSize": props.get("CacheClusterSize")}
    draft.set_stage(with_cache(props, stage, "", cluster, props.get("MethodSettings")))
    if props.get("OpenApiVersion") is None and stage_name != SAM_EXTRA_STAGE:
        draft.set_stage(StageSpec(SAM_EXTRA_STAGE))
    builder.apis[props.logical_id] = draft


def _read_sam_http_api(builder: GatewayBuilder, props: ApiProps) -> None:
    _check_properties(props, _SAM_HTTP_API_USED)
    draft = ApiDraft(props.logical_id, HTTP, props.text("Name", props.get("Name"), props.logical_id),
                     props.text("Description", props.get("Description")),
                     disable_execute_api_endpoint=props.boolean("DisableExecuteApiEndpoint",
                                                                props.get("DisableExecuteApiEndpoint")))
    _sam_auth(props, draft, props.mapping("Auth", props.get("Auth")), builder, HTTP)
    document = definition(builder, props, "DefinitionBody", "DefinitionUri")
    if document is not None:
        for route in definition_routes(props, "DefinitionBody", document, builder.functions, HTTP)[0]:
            draft.add_route(route)
    name = props.text("StageName", props.get("StageName"), DEFAULT_ROUTE)
    draft.set_stage(StageSpec(name, variables(props, "StageVariables", props.get("StageVariables")),
                              props.throttle("DefaultRouteSettings", props.get("DefaultRouteSettings"),
                                             "ThrottlingRateLimit", "ThrottlingBurstLimit"),
                              route_settings(props, "RouteSettings", props.get("RouteSettings"))))
    builder.apis[props.logical_id] = draft


def _sam_auth(props: ApiProps, draft: ApiDraft, auth: Mapping[str, Any], builder: GatewayBuilder, kind: str) -> None:
    """SAM `Auth.Authorizers` and `DefaultAuthorizer` (HTTP APIs: also `EnableIamAuthorizer`)."""
    draft.authorizers = sam_authorizers(props, auth, builder.functions, kind)
    default = auth.get("DefaultAuthorizer")
    if default is not None:
        draft.default_authorizer = route_authorizer(props, "Auth.DefaultAuthorizer", default, draft.authorizers)
    if kind == HTTP and auth.get("EnableIamAuthorizer") is not None:
        props.boolean("Auth.EnableIamAuthorizer", auth.get("EnableIamAuthorizer"))  # checked; AWS_IAM is always there


def binary_media_types(props: ApiProps, prop: str, value: Any) -> tuple[str, ...]:
    """SAM and the RestApi API write `/` as `~1` (image~1png)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        props.fail(prop, "must be a list of media types, e.g. ['image~1png', '*~1*']")
    return tuple(item.replace("~1", "/") for item in value)


def variables(props: ApiProps, prop: str, value: Any) -> dict[str, str]:
    return {str(key): props.text(f"{prop}.{key}", item) for key, item in props.mapping(prop, value).items()}


def method_settings(props: ApiProps, prop: str, value: Any) -> tuple[ThrottleSpec | None, dict[tuple[str, str], ThrottleSpec]]:
    """REST `MethodSettings` (a list of {ResourcePath, HttpMethod, Throttling...}): the stage's
    default (`/*` and `*`) and the per-method throttles. CloudFormation writes `/` inside a
    resource path as `~1` (`/~1pets`):
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-apigateway-stage-methodsetting.html
    """
    if value is None:
        return None, {}
    if not isinstance(value, list):
        props.fail(prop, "must be a list of method settings")
    default: ThrottleSpec | None = None
    per_route: dict[tuple[str, str], ThrottleSpec] = {}
    for index, item in enumerate(value):
        where = f"{prop}[{index}]"
        item = props.mapping(where, item)
        throttle = props.throttle(where, item, "ThrottlingRateLimit", "ThrottlingBurstLimit")
        if throttle is None:
            continue
        key = method_setting_key(props, where, item)
        if key == (WILDCARD, WILDCARD):
            default = throttle
        else:
            per_route[key] = throttle
    return default, per_route


def route_settings(props: ApiProps, prop: str, value: Any) -> dict[tuple[str, str], ThrottleSpec]:
    """HTTP `RouteSettings`: {"GET /pets": {ThrottlingBurstLimit, ThrottlingRateLimit}}."""
    result: dict[tuple[str, str], ThrottleSpec] = {}
    for route_key, settings in props.mapping(prop, value).items():
        throttle = props.throttle(f"{prop}.{route_key}", settings, "ThrottlingRateLimit", "ThrottlingBurstLimit")
        if throttle is not None:
            result[split_route_key(props, f"{prop}.{route_key}", route_key)] = throttle
    return result


def split_route_key(props: ApiProps, prop: str, route_key: Any) -> tuple[str, str]:
    text = props.text(prop, route_key).strip()
    if text == DEFAULT_ROUTE:
        return ANY_METHOD, DEFAULT_ROUTE
    method, _, path = text.partition(" ")
    return normalise_method(props, prop, method), check_path(props, prop, path.strip(), HTTP)


# --- function events -------------------------------------------------------------------------


def read_function_events(builder: GatewayBuilder, spec: FunctionSpec) -> None:
    props = ApiProps(builder.stack, spec.logical_id)
    for name, event in spec.events.items():
        kind = event.get("Type")
        if kind not in ("Api", "HttpApi"):
            continue
        where = f"Events.{name}.Properties"
        properties = props.mapping(where, event.get("Properties"))
        if kind == "Api":
            _rest_event(builder, props, where, properties, spec)
        else:
            _http_event(builder, props, where, properties, spec)


def _target(spec: FunctionSpec, kind: str, props: ApiProps, where: str, properties: Mapping[str, Any]) -> IntegrationSpec:
    function, qualifier = function_target(spec)
    return IntegrationSpec(function, qualifier,
                           payload_format(props, f"{where}.PayloadFormatVersion", properties.get("PayloadFormatVersion"), kind),
                           timeout_ms(props, f"{where}.TimeoutInMillis", properties.get("TimeoutInMillis"), kind))


def _rest_event(builder: GatewayBuilder, props: ApiProps, where: str, properties: Mapping[str, Any], spec: FunctionSpec) -> None:
    api_ref = properties.get("RestApiId")
    draft = (builder.apis[IMPLICIT_REST_API] if api_ref is None
             else builder.api_by_id(props, f"{where}.RestApiId", api_ref, REST))
    for required in ("Path", "Method"):
        if properties.get(required) is None:
            props.fail(f"{where}.{required}", "is required for an Api event")
    auth = props.mapping(f"{where}.Auth", properties.get("Auth"))
    key_required = props.boolean(f"{where}.Auth.ApiKeyRequired", auth.get("ApiKeyRequired"), draft.api_key_required)
    named = auth.get("Authorizer")
    authorizer = None if named is None else route_authorizer(props, f"{where}.Auth.Authorizer", named, draft.authorizers)
    draft.add_route(RouteSpec(normalise_method(props, f"{where}.Method", properties["Method"]),
                              check_path(props, f"{where}.Path", properties["Path"], REST),
                              _target(spec, REST, props, where, properties), key_required,
                              f"function {spec.logical_id!r}, {where.rsplit('.', 1)[0]}", authorizer=authorizer,
                              cache_key_parameters=sam_request_parameters(props, f"{where}.RequestParameters",
                                                                          properties.get("RequestParameters"))),
                    explicit_auth=named is not None)


def _http_event(builder: GatewayBuilder, props: ApiProps, where: str, properties: Mapping[str, Any], spec: FunctionSpec) -> None:
    api_ref = properties.get("ApiId")
    draft = (builder.apis[IMPLICIT_HTTP_API] if api_ref is None
             else builder.api_by_id(props, f"{where}.ApiId", api_ref, HTTP))
    path, method = properties.get("Path"), properties.get("Method")
    if path is None and method is None:  # SAM makes the $default route
        path, method = DEFAULT_ROUTE, ANY_METHOD
    elif path is None or method is None:
        props.fail(f"{where}.{'Path' if path is None else 'Method'}", "give both Path and Method, or neither for the "
                   "$default route")
    path = check_path(props, f"{where}.Path", path, HTTP)
    method = ANY_METHOD if path == DEFAULT_ROUTE else normalise_method(props, f"{where}.Method", method)
    auth = props.mapping(f"{where}.Auth", properties.get("Auth"))
    named = auth.get("Authorizer")
    authorizer = None if named is None else route_authorizer(props, f"{where}.Auth.Authorizer", named, draft.authorizers)
    draft.add_route(RouteSpec(method, path, _target(spec, HTTP, props, where, properties), False,
                              f"function {spec.logical_id!r}, {where.rsplit('.', 1)[0]}", authorizer=authorizer),
                    explicit_auth=named is not None)
    throttle = props.throttle(f"{where}.RouteSettings", properties.get("RouteSettings"),
                              "ThrottlingRateLimit", "ThrottlingBurstLimit")
    if throttle is not None:
        for stage in list(draft.stages.values()):
            draft.set_stage(replace(stage, route_throttles={**stage.route_throttles, (method, path): throttle}))


# --- SAM usage plans -------------------------------------------------------------------------


def _sam_usage_plan(builder: GatewayBuilder, props: ApiProps) -> None:
    """Auth.UsagePlan with CreateUsagePlan PER_API or SHARED makes a usage plan, an enabled key
    and the key's membership of the plan, for the API's stage (SAM's api_generator)."""
    auth = props.mapping("Auth", props.get("Auth"))
    plan = props.mapping("Auth.UsagePlan", auth.get("UsagePlan"))
    if not plan:
        return
    option = plan.get("CreateUsagePlan")
    if option not in USAGE_PLAN_OPTIONS:
        props.fail("Auth.UsagePlan.CreateUsagePlan", f"{option!r} is not one of {', '.join(USAGE_PLAN_OPTIONS)} "
                   "(what SAM accepts)")
    if option == "NONE":
        return
    draft = builder.apis[props.logical_id]
    stage = next(iter(draft.stages))
    plan_lid, key_lid = ((props.logical_id + "UsagePlan", props.logical_id + "ApiKey") if option == "PER_API"
                         else (SHARED_PLAN, SHARED_KEY))
    existing = builder.plans.get(plan_lid)
    stages = (existing.stages if existing else ()) + (UsagePlanStageSpec(draft.api_id, stage),)
    settings = {
        "name": props.text("Auth.UsagePlan.UsagePlanName", plan.get("UsagePlanName"), existing.name if existing else plan_lid),
        "description": props.text("Auth.UsagePlan.Description", plan.get("Description"), existing.description if existing else ""),
        "throttle": props.throttle("Auth.UsagePlan.Throttle", plan.get("Throttle"), "RateLimit", "BurstLimit")
        or (existing.throttle if existing else None),
        "quota": quota(props, "Auth.UsagePlan.Quota", plan.get("Quota")) or (existing.quota if existing else None),
    }
    builder.plans[plan_lid] = UsagePlanSpec(plan_lid, usage_plan_id(plan_lid), stages=stages, **settings)
    key = builder.keys.get(key_lid)
    stage_key = f"{draft.api_id}/{stage}"
    builder.keys[key_lid] = ApiKeySpec(key_lid, api_ids.derived_id("api-key", key_lid), key_lid,
                                       api_ids.api_key_value(key_lid), True,
                                       stage_keys=(key.stage_keys if key else ()) + (stage_key,))
    builder.plan_keys.append((usage_plan_id(plan_lid), api_ids.derived_id("api-key", key_lid)))
