"""Lambda API response shapes (FunctionConfiguration and friends), per the Lambda API model:
https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json
"""

from __future__ import annotations

from typing import Any

from emulator.functions.function_settings import default_role
from emulator.functions.function_state import Lifecycle
from emulator.functions.registry import FunctionVersion, iso_timestamp

_ACTIVE = Lifecycle()


def function_configuration(version: FunctionVersion, lifecycle: Lifecycle | None = None) -> dict[str, Any]:
    """`lifecycle`: $LATEST's State and LastUpdateStatus (published versions are Active)."""
    spec = version.spec
    config: dict[str, Any] = {
        "FunctionName": spec.name,
        "FunctionArn": version.function_arn if version.version == "$LATEST" else version.qualified_arn,
        "Runtime": spec.runtime,
        "Role": spec.role or default_role(version.account_id),
        "Handler": spec.handler,
        "CodeSize": version.code_size,
        "Description": spec.description,
        "Timeout": spec.timeout_s,
        "MemorySize": spec.memory_mb,
        "LastModified": iso_timestamp(version.last_modified),
        "CodeSha256": version.code_sha256,
        "Version": version.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": version.current_revision,
        **(lifecycle or _ACTIVE).shape(),
        "PackageType": "Zip",
        "Architectures": [spec.architecture],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": _logging_config(version),
    }
    config.update(spec.api_echo)
    if spec.environment:
        config["Environment"] = {"Variables": dict(spec.environment)}
    if spec.dead_letter_arn:
        config["DeadLetterConfig"] = {"TargetArn": spec.dead_letter_arn}
    if spec.layers:
        config["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.size} for layer in spec.layers]
    elif spec.layer_arns:  # given through the Lambda API: ARNs of layers the emulator does not hold
        config["Layers"] = [{"Arn": arn, "CodeSize": 0} for arn in spec.layer_arns]
    if spec.tenant_isolation_mode:
        config["TenancyConfig"] = {"TenantIsolationMode": spec.tenant_isolation_mode}
    return config


def _logging_config(version: FunctionVersion) -> dict[str, Any]:
    logging = version.spec.logging
    shape: dict[str, Any] = {"LogFormat": logging.log_format, "LogGroup": version.spec.log_group}
    if logging.application_log_level:
        shape["ApplicationLogLevel"] = logging.application_log_level
    if logging.system_log_level:
        shape["SystemLogLevel"] = logging.system_log_level
    return shape


def get_function(version: FunctionVersion, reserved: int | None, *, code_url: str, tags: dict[str, str],
                 lifecycle: Lifecycle | None = None) -> dict[str, Any]:
    """GetFunction's answer; Code.Location is a URL on the emulator that serves the
    function's .zip (emulator/api/function_api.py)."""
    body: dict[str, Any] = {
        "Configuration": function_configuration(version, lifecycle),
        "Code": {"RepositoryType": "S3", "Location": code_url},
        "Tags": dict(tags),
    }
    if reserved is not None:
        body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return body
