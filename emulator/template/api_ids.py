"""Identifiers of API Gateway resources, and what `Ref` / `Fn::GetAtt` return for them.

CloudFormation gives an API, a resource, a key or a usage plan a random id at creation. Ours
are derived from the logical id instead, so a URL such as
`http://{api-id}.execute-api.localhost:3000/Prod/hello` stays the same from one start to the
next, and `!Ref MyApi` in a template means the id the gateway serves. The shapes follow
AWS's: 10 lower-case letters and digits for APIs, keys and plans, 6 for REST resources
(https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html shows
`https://{restapi_id}.execute-api.{region}.amazonaws.com/{stage_name}/`).

Nothing here imports the stack (emulator.template.intrinsics imports these tables).
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

SAM_API = "AWS::Serverless::Api"
SAM_HTTP_API = "AWS::Serverless::HttpApi"
REST_API = "AWS::ApiGateway::RestApi"
REST_RESOURCE = "AWS::ApiGateway::Resource"
REST_METHOD = "AWS::ApiGateway::Method"
REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
USAGE_PLAN = "AWS::ApiGateway::UsagePlan"
USAGE_PLAN_KEY = "AWS::ApiGateway::UsagePlanKey"
API_KEY = "AWS::ApiGateway::ApiKey"
V2_API = "AWS::ApiGatewayV2::Api"
V2_INTEGRATION = "AWS::ApiGatewayV2::Integration"
V2_ROUTE = "AWS::ApiGatewayV2::Route"
V2_STAGE = "AWS::ApiGatewayV2::Stage"
V2_DEPLOYMENT = "AWS::ApiGatewayV2::Deployment"
REST_AUTHORIZER = "AWS::ApiGateway::Authorizer"
V2_AUTHORIZER = "AWS::ApiGatewayV2::Authorizer"

# SAM's implicit APIs, made when a function's Api / HttpApi event names no API:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-api.html
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-httpapi.html
IMPLICIT_REST_API = "ServerlessRestApi"
IMPLICIT_HTTP_API = "ServerlessHttpApi"

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def derived_id(kind: str, logical_id: str, length: int = 10) -> str:
    """A stable id of `length` lower-case letters and digits for (kind, logical id)."""
    number = int.from_bytes(hashlib.sha256(f"{kind}:{logical_id}".encode()).digest()[:12], "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def api_id(logical_id: str) -> str:
    return derived_id("api", logical_id)


def root_resource_id(api_logical_id: str) -> str:
    return derived_id("root", api_logical_id, 6)


def resource_id(logical_id: str) -> str:
    return derived_id("resource", logical_id, 6)


def api_key_value(logical_id: str) -> str:
    """The value of a key declared without one: 40 characters, like the keys AWS generates."""
    return derived_id("key-value", logical_id, 20) + derived_id("key-value-2", logical_id, 20)


def api_endpoint(stack: Any, logical_id: str) -> str:
    return f"https://{api_id(logical_id)}.execute-api.{stack.region}.amazonaws.com"


def _api(stack: Any, logical_id: str) -> str:
    return api_id(logical_id)


def _kind_id(kind: str) -> Callable[[Any, str], str]:
    return lambda stack, logical_id: derived_id(kind, logical_id)


def _stage_name(stack: Any, logical_id: str) -> str:
    name = stack.resolve_property(logical_id, "StageName")
    return name if isinstance(name, str) else logical_id


# What `Ref` returns per type (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-restapi.html#aws-resource-apigateway-restapi-return-values
# and the pages of the other types): the API's, resource's, key's or plan's id; a stage's name.
GATEWAY_REF_VALUES: dict[str, Callable[[Any, str], str]] = {
    SAM_API: _api, SAM_HTTP_API: _api, REST_API: _api, V2_API: _api,
    REST_RESOURCE: lambda stack, logical_id: resource_id(logical_id),
    REST_DEPLOYMENT: _kind_id("deployment"), REST_STAGE: _stage_name, V2_STAGE: _stage_name,
    USAGE_PLAN: _kind_id("usage-plan"), API_KEY: _kind_id("api-key"), USAGE_PLAN_KEY: _kind_id("api-key"),
    V2_INTEGRATION: _kind_id("integration"), V2_ROUTE: _kind_id("route"), V2_DEPLOYMENT: _kind_id("deployment"),
    REST_AUTHORIZER: _kind_id("authorizer"), V2_AUTHORIZER: _kind_id("authorizer"),
}
# The `Fn::GetAtt` attributes of these types the emulator can answer.
GATEWAY_ATTRIBUTES: dict[str, dict[str, Callable[[Any, str], str]]] = {
    SAM_API: {"RootResourceId": lambda stack, logical_id: root_resource_id(logical_id)},
    REST_API: {"RootResourceId": lambda stack, logical_id: root_resource_id(logical_id), "RestApiId": _api},
    SAM_HTTP_API: {"ApiEndpoint": api_endpoint, "ApiId": _api},
    V2_API: {"ApiEndpoint": api_endpoint, "ApiId": _api},
    REST_RESOURCE: {"ResourceId": lambda stack, logical_id: resource_id(logical_id)},
    REST_DEPLOYMENT: {"DeploymentId": _kind_id("deployment")},
    API_KEY: {"APIKeyId": _kind_id("api-key")},
    USAGE_PLAN: {"Id": _kind_id("usage-plan")},
    V2_INTEGRATION: {"IntegrationId": _kind_id("integration")},
    V2_ROUTE: {"RouteId": _kind_id("route")},
    REST_AUTHORIZER: {"AuthorizerId": _kind_id("authorizer")},
    V2_AUTHORIZER: {"AuthorizerId": _kind_id("authorizer")},
}
