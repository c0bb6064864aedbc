"""CloudFormation's own API Gateway resources, as far as they declare routes, stages, usage
plans and keys.

REST (v1): RestApi (with an OpenAPI `Body`), Resource, Method (an `AWS_PROXY` integration to
Lambda), Stage, Deployment (its `StageName` makes a stage), UsagePlan, ApiKey, UsagePlanKey.
HTTP (v2): Api (with a `Body`, or quick create with `Target`), Integration, Route, Stage.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/AWS_ApiGateway.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/AWS_ApiGatewayV2.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.template import api_ids
from emulator.template.api_auth import method_authorizer, rest_authorizer, v2_authorizer
from emulator.template.api_caching import cache_key_parameters, with_cache
from emulator.template.api_reading import (
    ApiProps, Unserved, check_path, lambda_target, normalise_method, quota, served_integration, usage_plan_id,
)
from emulator.template.api_specs import (
    ANY_METHOD, DEFAULT_ROUTE, HTTP, HTTP_MAX_TIMEOUT_MS, REST, ApiKeySpec, IntegrationSpec, RouteSpec,
    StageSpec, UsagePlanSpec, UsagePlanStageSpec,
)
from emulator.template.apis import (
    ApiDraft, GatewayBuilder, binary_media_types, definition, is_sam_stage_alias, method_settings, route_settings,
    split_route_key, variables,
)
from emulator.template.openapi import definition_routes

_TARGET = re.compile(r"integrations/([A-Za-z0-9]+)")
# API keys are enabled only when the template says so: "Enabled ... Default: false"
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-apikey.html).
API_KEY_ENABLED_BY_DEFAULT = False


def _of_type(builder: GatewayBuilder, included: list[str], rtype: str) -> list[ApiProps]:
    return [ApiProps(builder.stack, lid) for lid in included if builder.stack.types[lid] == rtype]


def read_declared_apis(builder: GatewayBuilder, included: list[str]) -> None:
    for props in _of_type(builder, included, api_ids.REST_API):
        _rest_api(builder, props)
    for props in _of_type(builder, included, api_ids.REST_AUTHORIZER):
        builder.api_by_id(props, "RestApiId", props.get("RestApiId"), REST)
        authorizer = rest_authorizer(props, builder.functions)
        builder.authorizers[authorizer.authorizer_id] = authorizer
    for props in _of_type(builder, included, api_ids.V2_AUTHORIZER):
        authorizer = v2_authorizer(props, builder.functions)
        builder.authorizers[authorizer.authorizer_id] = authorizer
    _rest_methods(builder, included)
    for props in _of_type(builder, included, api_ids.REST_DEPLOYMENT):
        _rest_deployment(builder, props)
    for props in _of_type(builder, included, api_ids.REST_STAGE):
        if not is_sam_stage_alias(builder.stack, props.logical_id):
            _rest_stage(builder, props)
    for props in _of_type(builder, included, api_ids.V2_API):
        _v2_api(builder, props)
    _v2_routes(builder, included)
    for props in _of_type(builder, included, api_ids.V2_STAGE):
        _v2_stage(builder, props)


# --- REST ----------------------------------------------------------------------------------


def _rest_api(builder: GatewayBuilder, props: ApiProps) -> None:
    if props.raw.get("BodyS3Location") is not None:
        props.stack.settings.warn(f"{props.stack.settings.source}: resource {props.logical_id!r}, property "
                                  "'BodyS3Location': a definition in S3 cannot be read; only the API's Method resources "
                                  "are served (give the definition inline in Body to serve it)")
    draft = ApiDraft(props.logical_id, REST, props.text("Name", props.get("Name"), props.logical_id),
                     props.text("Description", props.get("Description")),
                     binary_media_types(props, "BinaryMediaTypes", props.get("BinaryMediaTypes")),
                     props.boolean("DisableExecuteApiEndpoint", props.get("DisableExecuteApiEndpoint")))
    document = definition(builder, props, "Body", None)
    if document is not None:
        routes, binary = definition_routes(props, "Body", document, builder.functions, REST)
        for route in routes:
            draft.add_route(route)
        draft.binary_media_types += tuple(t for t in binary if t not in draft.binary_media_types)
    builder.apis[props.logical_id] = draft


def _rest_methods(builder: GatewayBuilder, included: list[str]) -> None:
    """AWS::ApiGateway::Resource builds each API's tree from its root (`RootResourceId`);
    AWS::ApiGateway::Method puts a method on one of its resources."""
    paths: dict[str, str] = {api_ids.root_resource_id(d.logical_id): "/" for d in builder.apis.values() if d.kind == REST}
    pending = _of_type(builder, included, api_ids.REST_RESOURCE)
    while pending:
        waiting = []
        for props in pending:
            parent = props.text("ParentId", props.get("ParentId"))
            if parent not in paths:
                waiting.append(props)
                continue
            part = props.text("PathPart", props.get("PathPart"))
            paths[api_ids.resource_id(props.logical_id)] = check_path(props, "PathPart", paths[parent].rstrip("/") + "/" + part, REST)
        if len(waiting) == len(pending):
            props = waiting[0]
            props.fail("ParentId", f"{props.get('ParentId')!r} is neither a resource of this template nor an API's "
                       "RootResourceId; use !GetAtt MyApi.RootResourceId or !Ref ParentResource")
        pending = waiting
    for props in _of_type(builder, included, api_ids.REST_METHOD):
        draft = builder.api_by_id(props, "RestApiId", props.get("RestApiId"), REST)
        resource = props.text("ResourceId", props.get("ResourceId"))
        if resource not in paths:
            props.fail("ResourceId", f"{resource!r} is no resource of this template; use !Ref MyResource or "
                       "!GetAtt MyApi.RootResourceId")
        method = normalise_method(props, "HttpMethod", props.get("HttpMethod"))
        settings = props.mapping("Integration", props.get("Integration"))
        declared_by = f"resource {props.logical_id!r}"
        key_required = props.boolean("ApiKeyRequired", props.get("ApiKeyRequired"))
        authorizer = method_authorizer(props, "AuthorizationType", "AuthorizerId", builder.authorizers, REST)
        if str(settings.get("Type", "")).upper() != "AWS_PROXY":
            draft.add_route(RouteSpec(method, paths[resource], None, key_required, declared_by,
                                      f"its integration type {settings.get('Type')!r} is not emulated (only AWS_PROXY to Lambda is)",
                                      authorizer))
            continue
        spec, why = served_integration(props, "Integration", settings.get("Uri"), builder.functions, kind=REST,
                                       timeout=settings.get("TimeoutInMillis"))
        draft.add_route(RouteSpec(method, paths[resource], spec, key_required, declared_by, why, authorizer,
                                  cache_key_parameters(props, "Integration.CacheKeyParameters",
                                                       settings.get("CacheKeyParameters"))))


def _rest_stage_settings(props: ApiProps, prefix: str, settings: Mapping[str, Any], name: str) -> StageSpec:
    default, per_route = method_settings(props, f"{prefix}MethodSettings", settings.get("MethodSettings"))
    if prefix:  # a Deployment's StageDescription may give the stage's default throttle directly
        default = default or props.throttle(prefix.rstrip("."), settings, "ThrottlingRateLimit", "ThrottlingBurstLimit")
    stage = StageSpec(name, variables(props, f"{prefix}Variables", settings.get("Variables")), default, per_route)
    return with_cache(props, stage, prefix, settings, settings.get("MethodSettings"))


def _rest_deployment(builder: GatewayBuilder, props: ApiProps) -> None:
    name = props.get("StageName")
    if name is None:
        return  # a deployment without a stage; an AWS::ApiGateway::Stage names it
    draft = builder.api_by_id(props, "RestApiId", props.get("RestApiId"), REST)
    description = props.mapping("StageDescription", props.get("StageDescription"))
    draft.set_stage(_rest_stage_settings(props, "StageDescription.", description, props.text("StageName", name)))


def _rest_stage(builder: GatewayBuilder, props: ApiProps) -> None:
    draft = builder.api_by_id(props, "RestApiId", props.get("RestApiId"), REST)
    name = props.text("StageName", props.get("StageName"))
    if not name:
        props.fail("StageName", "is required")
    settings = {prop: props.get(prop) for prop in ("MethodSettings", "Variables", "CacheClusterEnabled", "CacheClusterSize")}
    draft.set_stage(_rest_stage_settings(props, "", settings, name))


# --- HTTP (v2) -----------------------------------------------------------------------------


def _v2_api(builder: GatewayBuilder, props: ApiProps) -> None:
    protocol = props.text("ProtocolType", props.get("ProtocolType"), "HTTP").upper()
    if protocol != "HTTP":
        props.warn_once("ProtocolType", f"{props.stack.settings.source}: resource {props.logical_id!r}: "
                        f"{protocol} APIs are not emulated; only HTTP APIs are served")
        return
    draft = ApiDraft(props.logical_id, HTTP, props.text("Name", props.get("Name"), props.logical_id),
                     props.text("Description", props.get("Description")),
                     disable_execute_api_endpoint=props.boolean("DisableExecuteApiEndpoint",
                                                                props.get("DisableExecuteApiEndpoint")))
    document = definition(builder, props, "Body", None)
    if document is not None:
        for route in definition_routes(props, "Body", document, builder.functions, HTTP)[0]:
            draft.add_route(route)
    target = props.get("Target")
    if target is not None:
        # Quick create: a route (RouteKey, $default unless given) to the target, payload 2.0,
        # and a $default stage that deploys itself:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigatewayv2-api.html#cfn-apigatewayv2-api-target
        method, path = split_route_key(props, "RouteKey", props.get("RouteKey") or DEFAULT_ROUTE)
        try:
            function = lambda_target(props, "Target", target, builder.functions)
            why = "" if function else f"its target {target!r} is not a Lambda function"
        except Unserved as unserved:
            function, why = None, unserved.reason
        if function is None:
            props.stack.settings.warn(f"{props.stack.settings.source}: resource {props.logical_id!r}, property 'Target': "
                                      f"{why}; the route answers 500")
        spec = IntegrationSpec(function[0], function[1], "2.0", HTTP_MAX_TIMEOUT_MS) if function else None
        draft.add_route(RouteSpec(method, path, spec, False, f"resource {props.logical_id!r} (Target)", why))
        draft.set_stage(StageSpec(DEFAULT_ROUTE))
    builder.apis[props.logical_id] = draft


def _v2_routes(builder: GatewayBuilder, included: list[str]) -> None:
    integrations: dict[str, tuple[IntegrationSpec | None, str]] = {}
    for props in _of_type(builder, included, api_ids.V2_INTEGRATION):
        kind = props.text("IntegrationType", props.get("IntegrationType")).upper()
        spec, why = None, f"its integration ({kind} {props.get('IntegrationUri')!r}) is not emulated (only AWS_PROXY to Lambda is)"
        if kind == "AWS_PROXY":
            if props.get("PayloadFormatVersion") is None:
                props.fail("PayloadFormatVersion", "is required for an AWS_PROXY integration: 1.0 or 2.0")
            spec, why = served_integration(props, "", props.get("IntegrationUri"), builder.functions, kind=HTTP,
                                           payload=props.get("PayloadFormatVersion"), timeout=props.get("TimeoutInMillis"))
        integrations[api_ids.derived_id("integration", props.logical_id)] = (spec, why)
    for props in _of_type(builder, included, api_ids.V2_ROUTE):
        draft = builder.api_by_id(props, "ApiId", props.get("ApiId"), HTTP)
        method, path = split_route_key(props, "RouteKey", props.get("RouteKey"))
        target = props.get("Target")
        match = _TARGET.fullmatch(props.text("Target", target)) if target is not None else None
        if target is not None and (match is None or match.group(1) not in integrations):
            props.fail("Target", f"{target!r} names no integration of this template; write integrations/ followed by "
                       "!Ref MyIntegration")
        spec, why = integrations[match.group(1)] if match else (None, "it has no Target")
        authorizer = method_authorizer(props, "AuthorizationType", "AuthorizerId", builder.authorizers, HTTP)
        draft.add_route(RouteSpec(method, path, spec, False, f"resource {props.logical_id!r}", why, authorizer))


def _v2_stage(builder: GatewayBuilder, props: ApiProps) -> None:
    draft = builder.api_by_id(props, "ApiId", props.get("ApiId"), HTTP)
    name = props.text("StageName", props.get("StageName"))
    if not name:
        props.fail("StageName", "is required ($default for the unprefixed stage)")
    draft.set_stage(StageSpec(name, variables(props, "StageVariables", props.get("StageVariables")),
                              props.throttle("DefaultRouteSettings", props.get("DefaultRouteSettings"),
                                             "ThrottlingRateLimit", "ThrottlingBurstLimit"),
                              route_settings(props, "RouteSettings", props.get("RouteSettings"))))


# --- usage plans and keys ------------------------------------------------------------------


def read_usage_plans(builder: GatewayBuilder, included: list[str]) -> None:
    for props in _of_type(builder, included, api_ids.USAGE_PLAN):
        stages = []
        for index, item in enumerate(props.get("ApiStages") or []):
            where = f"ApiStages[{index}]"
            item = props.mapping(where, item)
            draft = builder.api_by_id(props, f"{where}.ApiId", item.get("ApiId"), REST)
            stage = props.text(f"{where}.Stage", item.get("Stage"))
            if stage not in draft.stages:
                props.fail(f"{where}.Stage", f"API {draft.logical_id!r} has no stage {stage!r} (it has: "
                           f"{', '.join(draft.stages) or 'none'})")
            stages.append(UsagePlanStageSpec(draft.api_id, stage, _plan_method_throttles(props, f"{where}.Throttle",
                                                                                      item.get("Throttle"))))
        builder.plans[props.logical_id] = UsagePlanSpec(
            props.logical_id, usage_plan_id(props.logical_id),
            props.text("UsagePlanName", props.get("UsagePlanName"), props.logical_id), tuple(stages),
            props.throttle("Throttle", props.get("Throttle"), "RateLimit", "BurstLimit"),
            quota(props, "Quota", props.get("Quota")), props.text("Description", props.get("Description")))
    for props in _of_type(builder, included, api_ids.API_KEY):
        stage_keys = []
        for index, item in enumerate(props.get("StageKeys") or []):
            item = props.mapping(f"StageKeys[{index}]", item)
            draft = builder.api_by_id(props, f"StageKeys[{index}].RestApiId", item.get("RestApiId"), REST)
            stage_keys.append(f"{draft.api_id}/{props.text(f'StageKeys[{index}].StageName', item.get('StageName'))}")
        value = props.get("Value")
        builder.keys[props.logical_id] = ApiKeySpec(
            props.logical_id, api_ids.derived_id("api-key", props.logical_id),
            props.text("Name", props.get("Name"), props.logical_id),
            props.text("Value", value) if value is not None else api_ids.api_key_value(props.logical_id),
            props.boolean("Enabled", props.get("Enabled"), API_KEY_ENABLED_BY_DEFAULT),
            props.text("Description", props.get("Description")), tuple(stage_keys))
    plan_ids = {p.plan_id for p in builder.plans.values()}
    key_ids = {k.key_id for k in builder.keys.values()}
    for props in _of_type(builder, included, api_ids.USAGE_PLAN_KEY):
        plan, key = props.text("UsagePlanId", props.get("UsagePlanId")), props.text("KeyId", props.get("KeyId"))
        if plan not in plan_ids:
            props.fail("UsagePlanId", f"{plan!r} is no usage plan of this template; use !Ref MyUsagePlan")
        if key not in key_ids:
            props.fail("KeyId", f"{key!r} is no API key of this template; use !Ref MyApiKey")
        builder.plan_keys.append((plan, key))
    for plan in list(builder.plans.values()):
        for stage in plan.stages:
            _check_plan_methods(builder, plan, stage)


def _plan_method_throttles(props: ApiProps, prop: str, value: Any) -> dict[tuple[str, str], Any]:
    """`Throttle: {"/pets/GET": {BurstLimit, RateLimit}}`: the key is the resource path, then
    the method (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-apigateway-usageplan-apistage.html)."""
    result = {}
    for key, settings in props.mapping(prop, value).items():
        path, _, method = str(key).rpartition("/")
        throttle = props.throttle(f"{prop}.{key}", settings, "RateLimit", "BurstLimit")
        if throttle is None:
            continue
        method = normalise_method(props, f"{prop}.{key}", method) if method != "*" else "*"
        result[(method, path or "/")] = throttle
    return result


def _check_plan_methods(builder: GatewayBuilder, plan: UsagePlanSpec, stage: UsagePlanStageSpec) -> None:
    draft = next(d for d in builder.apis.values() if d.api_id == stage.api_id)
    for method, path in stage.method_throttles:
        if method != "*" and (method, path) not in draft.routes and (ANY_METHOD, path) not in draft.routes:
            builder.stack.settings.warn(f"{builder.stack.settings.source}: usage plan {plan.logical_id!r} throttles "
                                        f"{path}/{method}, which API {draft.logical_id!r} does not declare")

