"""CreateFunction / UpdateFunctionConfiguration parameters, checked as Lambda checks them,
into a `FunctionSpec`. Pure: no I/O, no clock.

Two kinds of answers, as Lambda gives them:

* a value outside the API model's shape (a range, an enum, a pattern:
  https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json)
  is `ValidationException` "1 validation error detected: Value '3000' at 'timeout' failed
  to satisfy constraint: Member must have value less than or equal to 900" (users' error
  output shows this wording and code);
* a value the model allows but Lambda's rules refuse (memory above the quota, reserved
  environment variable keys, more than 5 layers, a retired runtime) is
  `InvalidParameterValueException` with Lambda's message where it is known.

Settings Lambda accepts but that change nothing locally (TracingConfig, Architectures,
EphemeralStorage, KMSKeyArn, VpcConfig) are kept and shown back (`FunctionSpec.api_echo`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.errors import InvalidParameterValue, ValidationError
from emulator.template.specs import (
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, MAX_ENVIRONMENT_BYTES, MAX_MEMORY_MB, MAX_TIMEOUT_S, MIN_MEMORY_MB,
    MIN_TIMEOUT_S, FunctionSpec, LoggingSpec,
)

# Shapes of the Lambda API model (above).
ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
HANDLER_PATTERN = r"[^\s]+"
MAX_HANDLER_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 256
FUNCTION_NAME_PATTERN = r"[a-zA-Z0-9-_]+"
MAX_FUNCTION_NAME_LENGTH = 64
ENVIRONMENT_KEY_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
LAYER_ARN_PATTERN = r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"
LOG_GROUP_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
MAX_LOG_GROUP_LENGTH = 512
LOG_FORMATS = ("JSON", "Text")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
# With the JSON format and no level given, Lambda shows (and applies) INFO for both:
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
DEFAULT_JSON_LOG_LEVEL = "INFO"
TRACING_MODES = ("Active", "PassThrough")
ARCHITECTURES = ("x86_64", "arm64")
# /tmp 512-10,240 MB: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
EPHEMERAL_STORAGE_RANGE = (512, 10_240)
# "You can add up to five layers to a function":
# https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html
MAX_LAYERS = 5
# Python runtimes past their "block function create" date:
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html#runtimes-deprecated
RETIRED_PYTHON = ("python2.7", "python3.6", "python3.7", "python3.8")
NEWEST_PYTHON = "python3.13"
_PYTHON = re.compile(r"python3\.\d+")
# Environment variables Lambda sets and does not let a function set ("reserved"):
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
RESERVED_ENVIRONMENT_KEYS = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
# Every runtime the API model's `Runtime` enum names (for its validation message).
MODEL_RUNTIMES = (
    "nodejs", "nodejs4.3", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x", "nodejs14.x", "nodejs16.x",
    "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x", "java8", "java8.al2", "java11", "java17", "java21",
    "java25", "python2.7", "python3.6", "python3.7", "python3.8", "python3.9", "python3.10", "python3.11",
    "python3.12", "python3.13", "python3.14", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1",
    "dotnet6", "dotnet8", "dotnet10", "nodejs4.3-edge", "go1.x", "ruby2.5", "ruby2.7", "ruby3.2", "ruby3.3",
    "ruby3.4", "ruby4.0", "provided", "provided.al2", "provided.al2023", "nodejs26.x", "python3.15",
    "java8.al2023", "java11.al2023", "java17.al2023", "custom",
)
# Accepted, kept and shown back; nothing local depends on them.
ECHOED = ("TracingConfig", "Architectures", "EphemeralStorage", "KMSKeyArn", "VpcConfig")
DEFAULT_ROLE_NAME = "lambda-emulator-role"


class _Problems:
    """Model violations, reported together as Lambda does ("2 validation errors detected: …")."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, value: Any, where: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        self.items.append(f"Value {shown} at '{where}' failed to satisfy constraint: {constraint}")

    def raise_any(self) -> None:
        if self.items:
            count = len(self.items)
            raise ValidationError(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(self.items))


