"""What a Lambda authorizer's answer means for one request. Pure.

* The ARN a request is checked against: `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/{path}`
  (REST `methodArn`, HTTP APIs' `routeArn`), with the request's own path:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-input.html
* The answer: an IAM policy (`principalId`, `policyDocument`, optional `context` and
  `usageIdentifierKey`; https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html)
  or, for HTTP APIs with simple responses, `{"isAuthorized": bool, "context": {...}}`
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
* IAM evaluation for `execute-api:Invoke` on the ARN: an explicit Deny wins, else an Allow
  allows, else the request is denied; `*` matches any run of characters and `?` one, in
  `Action` and `Resource` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-control-access-using-iam-policies-to-invoke-api.html).
  Actions compare case-insensitively, resources case-sensitively, as IAM does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

INVOKE_ACTION = "execute-api:invoke"
# The error message an authorizer function raises to have API Gateway answer 401
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html:
# `callback("Unauthorized")` / `raise Exception('Unauthorized')`).
UNAUTHORIZED_MESSAGE = "Unauthorized"


class Verdict(StrEnum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit-deny"  # no statement allows the ARN: 403
    EXPLICIT_DENY = "explicit-deny"  # a Deny statement matches: 403 "... with an explicit deny"


class MalformedAuthorizerAnswer(ValueError):
    """The authorizer's answer is not one API Gateway accepts (API Gateway answers 500)."""


def request_arn(region: str, account_id: str, api_id: str, stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


@lru_cache(maxsize=1024)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in glob)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(glob: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise MalformedAuthorizerAnswer(f"{what} must be a string or a list of strings")


def evaluate_policy(document: Mapping[str, Any], arn: str) -> Verdict:
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise MalformedAuthorizerAnswer("policyDocument.Statement must be a statement or a list of them")
    allowed = False
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            raise MalformedAuthorizerAnswer(f"policyDocument.Statement[{index}] must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise MalformedAuthorizerAnswer(f"policyDocument.Statement[{index}].Effect must be Allow or Deny")
        actions = _strings(statement.get("Action"), f"policyDocument.Statement[{index}].Action")
        resources = _strings(statement.get("Resource"), f"policyDocument.Statement[{index}].Resource")
        if not any(glob_matches(action, INVOKE_ACTION, ignore_case=True) for action in actions):
            continue
        if not any(glob_matches(resource, arn) for resource in resources):
            continue
        if effect == "Deny":
            return Verdict.EXPLICIT_DENY
        allowed = True
    return Verdict.ALLOW if allowed else Verdict.IMPLICIT_DENY


@dataclass(frozen=True)
class AuthorizerAnswer:
    """A parsed answer: either a policy (IAM format) or a simple verdict."""

    principal_id: str | None = None
    policy: Mapping[str, Any] | None = None
    authorized: bool | None = None  # simple responses
    context: Mapping[str, Any] = field(default_factory=dict)
    usage_identifier_key: str | None = None

    def verdict(self, arn: str) -> Verdict:
        if self.authorized is not None:
            return Verdict.ALLOW if self.authorized else Verdict.IMPLICIT_DENY
        assert self.policy is not None
        return evaluate_policy(self.policy, arn)


def _context(value: Any, flat: bool) -> dict[str, Any]:
    """REST: "You can't set a JSON object or array as a valid value of any key in the
    context map" (the output page above); HTTP APIs take any JSON."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedAuthorizerAnswer("context must be an object")
    if flat:
        for key, item in value.items():
            if isinstance(item, (Mapping, list)):
                raise MalformedAuthorizerAnswer(f"context.{key} must be a string, number or boolean")
    return dict(value)


def parse_answer(payload: bytes, *, simple: bool, flat_context: bool) -> AuthorizerAnswer:
    """The authorizer function's result payload. `simple`: an HTTP API authorizer with
    EnableSimpleResponses (then an IAM policy is not accepted, as on AWS)."""
    try:
        result = json.loads(payload)
    except (ValueError, RecursionError):
        raise MalformedAuthorizerAnswer("the answer is not JSON") from None
    if not isinstance(result, Mapping):
        raise MalformedAuthorizerAnswer("the answer is not a JSON object")
    if simple:
        authorized = result.get("isAuthorized")
        if not isinstance(authorized, bool):
            raise MalformedAuthorizerAnswer("isAuthorized must be true or false")
        return AuthorizerAnswer(authorized=authorized, context=_context(result.get("context"), False))
    document = result.get("policyDocument")
    if not isinstance(document, Mapping):
        raise MalformedAuthorizerAnswer("policyDocument is missing")
    evaluate_policy(document, "")  # the shape is checked once, not on every cached use
    principal = result.get("principalId")
    if principal is not None and not isinstance(principal, (str, int, float)):
        raise MalformedAuthorizerAnswer("principalId must be a string")
    key = result.get("usageIdentifierKey")
    return AuthorizerAnswer(None if principal is None else str(principal), document,
                            context=_context(result.get("context"), flat_context),
                            usage_identifier_key=key if isinstance(key, str) else None)


def stringified_context(context: Mapping[str, Any]) -> dict[str, str]:
    """REST APIs hand the context to the integration with its values as strings (`true`,
    `123`), as the proxy event shows them."""
    out = {}
    for key, value in context.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif value is None:
            out[key] = ""
        else:
            out[key] = str(value)
    return out
