"""SNS subscription filter policies: AWS's checks around the pattern language, and the
documents a message offers to them.

https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html and its
sub-pages. A policy is checked in this order (each error as SNS words it; the texts were
recorded from AWS in LocalStack's AWS-validated snapshots,
tests/aws/services/sns/test_sns_filter_policy.snapshot.json in localstack/localstack):
its size, JSON, the rule compiler (errors with the parser's line and column), nesting under
the MessageAttributes scope, the number of keys, and the number of value combinations.
The `detail` of a `FilterPolicyError` follows "Invalid parameter: " (SetSubscriptionAttributes)
or "Invalid parameter: Attributes Reason: " (Subscribe): the caller adds the prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from emulator.patterns.compiler import SNS, Pattern, PatternError, check_json, compile_pattern
from emulator.patterns.matching import Flat, Leaf, flatten, matches

SCOPE_ATTRIBUTES = "MessageAttributes"
SCOPE_BODY = "MessageBody"
SCOPES = (SCOPE_ATTRIBUTES, SCOPE_BODY)
# Limits (https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html):
MAX_KEYS = 5  # "A filter policy can have a maximum of five keys."
MAX_COMBINATIONS = 150  # "The total combination of values ... must not exceed 150."
MAX_POLICY_BYTES = 256 * 1024  # "The maximum size of a filter policy is 256 KB."
MAX_POLICIES_PER_TOPIC = 200  # "up to 200 filter policies per topic
MAX_POLICIES_PER_ACCOUNT = 10_000  # and 10,000 filter policies per AWS account"
# Subscribe's and SetSubscriptionAttributes' prefixes of a filter-policy error (recorded).
SUBSCRIBE_PREFIX = "Invalid parameter: Attributes Reason: "
SET_ATTRIBUTES_PREFIX = "Invalid parameter: "
# FilterPolicyLimitExceeded: HTTP 403 and its description in the API reference
# (https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html#API_Subscribe_Errors); AWS's
# exact message is not documented, so the description is the message.
LIMIT_EXCEEDED_CODE = "FilterPolicyLimitExceeded"
LIMIT_EXCEEDED_STATUS = 403
LIMIT_EXCEEDED_MESSAGE = ("Indicates that the number of filter polices in your Amazon Web Services account exceeds "
                          "the limit. To add more filter polices, submit an Amazon SNS Limit Increase case in the "
                          "Amazon Web Services Support Center.")


class FilterPolicyError(ValueError):
    """A filter policy SNS refuses; `detail` is the message after SNS's prefix."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def scope_error(value: str) -> FilterPolicyError:
    return FilterPolicyError(f"FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or "
                             "MessageAttributes")


class Outcome(Enum):
    """Why a message was or was not delivered to a subscription with a policy; the
    filtered-out ones are SNS's CloudWatch metrics NumberOfNotificationsFilteredOut-*
    (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html)."""

    MATCHED = "Matched"
    ATTRIBUTES = "NumberOfNotificationsFilteredOut-MessageAttributes"
    BODY = "NumberOfNotificationsFilteredOut-MessageBody"
    INVALID_ATTRIBUTES = "NumberOfNotificationsFilteredOut-InvalidAttributes"
    NO_ATTRIBUTES = "NumberOfNotificationsFilteredOut-NoMessageAttributes"
    INVALID_BODY = "NumberOfNotificationsFilteredOut-InvalidMessageBody"


@dataclass(frozen=True)
class FilterPolicy:
    text: str
    scope: str
    pattern: Pattern | None  # None: "{}", which filters nothing

    def decide(self, message: "PublishedMessage") -> Outcome:
        if self.pattern is None:
            return Outcome.MATCHED
        if self.scope == SCOPE_BODY:
            flat = message.body_document()
            if flat is None:
                return Outcome.INVALID_BODY
            return Outcome.MATCHED if matches(self.pattern, flat) else Outcome.BODY
        flat = message.attribute_document()
        if flat is None:
            return Outcome.INVALID_ATTRIBUTES
        if not flat and not message.attributes:
            return Outcome.MATCHED if matches(self.pattern, flat) else Outcome.NO_ATTRIBUTES
        return Outcome.MATCHED if matches(self.pattern, flat) else Outcome.ATTRIBUTES


