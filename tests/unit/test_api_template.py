"""API Gateway in templates (emulator/template/gateway.py and the readers behind it): SAM's APIs
and events, OpenAPI definitions, CloudFormation's own resources, usage plans and keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator.template import api_ids
from emulator.template.api_specs import (
    COGNITO, HTTP, IAM, JWT, REQUEST, REST, TOKEN, ApiSpec, GatewaySpec, IdentitySource, IntegrationSpec,
    MethodCacheSpec, QuotaSpec, StageSpec, ThrottleSpec, UsagePlanStageSpec,
)
from emulator.template.intrinsics import TemplateError
from emulator.template.loader import load_template, parse_template

URI = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"}


def fn(events: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function", "Properties": {
        "CodeUri": "src", "Handler": "app.handler", "Runtime": "python3.11", "Events": events or {}, **props}}


def gateway(tmp_path: Path, resources: dict[str, Any], warnings: list[str] | None = None, **sections: Any) -> GatewaySpec:
    doc = {"Transform": "AWS::Serverless-2016-10-31", "Resources": resources, **sections}
    return parse_template(doc, base_dir=tmp_path, warn=(warnings.append if warnings is not None else _fail)).gateway


def _fail(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


def by_name(spec: GatewaySpec, logical_id: str) -> ApiSpec:
    return spec.apis[api_ids.api_id(logical_id)]


def routes(api: ApiSpec) -> dict[str, Any]:
    return {route.key: route for route in api.routes}


def error(tmp_path: Path, resources: dict[str, Any]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        gateway(tmp_path, resources, [])
    return caught.value


# --- SAM --------------------------------------------------------------------------------------


def test_events_without_an_api_make_the_implicit_apis(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {"Fn": fn({
        "Get": {"Type": "Api", "Properties": {"Path": "/hello/{name}", "Method": "get"}},
        "All": {"Type": "HttpApi"},
        "Post": {"Type": "HttpApi", "Properties": {"Path": "/items", "Method": "POST", "PayloadFormatVersion": "1.0",
                                                  "TimeoutInMillis": 5000}},
    })})
    rest, http = by_name(spec, "ServerlessRestApi"), by_name(spec, "ServerlessHttpApi")
    assert rest.kind == REST and [s.name for s in rest.stages] == ["Prod", "Stage"]
    assert routes(rest)["GET /hello/{name}"].integration == IntegrationSpec("Fn", None, "1.0", 29_000)
    assert http.kind == HTTP and [s.name for s in http.stages] == ["$default"]
    assert routes(http)["$default"].integration == IntegrationSpec("Fn", None, "2.0", 30_000)
    assert routes(http)["POST /items"].integration == IntegrationSpec("Fn", None, "1.0", 5_000)


def test_events_go_to_the_alias_of_a_function_that_publishes_one(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {"Fn": fn({"Get": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get"}}},
                                       AutoPublishAlias="live")})
    assert routes(by_name(spec, "ServerlessRestApi"))["GET /x"].integration.qualifier == "live"


def test_sam_rest_api_with_globals_method_settings_and_an_extra_stage(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "v1", "Variables": {"env": "dev"}}},
        "Fn": fn({"Get": {"Type": "Api", "Properties": {"Path": "/pets", "Method": "any", "RestApiId": {"Ref": "Api"},
                                                        "TimeoutInMillis": 1000}}}),
    }, Globals={"Api": {"BinaryMediaTypes": ["image~1png"], "MethodSettings": [
        {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 5},
        {"ResourcePath": "/~1pets", "HttpMethod": "GET", "ThrottlingBurstLimit": 1}]}})
    api = by_name(spec, "Api")
    assert api.binary_media_types == ("image/png",)
    assert api.stages == (StageSpec("v1", {"env": "dev"}, ThrottleSpec(10.0, 5), {("GET", "/pets"): ThrottleSpec(None, 1)}),
                          StageSpec("Stage"))
    assert routes(api)["ANY /pets"].integration.timeout_ms == 1000
    assert "ServerlessRestApi" not in {a.logical_id for a in spec.apis.values()}


def test_openapi_version_leaves_out_sams_extra_stage(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {"Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "OpenApiVersion": "3.0.1"}},
                              "Fn": fn()})
    assert [s.name for s in by_name(spec, "Api").stages] == ["Prod"]


def test_sam_http_api_settings_and_event_route_settings(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Http": {"Type": "AWS::Serverless::HttpApi", "Properties": {
            "StageName": "dev", "StageVariables": {"a": "b"},
            "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 50},
            "RouteSettings": {"GET /slow": {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1}}}},
        "Fn": fn({"Get": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": "/slow", "Method": "get"}},
                  "Put": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": "/p", "Method": "put",
                                                            "RouteSettings": {"ThrottlingBurstLimit": 2}}}}),
    })
    (stage,) = by_name(spec, "Http").stages
    assert stage == StageSpec("dev", {"a": "b"}, ThrottleSpec(100.0, 50),
                              {("GET", "/slow"): ThrottleSpec(1.0, 1), ("PUT", "/p"): ThrottleSpec(None, 2)})


def test_definition_body_with_integrations_api_keys_and_binary_types(tmp_path: Path, src: Path) -> None:
    body = {
        "openapi": "3.0.1",
        "x-amazon-apigateway-binary-media-types": ["application/octet-stream"],
        "components": {"securitySchemes": {"key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}},
        "paths": {
            "/items/{id}": {
                "get": {"security": [{"key": []}], "x-amazon-apigateway-integration": {
                    "type": "aws_proxy", "httpMethod": "POST", "uri": URI, "timeoutInMillis": 3000}},
                "delete": {"x-amazon-apigateway-integration": {"type": "mock"}},
            },
            "/{proxy+}": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {
                "type": "aws_proxy", "httpMethod": "POST", "uri": {"Fn::GetAtt": ["Fn", "Arn"]}}}},
        },
    }
    spec = gateway(tmp_path, {"Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "DefinitionBody": body}},
                              "Fn": fn()})
    api = by_name(spec, "Api")
    found = routes(api)
    assert found["GET /items/{id}"].api_key_required and found["GET /items/{id}"].integration.timeout_ms == 3000
    assert found["DELETE /items/{id}"].integration is None and "mock" in found["DELETE /items/{id}"].unsupported
    assert found["ANY /{proxy+}"].integration.function == "Fn"
    assert api.binary_media_types == ("application/octet-stream",)


def test_definition_uri_and_aws_include_read_local_files(tmp_path: Path, src: Path) -> None:
    definition = {"openapi": "3.0.1", "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {
        "type": "aws_proxy", "uri": "arn:aws:lambda:us-east-1:123456789012:function:Fn"}}}}}
    (tmp_path / "api.json").write_text(json.dumps(definition))
    (tmp_path / "api.yaml").write_text("openapi: 3.0.1\npaths:\n  /b:\n    get:\n      x-amazon-apigateway-integration:\n"
                                       "        type: aws_proxy\n        payloadFormatVersion: '1.0'\n"
                                       "        uri: !GetAtt Fn.Arn\n")
    spec = gateway(tmp_path, {
        "ByUri": {"Type": "AWS::Serverless::HttpApi", "Properties": {"DefinitionUri": "api.json"}},
        "ByInclude": {"Type": "AWS::Serverless::HttpApi", "Properties": {"DefinitionBody": {
            "Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "api.yaml"}}}}},
        "Fn": fn(),
    })
    assert routes(by_name(spec, "ByUri"))["GET /a"].integration.payload_format == "2.0"
    assert routes(by_name(spec, "ByInclude"))["GET /b"].integration.payload_format == "1.0"


def test_usage_plans_per_api_and_shared(tmp_path: Path, src: Path) -> None:
    plan = {"CreateUsagePlan": "SHARED", "Quota": {"Limit": 100, "Period": "DAY"}, "Throttle": {"RateLimit": 5, "BurstLimit": 2}}
    spec = gateway(tmp_path, {
        "One": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "a", "Auth": {"ApiKeyRequired": True, "UsagePlan": plan}}},
        "Two": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "b", "Auth": {"UsagePlan": {"CreateUsagePlan": "SHARED"}}}},
        "Three": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "c", "Auth": {"UsagePlan": {"CreateUsagePlan": "PER_API"}}}},
        "Four": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "d", "Auth": {"UsagePlan": {"CreateUsagePlan": "NONE"}}}},
        "Fn": fn({"Get": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get", "RestApiId": {"Ref": "One"}}},
                  "Open": {"Type": "Api", "Properties": {"Path": "/open", "Method": "get", "RestApiId": {"Ref": "One"},
                                                         "Auth": {"ApiKeyRequired": False}}}}),
    })
    shared = spec.usage_plans[api_ids.derived_id("usage-plan", "ServerlessUsagePlan")]
    assert [(s.api_id, s.stage) for s in shared.stages] == [(api_ids.api_id("One"), "a"), (api_ids.api_id("Two"), "b")]
    assert (shared.quota, shared.throttle) == (QuotaSpec(100, "DAY", 0), ThrottleSpec(5.0, 2))
    keys = {key.logical_id: key for key in spec.api_keys.values()}
    assert set(keys) == {"ServerlessApiKey", "ThreeApiKey"} and all(k.enabled for k in keys.values())
    assert keys["ServerlessApiKey"].stage_keys == (f"{api_ids.api_id('One')}/a", f"{api_ids.api_id('Two')}/b")
    assert len(spec.plan_keys) == 2 and len(spec.usage_plans) == 2
    one = routes(by_name(spec, "One"))
    assert one["GET /x"].api_key_required and not one["GET /open"].api_key_required


def test_cloudformation_rest_api_resources_methods_stages_and_plans(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "shop"}},
        "Items": {"Type": "AWS::ApiGateway::Resource", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}, "PathPart": "items"}},
        "Item": {"Type": "AWS::ApiGateway::Resource", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ParentId": {"Ref": "Items"}, "PathPart": "{id}"}},
        "GetItem": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ResourceId": {"Ref": "Item"}, "HttpMethod": "GET", "ApiKeyRequired": True,
            "AuthorizationType": "NONE", "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": URI}}},
        "Deploy": {"Type": "AWS::ApiGateway::Deployment", "Properties": {
            "RestApiId": {"Ref": "Api"}, "StageName": "live", "StageDescription": {"ThrottlingRateLimit": 3}}},
        "Plan": {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {
            "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "live", "Throttle": {"/items/{id}/GET": {"RateLimit": 1, "BurstLimit": 1}}}],
            "Quota": {"Limit": 10, "Offset": 2, "Period": "WEEK"}}},
        "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Value": "k" * 30}},
        "PlanKey": {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
            "KeyId": {"Ref": "Key"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}},
        "Fn": fn(),
    })
    api = by_name(spec, "Api")
    assert api.name == "shop" and routes(api)["GET /items/{id}"].api_key_required
    assert api.stages == (StageSpec("live", {}, ThrottleSpec(3.0, None), {}),)
    (plan,) = spec.usage_plans.values()
    assert plan.quota == QuotaSpec(10, "WEEK", 2)
    assert plan.stages == (UsagePlanStageSpec(api.api_id, "live", {("GET", "/items/{id}"): ThrottleSpec(1.0, 1)}),)
    (key,) = spec.api_keys.values()
    assert (key.value, key.enabled) == ("k" * 30, False)  # CloudFormation's ApiKey is disabled unless Enabled: true
    assert spec.plan_keys == ((plan.plan_id, key.key_id),)


def test_cloudformation_http_api_integration_route_stage_and_quick_create(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Http": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "h", "ProtocolType": "HTTP"}},
        "Integration": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
            "ApiId": {"Ref": "Http"}, "IntegrationType": "AWS_PROXY", "IntegrationUri": {"Fn::GetAtt": ["Fn", "Arn"]},
            "PayloadFormatVersion": "2.0", "TimeoutInMillis": 800}},
        "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": {"Ref": "Http"}, "RouteKey": "GET /things/{id}", "Target": {"Fn::Sub": "integrations/${Integration}"}}},
        "Stage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {
            "ApiId": {"Ref": "Http"}, "StageName": "$default", "DefaultRouteSettings": {"ThrottlingBurstLimit": 7}}},
        "Quick": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "q", "ProtocolType": "HTTP",
                                                                     "Target": {"Fn::GetAtt": ["Fn", "Arn"]}}},
        "Fn": fn(),
    })
    http = by_name(spec, "Http")
    assert routes(http)["GET /things/{id}"].integration == IntegrationSpec("Fn", None, "2.0", 800)
    assert http.stages == (StageSpec("$default", {}, ThrottleSpec(None, 7), {}),)
    quick = by_name(spec, "Quick")
    assert list(routes(quick)) == ["$default"] and [s.name for s in quick.stages] == ["$default"]


def test_refs_and_attributes_of_api_resources(tmp_path: Path, src: Path) -> None:
    resources = {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod"}},
        "Http": {"Type": "AWS::Serverless::HttpApi"},
        "Fn": fn(Environment={"Variables": {
            "API": {"Ref": "Api"}, "ROOT": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "STAGE": {"Ref": "Api.Stage"}, "STAGE2": {"Ref": "ApiProdStage"},
            "HTTP": {"Fn::GetAtt": ["Http", "ApiEndpoint"]},
            "URL": {"Fn::Sub": "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod"}}},
            events={"Get": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get"}}}),
    }
    doc = {"Transform": "AWS::Serverless-2016-10-31", "Resources": resources}
    env = parse_template(doc, base_dir=tmp_path).functions["Fn"].environment
    assert env == {"API": api_ids.api_id("Api"), "ROOT": api_ids.root_resource_id("Api"), "STAGE": "Prod", "STAGE2": "Prod",
                   "HTTP": f"https://{api_ids.api_id('Http')}.execute-api.us-east-1.amazonaws.com",
                   "URL": f"https://{api_ids.api_id('ServerlessRestApi')}.execute-api.us-east-1.amazonaws.com/Prod"}


def test_ids_are_stable_and_shaped_like_awss() -> None:
    assert api_ids.api_id("MyApi") == api_ids.api_id("MyApi") != api_ids.api_id("Other")
    assert len(api_ids.api_id("MyApi")) == 10 and api_ids.api_id("MyApi").isalnum()
    assert len(api_ids.api_key_value("Key")) == 40


def test_unsupported_parts_warn_once(tmp_path: Path, src: Path) -> None:
    warnings: list[str] = []
    gateway(tmp_path, {"A": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", "Cors": "'*'"}},
                       "B": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", "Cors": "'*'"}},
                       "W": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET"}},
                       "Fn": fn()}, warnings)
    assert len(warnings) == 2 and "Cors" in warnings[0] and "WEBSOCKET" in warnings[1]


# --- errors name the resource and the property -------------------------------------------------


@pytest.mark.parametrize(("resources", "where"), [
    ({"Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "no-slash", "Method": "get"}}})}, "Events.E.Properties.Path"),
    ({"Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "/{p+}/x", "Method": "get"}}})}, "Events.E.Properties.Path"),
    ({"Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "/x", "Method": "fetch"}}})}, "Events.E.Properties.Method"),
    ({"Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get", "TimeoutInMillis": 10}}})},
     "Events.E.Properties.TimeoutInMillis"),
    ({"Fn": fn({"E": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "get", "TimeoutInMillis": 30001}}})},
     "Events.E.Properties.TimeoutInMillis"),
    ({"Fn": fn({"E": {"Type": "HttpApi", "Properties": {"Path": "/x"}}})}, "Events.E.Properties.Method"),
    ({"Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "/x", "Method": "get", "RestApiId": "Nope"}}})},
     "Events.E.Properties.RestApiId"),
    ({"A": {"Type": "AWS::Serverless::Api", "Properties": {}}, "Fn": fn()}, "StageName"),
    ({"A": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", "Auth": {"UsagePlan": {"CreateUsagePlan": "SINGLE"}}}},
      "Fn": fn()}, "Auth.UsagePlan.CreateUsagePlan"),
])
def test_template_errors_say_where(tmp_path: Path, src: Path, resources: dict[str, Any], where: str) -> None:
    failure = error(tmp_path, resources)
    assert failure.prop == where, str(failure)


def test_what_cannot_be_served_is_warned_about_and_the_rest_is_served(tmp_path: Path, src: Path) -> None:
    def get(uri: str) -> dict[str, Any]:
        return {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri}}}

    warnings: list[str] = []
    spec = gateway(tmp_path, {
        "A": {"Type": "AWS::Serverless::HttpApi", "Properties": {"DefinitionBody": {"paths": {
            "/other-stack": get("arn:aws:lambda:us-east-1:1:function:Missing"),
            "/variable": get("arn:aws:lambda:us-east-1:1:function:${stageVariables.fn}"),
            "/fine": get("arn:aws:lambda:us-east-1:1:function:Fn")}}}},
        "B": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", "DefinitionUri": "s3://bucket/api.yaml"}},
        "Fn": fn({"E": {"Type": "Api", "Properties": {"Path": "/e", "Method": "get", "RestApiId": {"Ref": "B"}}}}),
    }, warnings)
    found = routes(by_name(spec, "A"))
    assert found["GET /fine"].integration is not None
    assert "does not declare" in found["GET /other-stack"].unsupported and "stage variable" in found["GET /variable"].unsupported
    assert list(routes(by_name(spec, "B"))) == ["GET /e"]
    assert len(warnings) == 3 and "in S3" in warnings[2]


def test_a_usage_plan_for_a_stage_the_api_lacks_is_an_error(tmp_path: Path, src: Path) -> None:
    failure = error(tmp_path, {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod"}},
        "Plan": {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {"ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}]}},
        "Fn": fn()})
    assert failure.logical_id == "Plan" and "has no stage 'prod'" in str(failure)


def test_a_yaml_template_file_with_an_api(tmp_path: Path, src: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.11\n"
        "      Events:\n        Get:\n          Type: Api\n          Properties:\n            Path: /hi\n            Method: get\n")
    app = load_template(tmp_path / "template.yaml")
    assert list(routes(by_name(app.gateway, "ServerlessRestApi"))) == ["GET /hi"]
    assert app.resources == {}


# --- caching and authorizers -----------------------------------------------------------------------

AUTH_URI = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Auth.Arn}/invocations"}


def test_sam_api_cache_cluster_method_settings_and_request_parameter_keys(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {
            "StageName": "s", "CacheClusterEnabled": True, "CacheClusterSize": "1.6", "MethodSettings": [
                {"ResourcePath": "/*", "HttpMethod": "*", "CachingEnabled": True, "CacheTtlInSeconds": 60},
                {"ResourcePath": "/~1x", "HttpMethod": "GET", "CachingEnabled": False, "ThrottlingBurstLimit": 3}]}},
        "Fn": fn({"E": {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/x", "Method": "get",
                                                       "RequestParameters": ["method.request.header.A", {
                                                           "method.request.querystring.q": {"Caching": True}}]}}})})
    api = by_name(spec, "Api")
    stage = api.stages[0]
    assert (stage.cache_cluster_enabled, stage.cache_cluster_size) == (True, "1.6")
    assert stage.default_cache == MethodCacheSpec(True, 60)
    assert stage.route_cache == {("GET", "/x"): MethodCacheSpec(False)}
    assert stage.route_throttles[("GET", "/x")] == ThrottleSpec(None, 3)
    assert routes(api)["GET /x"].cache_key_parameters == ("method.request.querystring.q",)


@pytest.mark.parametrize(("props", "where"), [
    ({"CacheClusterSize": "2"}, "CacheClusterSize"),
    ({"MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "CacheTtlInSeconds": 3601}]}, "CacheTtlInSeconds"),
    ({"MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "UnauthorizedCacheControlHeaderStrategy": "NO"}]},
     "UnauthorizedCacheControlHeaderStrategy"),
])
def test_bad_cache_settings_name_the_property(tmp_path: Path, src: Path, props: dict[str, Any], where: str) -> None:
    err = error(tmp_path, {"Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", **props}}, "Fn": fn()})
    assert where in str(err)


def test_sam_rest_authorizers_default_and_per_event(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s", "Auth": {
            "DefaultAuthorizer": "Tok", "Authorizers": {
                "Tok": {"FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]}, "Identity": {"Header": "X-Token", "ReauthorizeEvery": 0,
                                                                                   "ValidationExpression": "^t.*"}},
                "Req": {"FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]}, "FunctionPayloadType": "REQUEST",
                        "Identity": {"Headers": ["H"], "QueryStrings": ["q"], "StageVariables": ["v"], "Context": ["stage"]}},
                "Pool": {"UserPoolArn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/x"}}}}},
        "Auth": fn(),
        "Fn": fn({name: {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Api"}, "Path": f"/{name}", "Method": "get",
                                                        **({"Auth": {"Authorizer": auth}} if auth else {})}}
                  for name, auth in (("d", None), ("r", "Req"), ("n", "NONE"), ("i", "AWS_IAM"), ("c", "Pool"))})})
    table = {key: route.authorizer for key, route in routes(by_name(spec, "Api")).items()}
    tok = table["GET /d"]
    assert (tok.kind, tok.function, tok.ttl_s, tok.validation_expression) == (TOKEN, "Auth", 0, "^t.*")
    assert tok.identity_sources == (IdentitySource("header", "X-Token", "method.request.header.X-Token"),)
    req = table["GET /r"]
    assert (req.kind, req.ttl_s) == (REQUEST, 300)
    assert [(s.where, s.name) for s in req.identity_sources] == [("header", "H"), ("querystring", "q"),
                                                                ("stageVariables", "v"), ("context", "stage")]
    assert table["GET /n"] is None and table["GET /i"].kind == IAM and table["GET /c"].kind == COGNITO


def test_sam_http_authorizers(tmp_path: Path, src: Path) -> None:
    spec = gateway(tmp_path, {
        "Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {"Auth": {"DefaultAuthorizer": "L", "Authorizers": {
            "L": {"FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]}, "AuthorizerPayloadFormatVersion": "2.0",
                  "EnableSimpleResponses": True, "Identity": {"Headers": ["Authorization"], "ReauthorizeEvery": 10}},
            "J": {"JwtConfiguration": {"issuer": "https://x", "audience": ["a"]}, "IdentitySource": "$request.header.Authorization"}}}}},
        "Auth": fn(),
        "Fn": fn({"A": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Api"}, "Path": "/a", "Method": "get"}},
                  "B": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Api"}, "Path": "/b", "Method": "get",
                                                          "Auth": {"Authorizer": "J"}}}})})
    table = {key: route.authorizer for key, route in routes(by_name(spec, "Api")).items()}
    lam = table["GET /a"]
    assert (lam.kind, lam.payload_format, lam.simple_responses, lam.ttl_s, lam.api_kind) == (REQUEST, "2.0", True, 10, HTTP)
    assert lam.identity_sources == (IdentitySource("header", "Authorization", "$request.header.Authorization"),)
    assert table["GET /b"].kind == JWT


def test_sam_http_authorizer_needs_a_payload_version(tmp_path: Path, src: Path) -> None:
    err = error(tmp_path, {"Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {"Auth": {"Authorizers": {
        "L": {"FunctionArn": {"Fn::GetAtt": ["Fn", "Arn"]}}}}}}, "Fn": fn()})
    assert "AuthorizerPayloadFormatVersion" in str(err)


def test_cloudformation_authorizers_methods_routes_and_stage_caching(tmp_path: Path, src: Path) -> None:
    method = {"Type": "AWS::ApiGateway::Method", "Properties": {
        "RestApiId": {"Ref": "Rest"}, "ResourceId": {"Fn::GetAtt": ["Rest", "RootResourceId"]}, "HttpMethod": "GET",
        "AuthorizationType": "CUSTOM", "AuthorizerId": {"Ref": "RestAuth"},
        "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": URI,
                        "CacheKeyParameters": ["method.request.querystring.q"]}}}
    spec = gateway(tmp_path, {
        "Rest": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "r"}},
        "RestAuth": {"Type": "AWS::ApiGateway::Authorizer", "Properties": {
            "RestApiId": {"Ref": "Rest"}, "Type": "REQUEST", "AuthorizerUri": AUTH_URI,
            "IdentitySource": "method.request.header.A, method.request.querystring.b", "AuthorizerResultTtlInSeconds": 0}},
        "Get": method,
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {
            "RestApiId": {"Ref": "Rest"}, "StageName": "p", "CacheClusterEnabled": True,
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "CachingEnabled": True}]}},
        "Http": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "h", "ProtocolType": "HTTP"}},
        "HttpAuth": {"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": {
            "ApiId": {"Ref": "Http"}, "AuthorizerType": "REQUEST", "AuthorizerUri": AUTH_URI, "Name": "ha",
            "AuthorizerPayloadFormatVersion": "2.0", "IdentitySource": ["$request.header.Authorization"]}},
        "Integration": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
            "ApiId": {"Ref": "Http"}, "IntegrationType": "AWS_PROXY", "IntegrationUri": {"Fn::GetAtt": ["Fn", "Arn"]},
            "PayloadFormatVersion": "2.0"}},
        "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": {"Ref": "Http"}, "RouteKey": "GET /x", "AuthorizationType": "CUSTOM",
            "AuthorizerId": {"Ref": "HttpAuth"}, "Target": {"Fn::Sub": "integrations/${Integration}"}}},
        "HttpStage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {"ApiId": {"Ref": "Http"}, "StageName": "$default"}},
        "Auth": fn(), "Fn": fn()})
    get = routes(by_name(spec, "Rest"))["GET /"]
    assert (get.authorizer.kind, get.authorizer.ttl_s, get.authorizer.function) == (REQUEST, 0, "Auth")
    assert [s.declared for s in get.authorizer.identity_sources] == ["method.request.header.A", "method.request.querystring.b"]
    assert get.cache_key_parameters == ("method.request.querystring.q",)
    stage = by_name(spec, "Rest").stages[0]
    assert stage.cache_cluster_enabled and stage.default_cache == MethodCacheSpec(True)
    route = routes(by_name(spec, "Http"))["GET /x"]
    assert (route.authorizer.name, route.authorizer.payload_format, route.authorizer.api_kind) == ("ha", "2.0", HTTP)


def test_an_unknown_authorizer_name_is_an_error(tmp_path: Path, src: Path) -> None:
    err = error(tmp_path, {"Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "s"}},
                           "Fn": fn({"E": {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/x",
                                                                         "Method": "get", "Auth": {"Authorizer": "Nope"}}}})})
    assert "Nope" in str(err) and "Auth.Authorizer" in str(err)