def _integer(problems: _Problems, value: Any, where: str, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(value, where, "Member must be an integer")
    elif value < low:
        problems.add(value, where, f"Member must have value greater than or equal to {low}")
    elif value > high:
        problems.add(value, where, f"Member must have value less than or equal to {high}")


def _string(problems: _Problems, value: Any, where: str, *, pattern: str | None = None, max_length: int | None = None,
            enum: tuple[str, ...] | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.add(value, where, "Member must be a string")
        return
    if max_length is not None and len(value) > max_length:
        problems.add(value, where, f"Member must have length less than or equal to {max_length}")
    if pattern is not None and not re.fullmatch(pattern, value):
        problems.add(value, where, f"Member must satisfy regular expression pattern: {pattern}")
    if enum is not None and value not in enum:
        problems.add(value, where, f"Member must satisfy enum value set: [{', '.join(enum)}]")


def _check_model(request: Mapping[str, Any], *, creating: bool) -> None:
    problems = _Problems()
    if creating:
        if request.get("FunctionName") is None:
            problems.add(None, "functionName", "Member must not be null")
        _string(problems, request.get("FunctionName"), "functionName", pattern=FUNCTION_NAME_PATTERN,
                max_length=MAX_FUNCTION_NAME_LENGTH)
        if request.get("Role") is None:
            problems.add(None, "role", "Member must not be null")
    _string(problems, request.get("Role"), "role", pattern=ROLE_PATTERN, max_length=10_000)
    _string(problems, request.get("Handler"), "handler", pattern=HANDLER_PATTERN, max_length=MAX_HANDLER_LENGTH)
    _string(problems, request.get("Runtime"), "runtime", enum=MODEL_RUNTIMES)
    _string(problems, request.get("Description"), "description", max_length=MAX_DESCRIPTION_LENGTH)
    _integer(problems, request.get("Timeout"), "timeout", MIN_TIMEOUT_S, MAX_TIMEOUT_S)
    # Above the model's minimum only: the upper bound is the account's quota, answered below.
    _integer(problems, request.get("MemorySize"), "memorySize", MIN_MEMORY_MB, 1 << 31)
    logging = request.get("LoggingConfig")
    if isinstance(logging, Mapping):
        _string(problems, logging.get("LogFormat"), "loggingConfig.logFormat", enum=LOG_FORMATS)
        _string(problems, logging.get("ApplicationLogLevel"), "loggingConfig.applicationLogLevel",
                enum=APPLICATION_LOG_LEVELS)
        _string(problems, logging.get("SystemLogLevel"), "loggingConfig.systemLogLevel", enum=SYSTEM_LOG_LEVELS)
        _string(problems, logging.get("LogGroup"), "loggingConfig.logGroup", pattern=LOG_GROUP_PATTERN,
                max_length=MAX_LOG_GROUP_LENGTH)
    tracing = request.get("TracingConfig")
    if isinstance(tracing, Mapping):
        _string(problems, tracing.get("Mode"), "tracingConfig.mode", enum=TRACING_MODES)
    architectures = request.get("Architectures")
    if architectures is not None:
        if not isinstance(architectures, list) or len(architectures) != 1:
            problems.add(architectures, "architectures", "Member must have length less than or equal to 1")
        else:
            _string(problems, architectures[0], "architectures.1.member", enum=ARCHITECTURES)
    storage = request.get("EphemeralStorage")
    if isinstance(storage, Mapping):
        _integer(problems, storage.get("Size"), "ephemeralStorage.size", *EPHEMERAL_STORAGE_RANGE)
    variables = (request.get("Environment") or {}).get("Variables") if isinstance(request.get("Environment"), Mapping) else None
    if isinstance(variables, Mapping) and any(not re.fullmatch(ENVIRONMENT_KEY_PATTERN, str(k)) for k in variables):
        problems.items.append("Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy "
                              f"constraint: [Member must satisfy regular expression pattern: {ENVIRONMENT_KEY_PATTERN}]")
    problems.raise_any()


def _runtime(value: Any, current: str | None) -> str:
    if value is None:
        if current is None:
            raise InvalidParameterValue("The Runtime parameter is required for a function with a .zip deployment package.")
        return current
    if value in RETIRED_PYTHON:
        # Lambda's wording for a runtime past its block-create date (users' error output).
        raise InvalidParameterValue(f"The runtime parameter of {value} is no longer supported for creating or updating "
                                    f"AWS Lambda functions. We recommend you use the new runtime ({NEWEST_PYTHON}) "
                                    "while creating or updating functions.")
    if not _PYTHON.fullmatch(value):
        raise InvalidParameterValue(f"Runtime {value} is not emulated: the emulator runs Python functions only "
                                    "(python3.N).")
    return value


def _memory(value: Any, current: int) -> int:
    if value is None:
        return current
    if value > MAX_MEMORY_MB:
        # Lambda's wording for memory above the account's quota (users' error output).
        raise InvalidParameterValue(f"'MemorySize' value failed to satisfy constraint: Member must have value less "
                                    f"than or equal to {MAX_MEMORY_MB}")
    return value


def _environment(value: Any, current: dict[str, str]) -> dict[str, str]:
    if value is None:
        return current
    if not isinstance(value, Mapping):
        raise InvalidParameterValue("Environment must be an object with Variables.")
    variables = value.get("Variables") or {}
    if not isinstance(variables, Mapping) or any(not isinstance(v, str) for v in variables.values()):
        raise InvalidParameterValue("Environment.Variables must map names to string values.")
    reserved = sorted(k for k in variables if k in RESERVED_ENVIRONMENT_KEYS)
    if reserved:
        # Lambda's message (users' error output), the keys as it lists them.
        raise InvalidParameterValue("Lambda was unable to configure your environment variables because the environment "
                                    "variables you have provided contains reserved keys that are currently not supported "
                                    f"for modification. Reserved keys used in this request: {','.join(reserved)}")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameterValue("Lambda was unable to configure your environment variables because the environment "
                                    f"variables you have provided exceeded the {MAX_ENVIRONMENT_BYTES // 1024}KB limit. "
                                    f"String measured: {size} bytes")
    return dict(variables)


def _logging(value: Any, current: LoggingSpec) -> LoggingSpec:
    if value is None:
        return current
    if not isinstance(value, Mapping):
        raise InvalidParameterValue("LoggingConfig must be an object.")
    log_format = value.get("LogFormat", current.log_format)
    application = value.get("ApplicationLogLevel", current.application_log_level)
    system = value.get("SystemLogLevel", current.system_log_level)
    if log_format != "JSON" and (value.get("ApplicationLogLevel") or value.get("SystemLogLevel")):
        # Levels filter JSON logs only (the log-level page cited above); the wording is ours.
        raise InvalidParameterValue("ApplicationLogLevel and SystemLogLevel can be set only with LogFormat JSON.")
    if log_format == "JSON":
        application = application or DEFAULT_JSON_LOG_LEVEL
        system = system or DEFAULT_JSON_LOG_LEVEL
    else:
        application = system = None
    group = value.get("LogGroup", current.log_group)
    return LoggingSpec(log_format, application, system, group)


def _layers(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(not isinstance(arn, str) for arn in value):
        raise InvalidParameterValue("Layers must be a list of layer version ARNs.")
    if len(value) > MAX_LAYERS:
        raise InvalidParameterValue(f"Cannot reference more than {MAX_LAYERS} layers.")
    problems = _Problems()
    for arn in value:
        _string(problems, arn, "layers.member", pattern=LAYER_ARN_PATTERN, max_length=140)
    problems.raise_any()
    return tuple(value)


def _dead_letter(value: Any, current: str | None) -> str | None:
    if value is None:
        return current
    target = value.get("TargetArn") if isinstance(value, Mapping) else None
    if not target:
        return None  # an empty DeadLetterConfig removes it
    service = target.split(":")[2] if isinstance(target, str) and target.count(":") >= 5 else ""
    if service not in ("sqs", "sns"):
        raise InvalidParameterValue(f"The provided target ARN {target} is invalid: use an SQS queue or an SNS topic.")
    return target


def _echo(request: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    echo = dict(current)
    for key in ECHOED:
        if request.get(key) is not None:
            echo[key] = request[key]
    return echo


def default_role(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{DEFAULT_ROLE_NAME}"


def spec_from_create(request: Mapping[str, Any], code_dir: Path) -> FunctionSpec:
    """A new function's spec from a CreateFunction request (code checked elsewhere)."""
    _check_model(request, creating=True)
    if request.get("PackageType") == "Image":
        raise InvalidParameterValue("Container image functions are not emulated: use a .zip package (PackageType Zip).")
    name = request["FunctionName"]
    handler = request.get("Handler")
    if not handler:
        raise InvalidParameterValue("The Handler parameter is required for a function with a .zip deployment package.")
    spec = FunctionSpec(
        name=name, code_dir=code_dir, handler=handler, runtime=_runtime(request.get("Runtime"), None),
        memory_mb=_memory(request.get("MemorySize"), DEFAULT_MEMORY_MB),
        timeout_s=request.get("Timeout") or DEFAULT_TIMEOUT_S,
        environment=_environment(request.get("Environment"), {}),
        description=request.get("Description") or "", logical_id=name,
        dead_letter_arn=_dead_letter(request.get("DeadLetterConfig"), None),
        logging=_logging(request.get("LoggingConfig"), LoggingSpec()),
        role=request["Role"], layer_arns=_layers(request.get("Layers")) or (),
        api_echo=_echo(request, {}),
    )
    return spec


def spec_from_update(spec: FunctionSpec, request: Mapping[str, Any]) -> FunctionSpec:
    """$LATEST's spec after an UpdateFunctionConfiguration."""
    _check_model(request, creating=False)
    layers = _layers(request.get("Layers"))
    return replace(
        spec,
        handler=request.get("Handler") or spec.handler,
        runtime=_runtime(request.get("Runtime"), spec.runtime),
        memory_mb=_memory(request.get("MemorySize"), spec.memory_mb),
        timeout_s=request.get("Timeout") or spec.timeout_s,
        environment=_environment(request.get("Environment"), spec.environment),
        description=request["Description"] if request.get("Description") is not None else spec.description,
        dead_letter_arn=_dead_letter(request.get("DeadLetterConfig"), spec.dead_letter_arn),
        logging=_logging(request.get("LoggingConfig"), spec.logging),
        role=request.get("Role") or spec.role,
        layer_arns=spec.layer_arns if layers is None else layers,
        api_echo=_echo(request, spec.api_echo),
    )
