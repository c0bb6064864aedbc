"""Resource-based policies and tags of functions: AddPermission, RemovePermission,
GetPolicy, TagResource, UntagResource, ListTags (and the template's
AWS::Lambda::Permission and `Tags`).

Both are stored and returned exactly; neither is enforced (the emulator has no callers'
identities to check: README, "Lambda API"). The rules are pure
(emulator/functions/resource_policy.py, emulator/functions/tags.py); this class finds the
function, version or alias they apply to. emulator/api/policy_api.py maps it to HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from emulator.errors import InvalidParameterValue, ResourceNotFound, ValidationError
from emulator.functions import resource_policy, tags as tag_rules
from emulator.functions.registry import LATEST, FunctionRegistry, LambdaFunction
from emulator.functions.resource_policy import NO_POLICY, ResourcePolicy

# The model's TaggableResource pattern
# (https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
TAGGABLE_RESOURCE = (r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
                     r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|"
                     r"event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}|(capacity-provider|network-connector):[a-zA-Z0-9-_]{1,64})")


class FunctionPolicies:
    def __init__(self, registry: Callable[[], FunctionRegistry]) -> None:
        self._registry = registry  # the service's registry is replaced on reset

    # -- permissions ---------------------------------------------------------------------
    def _policy_target(self, raw_name: str, qualifier: str | None) -> tuple[LambdaFunction, str, str]:
        """(function, qualifier key, resource ARN) of the policy a request names."""
        function, in_name = self._registry().get(raw_name)
        if in_name and qualifier and in_name != qualifier:
            raise InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.")
        qualifier = qualifier or in_name
        arn = function.latest.function_arn
        if not qualifier:
            return function, "", arn
        if qualifier != LATEST and qualifier not in function.versions and qualifier not in function.aliases:
            raise ResourceNotFound(f"Function not found: {arn}:{qualifier}")
        return function, qualifier, f"{arn}:{qualifier}"

    def add_permission(self, raw_name: str, qualifier: str | None, request: Mapping[str, Any]) -> dict[str, Any]:
        function, key, arn = self._policy_target(raw_name, qualifier)
        policy = function.policies.get(key) or ResourcePolicy(arn)
        added = resource_policy.add(policy, request)
        function.policies[key] = policy
        return added

    def remove_permission(self, raw_name: str, qualifier: str | None, statement_id: str, revision: str | None) -> None:
        function, key, _ = self._policy_target(raw_name, qualifier)
        policy = function.policies.get(key)
        resource_policy.remove(policy, statement_id, revision)
        if policy is not None and not policy.statements:
            del function.policies[key]

    def get_policy(self, raw_name: str, qualifier: str | None) -> ResourcePolicy:
        function, key, _ = self._policy_target(raw_name, qualifier)
        policy = function.policies.get(key)
        if policy is None or not policy.statements:
            raise ResourceNotFound(NO_POLICY)
        return policy

    def add_template_permission(self, function_name: str, logical_id: str, properties: Mapping[str, Any]) -> None:
        """An AWS::Lambda::Permission of the template (its logical id is the statement id)."""
        request = {"StatementId": logical_id, **{k: v for k, v in properties.items() if k != "FunctionName"}}
        self.add_permission(function_name, None, request)

    # -- tags ------------------------------------------------------------------------------
    def _tagged(self, resource: str) -> LambdaFunction:
        if not isinstance(resource, str) or not re.fullmatch(TAGGABLE_RESOURCE, resource):
            raise ValidationError(f"1 validation error detected: Value '{resource}' at 'resource' failed to satisfy "
                                  f"constraint: Member must satisfy regular expression pattern: {TAGGABLE_RESOURCE}")
        kind = resource.split(":")[5]
        if kind != "function":
            raise InvalidParameterValue(f"Tags on {kind} resources are not emulated; tag the function instead.")
        if resource.count(":") > 6:
            # Lambda's wording (users' error output).
            raise InvalidParameterValue("Tags on function aliases and versions are not supported. Please specify a "
                                        "function ARN.")
        function, _ = self._registry().get(resource)
        return function

    def tag(self, resource: str, tags: Any) -> None:
        function = self._tagged(resource)
        function.tags = tag_rules.merged(function.tags, tag_rules.check_tags(tags))

    def untag(self, resource: str, keys: Iterable[str]) -> None:
        function = self._tagged(resource)
        keys = list(keys)
        if not keys:
            raise ValidationError("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: "
                                  "Member must not be null")
        function.tags = tag_rules.without(function.tags, keys)

    def list_tags(self, resource: str) -> dict[str, str]:
        return dict(self._tagged(resource).tags)
