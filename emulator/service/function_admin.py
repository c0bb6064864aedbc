"""Function settings that change at run time: reserved concurrency, versions, aliases,
provisioned concurrency and async (event invoke) configuration.

Domain logic only; emulator/api/lambda_config_api.py maps it to HTTP. AWS rules:
reserved https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html,
provisioned https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html,
event invoke config https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html,
shapes from the Lambda API model
https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emulator.service.async_queue import EventInvokeConfig
from emulator.policy.async_retry import validate_event_invoke_config
from emulator.errors import AwsError, InvalidParameterValue, ResourceConflict, ResourceNotFound, UserError
from emulator.functions.code_tree import code_fingerprint, copy_code
from emulator.functions.registry import LATEST, FunctionVersion, LambdaFunction
from emulator.execution.invoker import PROVISIONED_INIT_TIMEOUT_S, Invoker
from emulator.service.lambda_service import LambdaService

log = logging.getLogger("emulator.admin")

# Alias names, as the Lambda API model's `Alias` shape allows.
_ALIAS_RE = re.compile(r"^(?!^[0-9]+$)([a-zA-Z0-9-_]+)$")
MAX_ALIAS_LENGTH = 128


class ProvisionedConcurrencyConfigNotFound(UserError):
    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404


@dataclass
class ProvisionedConfig:
    """One PutProvisionedConcurrencyConfig, and how far its environments got."""

    function: str
    qualifier: str
    requested: int
    allocated: int = 0
    status: str = "IN_PROGRESS"
    status_reason: str | None = None
    last_modified: float = field(default_factory=time.time)
    task: asyncio.Task | None = None


class FunctionAdmin:
    def __init__(self, service: LambdaService, invoker: Invoker, versions_dir: Path) -> None:
        self.service = service
        self.invoker = invoker
        self.versions_dir = versions_dir
        self.provisioned: dict[tuple[str, str], ProvisionedConfig] = {}
        # One PublishVersion at a time per function: the next number and its snapshot
        # folder are chosen across awaits (the copy runs off the event loop).
        self._publishing: dict[str, asyncio.Lock] = {}

    @property
    def registry(self):  # the service's registry is replaced on reset; always follow it
        return self.service.registry

    def function(self, raw_name: str) -> LambdaFunction:
        function, _ = self.registry.get(raw_name)
        return function

    # -- reserved concurrency ---------------------------------------------------------
    def put_concurrency(self, raw_name: str, value: Any) -> int:
        function = self.function(raw_name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterValue("ReservedConcurrentExecutions must be a non-negative integer.")
        self.service.ledger.set_reserved(function.name, value)
        return value

    def get_concurrency(self, raw_name: str) -> int | None:
        return self.service.ledger.reserved(self.function(raw_name).name)

    def delete_concurrency(self, raw_name: str) -> None:
        self.service.ledger.set_reserved(self.function(raw_name).name, None)

    # -- versions ------------------------------------------------------------------------
    async def publish_version(self, raw_name: str, description: str | None = None, code_sha256: str | None = None) -> FunctionVersion:
        function = self.function(raw_name)
        lock = self._publishing.setdefault(function.name, asyncio.Lock())
        async with lock:
            return await self._publish(function, description, code_sha256)

    async def _publish(self, function: LambdaFunction, description: str | None, code_sha256: str | None) -> FunctionVersion:
        # Walking and copying a code folder is blocking I/O (and a large folder takes a
        # while): both run in a worker thread, never on the event loop.
        fingerprint = await asyncio.to_thread(code_fingerprint, function.latest.spec.code_dir)
        self.registry.apply_code_fingerprint(function.name, fingerprint)
        latest = function.latest
        if code_sha256 and code_sha256 != latest.code_sha256:
            raise InvalidParameterValue(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST ({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
            )
        if function.versions:
            newest = function.versions[max(function.versions, key=int)]
            if newest.code_sha256 == latest.code_sha256 and _same_config(newest, latest):
                return newest  # AWS returns the existing version when nothing changed
        number = str(max((int(v) for v in function.versions), default=0) + 1)
        snapshot = self.versions_dir / function.name / number
        # Versions are immutable (PublishVersion): later edits of $LATEST's folder must not reach them.
        copied = await asyncio.to_thread(copy_code, latest.spec.code_dir, snapshot)
        self.registry.warn_skipped(function.name, copied.skipped)
        spec = replace(latest.spec, code_dir=snapshot, description=description if description is not None else latest.spec.description)
        # An uploaded package's size is the .zip's, as Lambda reports it (the copy is its contents).
        size = latest.code_size if latest.package is not None else copied.size
        version = FunctionVersion(spec, number, latest.region, latest.account_id, time.time(), latest.code_sha256 or copied.sha256, size)
        function.versions[number] = version
        return version

    # -- aliases -------------------------------------------------------------------------
    def create_alias(self, raw_name: str, alias: str, version: str, description: str = "") -> dict[str, Any]:
        function = self.function(raw_name)
        _check_alias_name(alias)
        if alias in function.aliases:
            raise ResourceConflict(f"Alias already exists: {function.latest.function_arn}:{alias}")
        self._check_version(function, version)
        function.aliases[alias] = version
        function.alias_descriptions[alias] = description
        return self.alias_configuration(function, alias)

    def get_alias(self, raw_name: str, alias: str) -> dict[str, Any]:
        function = self.function(raw_name)
        if alias not in function.aliases:
            raise ResourceNotFound(f"Alias not found: {function.latest.function_arn}:{alias}")
        return self.alias_configuration(function, alias)

    def update_alias(self, raw_name: str, alias: str, version: str | None, description: str | None) -> dict[str, Any]:
        function = self.function(raw_name)
        if alias not in function.aliases:
            raise ResourceNotFound(f"Alias not found: {function.latest.function_arn}:{alias}")
        if version is not None and version != function.aliases[alias]:
            self._check_version(function, version)
            function.aliases[alias] = version
            config = self.provisioned.get((function.name, alias))
            if config is not None:  # PC follows the alias to its new version
                self._start_provisioning(config)
        if description is not None:
            function.alias_descriptions[alias] = description
        return self.alias_configuration(function, alias)

    def delete_alias(self, raw_name: str, alias: str) -> None:
        function = self.function(raw_name)
        function.aliases.pop(alias, None)
        function.alias_descriptions.pop(alias, None)
        if (function.name, alias) in self.provisioned:
            self.delete_provisioned(function.name, alias)

    def alias_configuration(self, function: LambdaFunction, alias: str) -> dict[str, Any]:
        return {
            "AliasArn": f"{function.latest.function_arn}:{alias}",
            "Name": alias,
            "FunctionVersion": function.aliases[alias],
            "Description": function.alias_descriptions.get(alias, ""),
            "RevisionId": f"{abs(hash((function.name, alias, function.aliases[alias]))) % 10**12:012d}-0000-4000-8000-000000000000",
        }

    @staticmethod
    def _check_version(function: LambdaFunction, version: str) -> None:
        if version != LATEST and version not in function.versions:
            raise ResourceNotFound(f"Function not found: {function.latest.function_arn}:{version}")

    # -- provisioned concurrency ----------------------------------------------------------
    def put_provisioned(self, raw_name: str, qualifier: str | None, value: Any) -> ProvisionedConfig:
        function = self.function(raw_name)
        if not qualifier:
            raise InvalidParameterValue("Qualifier is required for provisioned concurrency: use a published version or an alias.")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterValue("ProvisionedConcurrentExecutions must be an integer of at least 1.")
        if qualifier != LATEST:
            function.version_for(qualifier)  # 404 for an unknown version or alias
        if qualifier in function.aliases:
            target = function.aliases[qualifier]
            for (name, other), config in self.provisioned.items():
                if name == function.name and other != qualifier and function.aliases.get(other) == target:
                    raise ResourceConflict(
                        f"Alias {other} is already using provisioned concurrency on version {target}; "
                        "two aliases cannot allocate provisioned concurrency to the same version."
                    )
        self.service.ledger.set_provisioned(function.name, qualifier, value)
        config = ProvisionedConfig(function.name, qualifier, value)
        old = self.provisioned.get((function.name, qualifier))
        if old is not None and old.task is not None:
            old.task.cancel()
        self.provisioned[(function.name, qualifier)] = config
        self._start_provisioning(config)
        return config

    def _start_provisioning(self, config: ProvisionedConfig) -> None:
        if config.task is not None:
            config.task.cancel()
        config.status, config.allocated, config.last_modified = "IN_PROGRESS", 0, time.time()
        config.task = asyncio.ensure_future(self._provision(config))

    async def _provision(self, config: ProvisionedConfig) -> None:
        """Initialise `requested` environments ahead of traffic (init type provisioned-concurrency)."""
        version = self.registry.resolve(config.function, config.qualifier)
        pool = self.invoker.pool_for(version)
        for env in list(pool.provisioned_idle):  # a previous allocation, e.g. before an alias moved
            pool.discard(env)
        pool.provisioned_idle.clear()

        async def one() -> bool:
            env = await pool.create(provisioned=True)
            init = await env.wait_ready(max(PROVISIONED_INIT_TIMEOUT_S, version.spec.timeout_s))
            if init is not None and init.ok:
                pool.give_back(env, time.monotonic())
                return True
            pool.discard(env)
            return False

        try:
            results = await asyncio.gather(*(one() for _ in range(config.requested)), return_exceptions=True)
        except asyncio.CancelledError:
            raise
        config.allocated = sum(1 for result in results if result is True)
        config.last_modified = time.time()
        if config.allocated == config.requested:
            config.status = "READY"
        else:
            config.status = "FAILED"
            config.status_reason = "FUNCTION_ERROR_INIT_FAILURE: the function's Init failed in some provisioned environments."
            log.warning("%s:%s provisioned %d of %d environments", config.function, config.qualifier, config.allocated, config.requested)

    def get_provisioned(self, raw_name: str, qualifier: str | None) -> ProvisionedConfig:
        function = self.function(raw_name)
        config = self.provisioned.get((function.name, qualifier or ""))
        if config is None:
            raise ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
        return config

    def delete_provisioned(self, raw_name: str, qualifier: str | None) -> None:
        function = self.function(raw_name)
        config = self.provisioned.pop((function.name, qualifier or ""), None)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
        if config.task is not None:
            config.task.cancel()
        self.service.ledger.set_provisioned(function.name, config.qualifier, None)
        try:
            version = function.version_for(config.qualifier)
        except AwsError:
            return
        pool = self.invoker.pools.get(version.key)
        if pool is not None:
            for env in list(pool.provisioned_idle):
                pool.discard(env)
            pool.provisioned_idle.clear()

    def list_provisioned(self, raw_name: str) -> list[ProvisionedConfig]:
        name = self.function(raw_name).name
        return [config for (fn, _), config in sorted(self.provisioned.items()) if fn == name]

    # -- event invoke config ---------------------------------------------------------------
    def put_event_invoke_config(self, raw_name: str, qualifier: str | None, body: dict[str, Any], merge: bool) -> tuple[str, EventInvokeConfig]:
        function = self.function(raw_name)
        key = (function.name, qualifier or LATEST)
        if qualifier and qualifier != LATEST:
            function.version_for(qualifier)
        current = self.service.event_invoke_configs.get(key)
        if merge and current is None:
            raise ResourceNotFound(f"The function {function.latest.function_arn} doesn't have an EventInvokeConfig")
        base = current if merge and current is not None else EventInvokeConfig()
        retries = body.get("MaximumRetryAttempts", base.maximum_retry_attempts if merge else None)
        age = body.get("MaximumEventAgeInSeconds", base.maximum_event_age_s if merge else None)
        validate_event_invoke_config(retries, age)
        destinations = body.get("DestinationConfig") or {}
        on_success = _destination(destinations, "OnSuccess", base.on_success if merge else None)
        on_failure = _destination(destinations, "OnFailure", base.on_failure if merge else None)
        config = EventInvokeConfig(
            maximum_retry_attempts=EventInvokeConfig.maximum_retry_attempts if retries is None else retries,
            maximum_event_age_s=EventInvokeConfig.maximum_event_age_s if age is None else age,
            on_success=on_success,
            on_failure=on_failure,
        )
        self.service.event_invoke_configs[key] = config
        return self._qualified_arn(function, key[1]), config

    def get_event_invoke_config(self, raw_name: str, qualifier: str | None) -> tuple[str, EventInvokeConfig]:
        function = self.function(raw_name)
        key = (function.name, qualifier or LATEST)
        config = self.service.event_invoke_configs.get(key)
        if config is None:
            raise ResourceNotFound(f"The function {self._qualified_arn(function, key[1])} doesn't have an EventInvokeConfig")
        return self._qualified_arn(function, key[1]), config

    def delete_event_invoke_config(self, raw_name: str, qualifier: str | None) -> None:
        self.get_event_invoke_config(raw_name, qualifier)
        function = self.function(raw_name)
        del self.service.event_invoke_configs[(function.name, qualifier or LATEST)]

    def list_event_invoke_configs(self, raw_name: str) -> list[tuple[str, EventInvokeConfig]]:
        function = self.function(raw_name)
        return [
            (self._qualified_arn(function, qualifier), config)
            for (name, qualifier), config in sorted(self.service.event_invoke_configs.items())
            if name == function.name
        ]

    @staticmethod
    def _qualified_arn(function: LambdaFunction, qualifier: str) -> str:
        return f"{function.latest.function_arn}:{qualifier}"

    # -- a function or version deleted (emulator/service/function_lifecycle.py) ---------------
    def forget_function(self, function: LambdaFunction) -> None:
        """Drop every run-time setting of a deleted function: provisioned concurrency (its
        allocations cancelled), reserved concurrency, event invoke configs."""
        for (name, qualifier) in [key for key in self.provisioned if key[0] == function.name]:
            self._drop_provisioned(name, qualifier)
        if self.service.ledger.reserved(function.name) is not None:
            self.service.ledger.set_reserved(function.name, None)
        for key in [key for key in self.service.event_invoke_configs if key[0] == function.name]:
            del self.service.event_invoke_configs[key]
        self._publishing.pop(function.name, None)

    def forget_version(self, function: LambdaFunction, version: str) -> None:
        if (function.name, version) in self.provisioned:
            self._drop_provisioned(function.name, version)
        self.service.event_invoke_configs.pop((function.name, version), None)

    def _drop_provisioned(self, name: str, qualifier: str) -> None:
        config = self.provisioned.pop((name, qualifier))
        if config.task is not None:
            config.task.cancel()
        self.service.ledger.set_provisioned(name, qualifier, None)

    def close(self) -> None:
        for config in self.provisioned.values():
            if config.task is not None:
                config.task.cancel()
        self.provisioned.clear()


def _destination(config: dict[str, Any], key: str, default: str | None) -> str | None:
    if key not in config:
        return default
    target = (config.get(key) or {}).get("Destination")
    if target is None:
        return None
    if not isinstance(target, str) or not target.startswith("arn:"):
        raise InvalidParameterValue(f"The destination ARN {target} is invalid.")
    service = target.split(":")[2] if target.count(":") >= 5 else ""
    allowed = ("sqs", "sns", "lambda", "events") + (("s3",) if key == "OnFailure" else ())
    if service not in allowed:
        raise InvalidParameterValue(f"The destination ARN {target} is invalid: use an SQS queue, SNS topic, Lambda function or EventBridge bus.")
    return target


def _check_alias_name(alias: str) -> None:
    if not alias or len(alias) > MAX_ALIAS_LENGTH or not _ALIAS_RE.match(alias):
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{alias}' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )


def _same_config(a: FunctionVersion, b: FunctionVersion) -> bool:
    sa, sb = a.spec, b.spec
    fields = ("handler", "runtime", "memory_mb", "timeout_s", "environment", "logging", "dead_letter_arn", "role",
              "layer_arns", "api_echo")
    return all(getattr(sa, name) == getattr(sb, name) for name in fields)
