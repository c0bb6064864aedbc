"""What the readers of API Gateway resources share: resolved properties with errors that name
the resource and property, throttle and timeout values, and Lambda integration URIs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from emulator.template.api_specs import (
    ANY_METHOD, DEFAULT_ROUTE, HTTP, HTTP_MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, REST, REST_DEFAULT_TIMEOUT_MS,
    REST_RAISED_TIMEOUT_MS, WILDCARD, IntegrationSpec, QuotaSpec, ThrottleSpec,
)
from emulator.template import api_ids
from emulator.template.intrinsics import StackScope
from emulator.template.specs import FunctionSpec

# The methods API Gateway accepts (PutMethod: "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT,
# or ANY"): https://docs.aws.amazon.com/apigateway/latest/api/API_PutMethod.html
HTTP_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", ANY_METHOD})
PAYLOAD_FORMATS = ("1.0", "2.0")
# https://docs.aws.amazon.com/apigateway/latest/api/API_QuotaSettings.html
QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
# A path variable is `{name}`; a greedy one `{name+}` and must be last:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
_PATH_VARIABLE = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~:@!$&'()*,;=+-]+")
# arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function ARN}/invocations
_INVOCATION_URI = re.compile(r"arn:[^:]+:apigateway:[^:]*:lambda:path/[^/]+/functions/(.+)/invocations")
_FUNCTION_ARN = re.compile(r"arn:[^:]+:lambda:[^:]*:[^:]*:function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?")


class Unserved(Exception):
    """A Lambda integration the emulator cannot serve (the route answers API Gateway's 500)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiProps:
    """One resource's properties, resolved one at a time, with errors naming the property."""

    def __init__(self, stack: StackScope, logical_id: str) -> None:
        self.stack, self.logical_id = stack, logical_id
        self.type = stack.types[logical_id]

    @property
    def raw(self) -> Mapping[str, Any]:
        return self.stack.raw[self.logical_id]["Properties"]

    def get(self, prop: str) -> Any:
        return self.stack.resolve_property(self.logical_id, prop)

    def fail(self, prop: str, problem: str) -> NoReturn:
        self.stack.fail(problem, self.logical_id, prop)

    def warn_once(self, key: str, message: str) -> None:
        self.stack.settings.warn_once((self.type, key), message)

    def mapping(self, prop: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(prop, f"must be a mapping, got {value!r}")
        return value

    def text(self, prop: str, value: Any, default: str = "") -> str:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(prop, f"{value!r} is not a string; write a plain value")
        return str(value)

    def boolean(self, prop: str, value: Any, default: bool = False) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(prop, f"{value!r} is not true or false")

    def number(self, prop: str, value: Any, low: float, high: float | None = None, integer: bool = False) -> float | int | None:
        """A number within [low, high] (numeric strings count, as in CloudFormation), or None."""
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value) if not integer else int(value)
            except ValueError:
                self.fail(prop, f"{value!r} is not a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
            self.fail(prop, f"{value!r} is not {'a whole number' if integer else 'a number'}")
        if value < low or (high is not None and value > high):
            allowed = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
            self.fail(prop, f"{value:g} is out of range: the allowed range is {allowed}")
        return int(value) if integer else value

    def throttle(self, prop: str, value: Any, rate_key: str, burst_key: str) -> ThrottleSpec | None:
        """`{ThrottlingRateLimit, ThrottlingBurstLimit}` (or RateLimit / BurstLimit) -> ThrottleSpec."""
        settings = self.mapping(prop, value)
        rate = self.number(f"{prop}.{rate_key}", settings.get(rate_key), 0)
        burst = self.number(f"{prop}.{burst_key}", settings.get(burst_key), 0, integer=True)
        if rate is None and burst is None:
            return None
        return ThrottleSpec(None if rate is None else float(rate), None if burst is None else int(burst))


def normalise_method(props: ApiProps, prop: str, value: Any) -> str:
    method = props.text(prop, value).upper()
    if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
        method = ANY_METHOD
    if method not in HTTP_METHODS:
        props.fail(prop, f"{value!r} is not a method API Gateway accepts; use one of {', '.join(sorted(HTTP_METHODS))}")
    return method


def method_setting_key(props: ApiProps, where: str, item: Mapping[str, Any]) -> tuple[str, str]:
    """(method, resource path) a REST `MethodSettings` entry applies to; (`*`, `*`) for the
    stage's default (`/*` and `*`). CloudFormation writes `/` inside a resource path as `~1`
    (`/~1pets`): https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-apigateway-stage-methodsetting.html"""
    method = props.text(f"{where}.HttpMethod", item.get("HttpMethod"), WILDCARD).upper()
    path = props.text(f"{where}.ResourcePath", item.get("ResourcePath"), "/*")
    path = WILDCARD if path == "/*" else "/" + path.replace("~1", "/").lstrip("/")
    if method != WILDCARD:
        method = normalise_method(props, f"{where}.HttpMethod", method)
    if (method, path) == (WILDCARD, WILDCARD):
        return WILDCARD, WILDCARD
    return method, path.rstrip("/") or "/"


def check_path(props: ApiProps, prop: str, path: Any, kind: str) -> str:
    """A resource path (`/pets/{id}`, `/{proxy+}`), or $default on an HTTP API."""
    text = props.text(prop, path)
    if kind == HTTP and text == DEFAULT_ROUTE:
        return text
    if not text.startswith("/"):
        props.fail(prop, f"{text!r} must start with '/'")
    if len(text) > 1 and text.endswith("/"):
        text = text[:-1]  # API Gateway treats /pets/ as /pets
    segments = text.split("/")[1:] if text != "/" else []
    for index, segment in enumerate(segments):
        match = _PATH_VARIABLE.fullmatch(segment)
        if match:
            if match.group(2) and index != len(segments) - 1:
                props.fail(prop, f"{text!r}: a greedy path variable {segment} must be the last segment")
            continue
        if not segment or not _PATH_SEGMENT.fullmatch(segment):
            props.fail(prop, f"{text!r}: segment {segment!r} is not a valid path part")
    return text


def timeout_ms(props: ApiProps, prop: str, value: Any, kind: str) -> int:
    if kind == REST:
        timeout = props.number(prop, value, MIN_TIMEOUT_MS, REST_RAISED_TIMEOUT_MS, integer=True)
        if timeout is not None and timeout > REST_DEFAULT_TIMEOUT_MS:
            props.warn_once("raised-timeout", f"{props.stack.settings.source}: resource {props.logical_id!r}: "
                            f"{prop} {timeout} is over 29,000 ms, which AWS allows only for Regional and private "
                            "REST APIs after a quota increase")
        return REST_DEFAULT_TIMEOUT_MS if timeout is None else int(timeout)
    timeout = props.number(prop, value, MIN_TIMEOUT_MS, HTTP_MAX_TIMEOUT_MS, integer=True)
    return HTTP_MAX_TIMEOUT_MS if timeout is None else int(timeout)


def payload_format(props: ApiProps, prop: str, value: Any, kind: str) -> str:
    if kind == REST:
        return "1.0"  # REST APIs only send format 1.0
    if value is None:
        return "2.0"
    text = props.text(prop, value)
    if text not in PAYLOAD_FORMATS:
        props.fail(prop, f"{text!r} is not a payload format version; use 1.0 or 2.0")
    return text


def lambda_target(props: ApiProps, prop: str, uri: Any, functions: Mapping[str, FunctionSpec]) -> tuple[str, str | None] | None:
    """(function name, qualifier) of a Lambda integration URI, or None for another kind of
    URI. Raises Unserved for a function the template does not declare (another stack's, on
    AWS) or one named through a stage variable."""
    text = props.text(prop, uri)
    invocation = _INVOCATION_URI.fullmatch(text)
    if invocation is not None:
        text = invocation.group(1)
    elif not text.startswith("arn:") and text in functions:
        return text, None  # a bare name (not valid on AWS, but unambiguous)
    if "${stageVariables." in text:
        raise Unserved(f"{text!r} names the function through a stage variable, which the emulator does not resolve; "
                       "name the function directly, e.g. !GetAtt MyFunction.Arn")
    arn = _FUNCTION_ARN.fullmatch(text)
    if arn is None:
        return None
    name, qualifier = arn.group(1), arn.group(2)
    if name not in functions:
        raise Unserved(f"{text!r} names function {name!r}, which this template does not declare")
    return name, qualifier


def integration(props: ApiProps, prop: str, uri: Any, functions: Mapping[str, FunctionSpec], *,
                kind: str, payload: Any = None, timeout: Any = None) -> IntegrationSpec | None:
    target = lambda_target(props, f"{prop}.Uri" if prop else "Uri", uri, functions)
    if target is None:
        return None
    return IntegrationSpec(target[0], target[1], payload_format(props, f"{prop}.PayloadFormatVersion", payload, kind),
                           timeout_ms(props, f"{prop}.TimeoutInMillis", timeout, kind))


def served_integration(props: ApiProps, prop: str, uri: Any, functions: Mapping[str, FunctionSpec], *,
                       kind: str, payload: Any = None, timeout: Any = None) -> tuple[IntegrationSpec | None, str]:
    """(integration, "") or (None, why it is not served): a URI the emulator cannot serve is
    warned about and its route answers API Gateway's 500, the rest of the API is served."""
    try:
        spec = integration(props, prop, uri, functions, kind=kind, payload=payload, timeout=timeout)
    except Unserved as unserved:
        where = f"{prop}.Uri" if prop else "Uri"
        props.stack.settings.warn(f"{props.stack.settings.source}: resource {props.logical_id!r}, property {where!r}: "
                                  f"{unserved.reason}; the route answers 500")
        return None, unserved.reason
    return spec, "" if spec else f"its integration URI {uri!r} is not a Lambda function"


def function_target(spec: FunctionSpec) -> tuple[str, str | None]:
    """SAM wires a function's events to its AutoPublishAlias when it has one."""
    return spec.name, spec.auto_publish_alias


def usage_plan_id(logical_id: str) -> str:
    return api_ids.derived_id("usage-plan", logical_id)


def quota(props: ApiProps, prop: str, value: Any) -> QuotaSpec | None:
    settings = props.mapping(prop, value)
    if not settings:
        return None
    limit = props.number(f"{prop}.Limit", settings.get("Limit"), 0, integer=True)
    period = props.text(f"{prop}.Period", settings.get("Period")).upper()
    if limit is None or period not in QUOTA_PERIODS:
        props.fail(prop, f"needs Limit and a Period of {', '.join(QUOTA_PERIODS)}")
    offset = props.number(f"{prop}.Offset", settings.get("Offset"), 0, integer=True) or 0
    return QuotaSpec(int(limit), period, int(offset))
