"""Authorizers in a template: SAM's `Auth.Authorizers` / `DefaultAuthorizer` of
AWS::Serverless::Api and AWS::Serverless::HttpApi, and AWS::ApiGateway::Authorizer /
AWS::ApiGatewayV2::Authorizer.

SAM: https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-api-lambdatokenauthorizer.html,
sam-property-api-lambdarequestauthorizer.html, sam-property-httpapi-lambdaauthorizer.html.
CloudFormation: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-authorizer.html,
aws-resource-apigatewayv2-authorizer.html. Identity sources: REST `method.request.header.NAME`,
`method.request.querystring.NAME`, `stageVariables.NAME`, `context.NAME`; HTTP APIs
`$request.header.NAME`, `$request.querystring.NAME`, `$stageVariables.NAME`, `$context.NAME`
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.policy.api_cache import AUTHORIZER_TTL_DEFAULT_S, AUTHORIZER_TTL_MAX_S
from emulator.template import api_ids
from emulator.template.api_reading import ApiProps, Unserved, lambda_target
from emulator.template.api_specs import (
    COGNITO, HTTP, IAM, JWT, REQUEST, REST, TOKEN, AuthorizerSpec, IdentitySource,
)
from emulator.template.specs import FunctionSpec

# The header a TOKEN authorizer reads when SAM's Identity names none.
SAM_TOKEN_HEADER = "Authorization"
NONE_AUTHORIZER = "NONE"
_REST_SOURCE = re.compile(r"method\.request\.(header|querystring|multivalueheader|multivaluequerystring)\.(.+)|"
                          r"(stageVariables|context)\.(.+)")
_HTTP_PREFIXES = {"header": "$request.header.", "querystring": "$request.querystring.",
                  "stageVariables": "$stageVariables.", "context": "$context."}
_HTTP_SOURCE = re.compile(r"\$request\.(header|querystring)\.(.+)|\$(stageVariables|context)\.(.+)")


def identity_source(props: ApiProps, prop: str, text: str, kind: str) -> IdentitySource:
    text = text.strip()
    match = (_REST_SOURCE if kind == REST else _HTTP_SOURCE).fullmatch(text)
    if match is None:
        example = "method.request.header.Authorization" if kind == REST else "$request.header.Authorization"
        props.fail(prop, f"{text!r} is not an identity source (e.g. {example})")
    where, name = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    where = {"multivalueheader": "header", "multivaluequerystring": "querystring"}.get(where, where)
    return IdentitySource(where, name, text)


def _ttl(props: ApiProps, prop: str, value: Any) -> int:
    ttl = props.number(prop, value, 0, AUTHORIZER_TTL_MAX_S, integer=True)
    return AUTHORIZER_TTL_DEFAULT_S if ttl is None else int(ttl)


def _function(props: ApiProps, prop: str, uri: Any, functions: Mapping[str, FunctionSpec]) -> tuple[str, str | None]:
    try:
        target = lambda_target(props, prop, uri, functions)
    except Unserved as unserved:
        props.fail(prop, unserved.reason)
    if target is None:
        props.fail(prop, f"{uri!r} is not a Lambda function of this template; use !GetAtt MyAuthorizerFunction.Arn")
    return target


# --- SAM -----------------------------------------------------------------------------------


def sam_authorizers(props: ApiProps, auth: Mapping[str, Any], functions: Mapping[str, FunctionSpec],
                    kind: str) -> dict[str, AuthorizerSpec]:
    """`Auth.Authorizers` of a SAM API, by name; IAM authorization (`AWS_IAM`, HttpApi
    `EnableIamAuthorizer`) as an authorizer named AWS_IAM."""
    found: dict[str, AuthorizerSpec] = {
        IAM: AuthorizerSpec(IAM, api_ids.derived_id("authorizer", f"{props.logical_id}:{IAM}"), IAM, api_kind=kind)}
    for name, settings in props.mapping("Auth.Authorizers", auth.get("Authorizers")).items():
        where = f"Auth.Authorizers.{name}"
        settings = props.mapping(where, settings)
        authorizer_id = api_ids.derived_id("authorizer", f"{props.logical_id}:{name}")
        if "UserPoolArn" in settings:
            header = props.mapping(f"{where}.Identity", settings.get("Identity")).get("Header", SAM_TOKEN_HEADER)
            found[name] = AuthorizerSpec(name, authorizer_id, COGNITO, identity_sources=(
                IdentitySource("header", props.text(f"{where}.Identity.Header", header), str(header)),), api_kind=kind)
        elif "JwtConfiguration" in settings:
            source = props.text(f"{where}.IdentitySource", settings.get("IdentitySource"), "$request.header.Authorization")
            found[name] = AuthorizerSpec(name, authorizer_id, JWT, identity_sources=(
                identity_source(props, f"{where}.IdentitySource", source, HTTP),), api_kind=kind)
        elif "FunctionArn" in settings:
            found[name] = _sam_lambda(props, where, name, authorizer_id, settings, functions, kind)
        else:
            props.fail(where, "give FunctionArn (a Lambda authorizer), UserPoolArn (Cognito) or JwtConfiguration (JWT)")
    return found


def _sam_lambda(props: ApiProps, where: str, name: str, authorizer_id: str, settings: Mapping[str, Any],
                functions: Mapping[str, FunctionSpec], kind: str) -> AuthorizerSpec:
    function, qualifier = _function(props, f"{where}.FunctionArn", settings.get("FunctionArn"), functions)
    identity = props.mapping(f"{where}.Identity", settings.get("Identity"))
    ttl = _ttl(props, f"{where}.Identity.ReauthorizeEvery", identity.get("ReauthorizeEvery"))
    sources = []
    for key, source_where, rest in (("Headers", "header", "method.request.header."),
                                    ("QueryStrings", "querystring", "method.request.querystring."),
                                    ("StageVariables", "stageVariables", "stageVariables."),
                                    ("Context", "context", "context.")):
        names = identity.get(key) or []
        if not isinstance(names, list):
            props.fail(f"{where}.Identity.{key}", "must be a list of names")
        prefix = rest if kind == REST else _HTTP_PREFIXES[source_where]
        sources += [IdentitySource(source_where, props.text(f"{where}.Identity.{key}", item), prefix + str(item))
                    for item in names]
    if kind == HTTP:
        version = props.text(f"{where}.AuthorizerPayloadFormatVersion", settings.get("AuthorizerPayloadFormatVersion"))
        if version not in ("1.0", "2.0"):
            props.fail(f"{where}.AuthorizerPayloadFormatVersion", "is required for a Lambda authorizer: 1.0 or 2.0")
        simple = props.boolean(f"{where}.EnableSimpleResponses", settings.get("EnableSimpleResponses"))
        if simple and version != "2.0":
            props.fail(f"{where}.EnableSimpleResponses", "needs AuthorizerPayloadFormatVersion 2.0")
        return AuthorizerSpec(name, authorizer_id, REQUEST, function, qualifier, tuple(sources), None, ttl, version,
                              simple, HTTP)
    payload = props.text(f"{where}.FunctionPayloadType", settings.get("FunctionPayloadType"), TOKEN).upper()
    if payload not in (TOKEN, REQUEST):
        props.fail(f"{where}.FunctionPayloadType", f"{payload!r} is neither TOKEN nor REQUEST")
    if payload == TOKEN:
        header = props.text(f"{where}.Identity.Header", identity.get("Header"), SAM_TOKEN_HEADER)
        expression = identity.get("ValidationExpression")
        return AuthorizerSpec(name, authorizer_id, TOKEN, function, qualifier,
                              (IdentitySource("header", header, f"method.request.header.{header}"),),
                              _expression(props, f"{where}.Identity.ValidationExpression", expression), ttl)
    return AuthorizerSpec(name, authorizer_id, REQUEST, function, qualifier, tuple(sources), None, ttl)


def _expression(props: ApiProps, prop: str, value: Any) -> str | None:
    if value is None:
        return None
    text = props.text(prop, value)
    try:
        re.compile(text)
    except re.error as err:
        props.fail(prop, f"{text!r} is not a regular expression: {err}")
    return text


def route_authorizer(props: ApiProps, prop: str, name: Any, authorizers: Mapping[str, AuthorizerSpec]) -> AuthorizerSpec | None:
    """An event's `Auth.Authorizer` (a name of the API's, AWS_IAM, or NONE)."""
    text = props.text(prop, name)
    if text == NONE_AUTHORIZER:
        return None
    if text not in authorizers:
        props.fail(prop, f"{text!r} is no authorizer of this API (it has: {', '.join(a for a in authorizers) or 'none'})")
    return authorizers[text]


# --- CloudFormation ------------------------------------------------------------------------


def rest_authorizer(props: ApiProps, functions: Mapping[str, FunctionSpec]) -> AuthorizerSpec:
    kind = props.text("Type", props.get("Type")).upper()
    authorizer_id = api_ids.derived_id("authorizer", props.logical_id)
    name = props.text("Name", props.get("Name"), props.logical_id)
    source_text = props.text("IdentitySource", props.get("IdentitySource"))
    sources = tuple(identity_source(props, "IdentitySource", part, REST) for part in source_text.split(",") if part.strip())
    if kind == COGNITO:
        return AuthorizerSpec(name, authorizer_id, COGNITO, identity_sources=sources)
    if kind not in (TOKEN, REQUEST):
        props.fail("Type", f"{kind!r} is not TOKEN, REQUEST or COGNITO_USER_POOLS")
    if kind == TOKEN and (len(sources) != 1 or sources[0].where != "header"):
        props.fail("IdentitySource", "a TOKEN authorizer reads one header: method.request.header.NAME")
    function, qualifier = _function(props, "AuthorizerUri", props.get("AuthorizerUri"), functions)
    return AuthorizerSpec(name, authorizer_id, kind, function, qualifier, sources,
                          _expression(props, "IdentityValidationExpression", props.get("IdentityValidationExpression")),
                          _ttl(props, "AuthorizerResultTtlInSeconds", props.get("AuthorizerResultTtlInSeconds")))


def v2_authorizer(props: ApiProps, functions: Mapping[str, FunctionSpec]) -> AuthorizerSpec:
    kind = props.text("AuthorizerType", props.get("AuthorizerType")).upper()
    authorizer_id = api_ids.derived_id("authorizer", props.logical_id)
    name = props.text("Name", props.get("Name"), props.logical_id)
    raw_sources = props.get("IdentitySource") or []
    if isinstance(raw_sources, str):
        raw_sources = [raw_sources]
    if not isinstance(raw_sources, list):
        props.fail("IdentitySource", "must be a list of identity sources")
    sources = tuple(identity_source(props, f"IdentitySource[{i}]", props.text(f"IdentitySource[{i}]", s), HTTP)
                    for i, s in enumerate(raw_sources))
    if kind == JWT:
        return AuthorizerSpec(name, authorizer_id, JWT, identity_sources=sources, api_kind=HTTP)
    if kind != REQUEST:
        props.fail("AuthorizerType", f"{kind!r} is neither REQUEST nor JWT")
    function, qualifier = _function(props, "AuthorizerUri", props.get("AuthorizerUri"), functions)
    version = props.text("AuthorizerPayloadFormatVersion", props.get("AuthorizerPayloadFormatVersion"))
    if version not in ("1.0", "2.0"):
        props.fail("AuthorizerPayloadFormatVersion", "is required for a REQUEST authorizer: 1.0 or 2.0")
    simple = props.boolean("EnableSimpleResponses", props.get("EnableSimpleResponses"))
    return AuthorizerSpec(name, authorizer_id, REQUEST, function, qualifier, sources, None,
                          _ttl(props, "AuthorizerResultTtlInSeconds", props.get("AuthorizerResultTtlInSeconds")),
                          version, simple, HTTP)


def method_authorizer(props: ApiProps, type_prop: str, id_prop: str, authorizers: Mapping[str, AuthorizerSpec],
                      kind: str) -> AuthorizerSpec | None:
    """A Method's (or v2 Route's) `AuthorizationType` and `AuthorizerId`."""
    auth_type = props.text(type_prop, props.get(type_prop), NONE_AUTHORIZER).upper()
    if auth_type == NONE_AUTHORIZER:
        return None
    if auth_type == IAM:
        return AuthorizerSpec(IAM, api_ids.derived_id("authorizer", f"{props.logical_id}:{IAM}"), IAM, api_kind=kind)
    authorizer_id = props.text(id_prop, props.get(id_prop))
    if authorizer_id not in authorizers:
        props.fail(id_prop, f"{authorizer_id!r} names no authorizer of this template; use !Ref MyAuthorizer")
    return authorizers[authorizer_id]
