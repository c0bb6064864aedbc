"""A function's resource-based policy (AddPermission, RemovePermission, GetPolicy and the
template's AWS::Lambda::Permission), kept and returned as Lambda shapes it. Pure.

Stored, never enforced: the emulator has no identities to check a principal against
(README, "Lambda API"). Statement shapes follow
https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html and the
API reference of AddPermission (https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html):
a service principal becomes `{"Service": …}`, an account `{"AWS": "arn:aws:iam::…:root"}`,
and each condition key the request names becomes a `Condition` entry.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound, ValidationError

# Shapes of the Lambda API model
# (https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
MAX_STATEMENT_ID_LENGTH = 100
ACTION_PATTERN = r"(lambda:[*]|lambda:[a-zA-Z]+|[*])"
PRINCIPAL_PATTERN = r"[^\s]+"
SOURCE_ACCOUNT_PATTERN = r"\d{12}"
PRINCIPAL_ORG_PATTERN = r"o-[a-z0-9]{10,32}"
FUNCTION_URL_AUTH_TYPES = ("NONE", "AWS_IAM")
# Policies are at most 20 KB: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_POLICY_BYTES = 20 * 1024
POLICY_VERSION = "2012-10-17"
# Lambda's messages (users' error output; AWS's docs do not give the wording).
SID_EXISTS = ("The statement id (sid) provided already exists. Please choose a new statement id, or remove the "
              "existing statement.")
NO_POLICY = "The resource you requested does not exist."
REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to "
                     "retrieve the latest Revision Id")


def _revision() -> str:
    return str(uuid.uuid4())


@dataclass
class ResourcePolicy:
    """The statements of one function or qualifier, in the order they were added."""

    resource_arn: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    revision_id: str = field(default_factory=_revision)

    def document(self) -> str:
        return json.dumps({"Version": POLICY_VERSION, "Id": "default", "Statement": self.statements},
                          separators=(",", ":"))


def _check(request: Mapping[str, Any]) -> None:
    problems: list[str] = []

    def bad(value: Any, where: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        problems.append(f"Value {shown} at '{where}' failed to satisfy constraint: {constraint}")

    for key, where, pattern, max_length in (
        ("StatementId", "statementId", STATEMENT_ID_PATTERN, MAX_STATEMENT_ID_LENGTH),
        ("Action", "action", ACTION_PATTERN, 10_000),
        ("Principal", "principal", PRINCIPAL_PATTERN, 2048),
    ):
        value = request.get(key)
        if value is None:
            bad(None, where, "Member must not be null")
        elif not isinstance(value, str) or not re.fullmatch(pattern, value):
            bad(value, where, f"Member must satisfy regular expression pattern: {pattern}")
        elif len(value) > max_length:
            bad(value, where, f"Member must have length less than or equal to {max_length}")
    for key, where, pattern in (("SourceAccount", "sourceAccount", SOURCE_ACCOUNT_PATTERN),
                                ("PrincipalOrgID", "principalOrgID", PRINCIPAL_ORG_PATTERN)):
        value = request.get(key)
        if value is not None and (not isinstance(value, str) or not re.fullmatch(pattern, value)):
            bad(value, where, f"Member must satisfy regular expression pattern: {pattern}")
    auth = request.get("FunctionUrlAuthType")
    if auth is not None and auth not in FUNCTION_URL_AUTH_TYPES:
        bad(auth, "functionUrlAuthType", f"Member must satisfy enum value set: [{', '.join(FUNCTION_URL_AUTH_TYPES)}]")
    if problems:
        raise ValidationError(f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
                              + "; ".join(problems))


def _principal(principal: str) -> Any:
    if principal == "*":
        return "*"
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    return {"Service": principal}


def statement(request: Mapping[str, Any], resource_arn: str) -> dict[str, Any]:
    """One statement from AddPermission's parameters (checked as Lambda checks them)."""
    _check(request)
    conditions: dict[str, dict[str, str]] = {}
    if request.get("SourceAccount"):
        conditions.setdefault("StringEquals", {})["AWS:SourceAccount"] = request["SourceAccount"]
    if request.get("EventSourceToken"):
        conditions.setdefault("StringEquals", {})["lambda:EventSourceToken"] = request["EventSourceToken"]
    if request.get("PrincipalOrgID"):
        conditions.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = request["PrincipalOrgID"]
    if request.get("FunctionUrlAuthType"):
        conditions.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = request["FunctionUrlAuthType"]
    if request.get("SourceArn"):
        conditions.setdefault("ArnLike", {})["AWS:SourceArn"] = request["SourceArn"]
    body: dict[str, Any] = {
        "Sid": request["StatementId"],
        "Effect": "Allow",
        "Principal": _principal(request["Principal"]),
        "Action": request["Action"],
        "Resource": resource_arn,
    }
    if conditions:
        body["Condition"] = conditions
    return body


def add(policy: ResourcePolicy, request: Mapping[str, Any]) -> dict[str, Any]:
    """Add a statement; returns it. Raises Lambda's errors for a duplicate id, a stale
    RevisionId or a policy over its size limit."""
    new = statement(request, policy.resource_arn)  # the request's own checks come first, as in Lambda
    revision = request.get("RevisionId")
    if revision is not None and revision != policy.revision_id:
        raise PreconditionFailed(REVISION_MISMATCH)
    if any(existing["Sid"] == new["Sid"] for existing in policy.statements):
        raise ResourceConflict(SID_EXISTS)
    candidate = ResourcePolicy(policy.resource_arn, policy.statements + [new])
    if len(candidate.document().encode()) > MAX_POLICY_BYTES:
        raise InvalidParameterValue(f"The final policy size ({len(candidate.document().encode())}) is bigger than the "
                                    f"limit ({MAX_POLICY_BYTES}).")
    policy.statements.append(new)
    policy.revision_id = _revision()
    return new


def remove(policy: ResourcePolicy | None, statement_id: str, revision: str | None) -> None:
    if policy is None or not any(s["Sid"] == statement_id for s in policy.statements):
        raise ResourceNotFound(f"Statement {statement_id} is not found in resource policy.")
    if revision is not None and revision != policy.revision_id:
        raise PreconditionFailed(REVISION_MISMATCH)
    policy.statements[:] = [s for s in policy.statements if s["Sid"] != statement_id]
    policy.revision_id = _revision()