def parse_policy(text: str, scope: str | None = None) -> FilterPolicy:
    """Check a FilterPolicy attribute as SNS does; raises FilterPolicyError."""
    scope = scope or SCOPE_ATTRIBUTES
    if scope not in SCOPES:
        raise scope_error(scope)
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        # The limit is documented (above); the wording is ours.
        raise FilterPolicyError(f"FilterPolicy: Filter policy is larger than {MAX_POLICY_BYTES} bytes")
    try:
        loaded = check_json(text)
    except (ValueError, RecursionError):
        raise FilterPolicyError("FilterPolicy: failed to parse JSON.") from None
    if loaded == {}:
        return FilterPolicy(text, scope, None)
    try:
        pattern = compile_pattern(text, SNS)
    except PatternError as exc:
        raise FilterPolicyError(f"FilterPolicy: {exc.message}{exc.where}") from None
    assert isinstance(loaded, dict)
    if scope == SCOPE_ATTRIBUTES and _nested(loaded):
        raise FilterPolicyError("Filter policy scope MessageAttributes does not support nested filter policy")
    if len(loaded) > MAX_KEYS:
        raise FilterPolicyError(f"FilterPolicy: Filter policy can not have more than {MAX_KEYS} keys")
    if combinations(loaded) > MAX_COMBINATIONS:
        raise FilterPolicyError("FilterPolicy: Filter policy is too complex")
    return FilterPolicy(text, scope, pattern)


def _nested(policy: Mapping[str, Any]) -> bool:
    for key, value in policy.items():
        if key == "$or" and isinstance(value, list):
            if any(isinstance(branch, dict) and _nested(branch) for branch in value):
                return True
        elif isinstance(value, dict):
            return True
    return False


def combinations(policy: Mapping[str, Any], depth: int = 1, total: int = 1) -> int:
    """SNS's complexity: the product of each array's number of values times its key's
    nesting depth (the constraints page's example: 3 x 4 x 2 x 3 = 72 for four values three
    levels down and three values two levels down); the branches of a `$or` add up."""
    for key, value in policy.items():
        if isinstance(value, dict):
            total = combinations(value, depth + 1, total)
        elif isinstance(value, list) and key == "$or":
            total = sum(combinations(branch, depth, total) for branch in value if isinstance(branch, dict))
        elif isinstance(value, list):
            total *= len(value) * depth
    return total


# -- the documents a message offers ------------------------------------------------------------
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


class PublishedMessage:
    """One published message, its documents decoded once for all its subscriptions.

    `attributes` are SNS's {name: {"Type": ..., "Value": ...}}. Under the MessageAttributes
    scope, String values are compared with `"` and `\\` escaped, which is why SNS asks for
    them double-escaped in policies
    (https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html);
    Number values as numbers; String.Array values as the JSON array they hold (an invalid
    one makes the attributes invalid); Binary values are ignored.
    """

    __slots__ = ("message", "attributes", "_attribute_doc", "_body_doc", "_decoded")

    def __init__(self, message: str, attributes: Mapping[str, Mapping[str, str]] | None) -> None:
        self.message = message
        self.attributes = attributes or {}
        self._decoded = 0  # bit 1: attributes decoded, bit 2: body decoded
        self._attribute_doc: Flat | None = None
        self._body_doc: Flat | None = None

    def attribute_document(self) -> Flat | None:
        if not self._decoded & 1:
            self._decoded |= 1
            self._attribute_doc = _attribute_document(self.attributes)
        return self._attribute_doc

    def body_document(self) -> Flat | None:
        if not self._decoded & 2:
            self._decoded |= 2
            try:
                body = json.loads(self.message)
            except (ValueError, RecursionError):
                body = None
            self._body_doc = flatten(body) if isinstance(body, dict) else None
        return self._body_doc


def _attribute_document(attributes: Mapping[str, Mapping[str, str]]) -> Flat | None:
    flat: dict[str, list[Leaf]] = {}
    for name, attribute in attributes.items():
        kind = str(attribute.get("Type") or "")
        value = attribute.get("Value")
        if value is None:
            continue
        if kind == "String.Array":
            try:
                items = json.loads(value)
            except (ValueError, RecursionError, TypeError):
                return None
            if not isinstance(items, list):
                return None
            flat[name] = [(item, ()) for item in items if not isinstance(item, (dict, list))]
        elif kind.startswith("Number"):
            try:
                flat[name] = [(float(value) if ("." in value or "e" in value or "E" in value) else int(value), ())]
            except (ValueError, TypeError):
                return None
        elif kind.startswith("String"):
            flat[name] = [(value.translate(_ESCAPES) if ("\\" in value or '"' in value) else value, ())]
    return flat
