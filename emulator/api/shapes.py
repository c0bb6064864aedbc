"""Lambda API response shapes (FunctionConfiguration and friends), per the Lambda API model:
https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json
"""

from __future__ import annotations

from typing import Any

from emulator.functions.registry import FunctionVersion, iso_timestamp


def function_configuration(version: FunctionVersion) -> dict[str, Any]:
    spec = version.spec
    config: dict[str, Any] = {
        "FunctionName": spec.name,
        "FunctionArn": version.function_arn if version.version == "$LATEST" else version.qualified_arn,
        "Runtime": spec.runtime,
        "Role": f"arn:aws:iam::{version.account_id}:role/lambda-emulator-role",
        "Handler": spec.handler,
        "CodeSize": version.code_size,
        "Description": spec.description,
        "Timeout": spec.timeout_s,
        "MemorySize": spec.memory_mb,
        "LastModified": iso_timestamp(version.last_modified),
        "CodeSha256": version.code_sha256,
        "Version": version.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": version.code_sha256[:8] + "-0000-4000-8000-" + version.code_sha256[8:20],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{spec.name}"},
    }
    if spec.environment:
        config["Environment"] = {"Variables": dict(spec.environment)}
    if spec.dead_letter_arn:
        config["DeadLetterConfig"] = {"TargetArn": spec.dead_letter_arn}
    if spec.layers:
        config["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.size} for layer in spec.layers]
    if spec.tenant_isolation_mode:
        config["TenancyConfig"] = {"TenantIsolationMode": spec.tenant_isolation_mode}
    return config


def get_function(version: FunctionVersion, reserved: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Configuration": function_configuration(version),
        "Code": {"RepositoryType": "S3", "Location": f"file://{version.spec.code_dir}"},
        "Tags": {},
    }
    if reserved is not None:
        body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return body
