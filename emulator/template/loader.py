"""Load an AWS SAM / CloudFormation template (YAML or JSON) into an `AppSpec`.

`emulator.template.intrinsics` plays the CloudFormation stack (intrinsics, names, ARNs, Globals);
this module reads what each function and resource declares and checks what Lambda would
reject at deploy time, so a mistake fails at load time with the file, the resource and the
property in the message, and says what to do.

Properties are resolved on demand: one that the emulator ignores (Role, Policies, …) is
never evaluated, so an intrinsic the emulator cannot evaluate there does not break loading.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import yaml

from emulator.template.gateway import GATEWAY_TYPES, prepare_gateway, read_gateway
from emulator.template.intrinsics import (
    LAMBDA_FUNCTION, NAME_PROPERTY, SAM_FUNCTION, StackScope, StackSettings,
    TemplateError, to_text,
)
from emulator.template.layers import function_layers, read_layers
from emulator.template.resource_values import LAYER_TYPES
from emulator.template.specs import (
    ARCHITECTURES, DEFAULT_ARCHITECTURE, DEFAULT_MEMORY_MB, DEFAULT_RUNTIME, DEFAULT_TIMEOUT_S, MAX_ENVIRONMENT_BYTES, MAX_MEMORY_MB,
    MAX_TIMEOUT_S, MIN_MEMORY_MB, MIN_TIMEOUT_S, AppSpec, EventInvokeSpec, FunctionSpec, ImageSpec, LayerSpec,
    LoggingSpec, ResourceSpec,
)

__all__ = ["TemplateError", "load_template", "parse_template"]

EVENT_INVOKE_CONFIG = "AWS::Lambda::EventInvokeConfig"
# Where inline code (Code.ZipFile / InlineCode) is written. CloudFormation puts it in a file
# named `index`, so the handler is `index.<function>`:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-function-code.html
INLINE_CODE_DIR = Path(".emulator") / "inline"
INLINE_MODULE = "index.py"
# `sam local` uses the template's folder when a function has no CodeUri.
DEFAULT_CODE_URI = "."
# A bare function name is at most 64 characters of [a-zA-Z0-9-_]:
# https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
MAX_FUNCTION_NAME_LENGTH = 64
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]+")
# The Lambda API model's shapes `Alias`, `EnvironmentVariableName` and `Handler` (at most
# 128, no whitespace): https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json
# Variable names: "Keys start with a letter and are at least two characters", letters,
# digits and _ only (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
_ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
_ENVIRONMENT_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
_HANDLER = re.compile(r"[^\s]{1,128}")
# Lambda's runtime identifiers (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html):
# Python forks from our runtime; the others run through the Runtime API (--execution).
_KNOWN_RUNTIME = re.compile(r"python3\.\d+|nodejs\d+\.x|provided(\.al2|\.al2023)?|java\d+(\.al2)?|dotnet\d+|ruby\d+\.\d+")
# Asynchronous invocation settings:
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html
MIN_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS = 0, 2
MIN_EVENT_AGE_S, MAX_EVENT_AGE_S = 60, 21_600
DESTINATION_TYPES = ("SQS", "SNS", "Lambda", "EventBridge", "S3")
# S3 is an on-failure destination only:
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
ON_FAILURE_ONLY_SERVICES = {"s3"}
DEAD_LETTER_TYPES = ("SQS", "SNS")  # the DLQ is an SQS queue or an SNS topic (same page)

# Properties read by the emulator, per function type; anything else not in IGNORED warns.
_USED = {
    SAM_FUNCTION: {"CodeUri", "InlineCode", "Handler", "Runtime", "MemorySize", "Timeout",
                   "Environment", "Description", "FunctionName", "ReservedConcurrentExecutions",
                   "AutoPublishAlias", "ProvisionedConcurrencyConfig", "EventInvokeConfig",
                   "DeadLetterQueue", "Events", "PackageType", "ImageUri", "ImageConfig", "Layers", "TenancyConfig",
                   "Tags", "LoggingConfig", "Role", "Architectures"},
    LAMBDA_FUNCTION: {"Code", "Handler", "Runtime", "MemorySize", "Timeout", "Environment",
                      "Description", "FunctionName", "ReservedConcurrentExecutions",
                      "DeadLetterConfig", "PackageType", "ImageConfig", "Layers", "TenancyConfig",
                      "Tags", "LoggingConfig", "Role", "Architectures"},
    EVENT_INVOKE_CONFIG: {"FunctionName", "Qualifier", "MaximumRetryAttempts",
                          "MaximumEventAgeInSeconds", "DestinationConfig"},
}
# Accepted and never evaluated: they change nothing in a local emulation.
IGNORED_FUNCTION_PROPERTIES = frozenset({
    "Policies", "Tracing", "TracingConfig", "VpcConfig",
    "KmsKeyArn", "PermissionsBoundary", "DeploymentPreference", "AssumeRolePolicyDocument",
    "EphemeralStorage", "FileSystemConfigs", "CodeSigningConfigArn", "ImageConfig", "SnapStart",
    "RuntimeManagementConfig", "FunctionUrlConfig", "AutoPublishCodeSha256",
    "AutoPublishAliasAllProperties", "VersionDescription", "RolePath", "PropagateTags",
    "RecursiveLoop", "SourceKMSKeyArn", "VersionDeletionPolicy", "Metadata",
})
# Accepted, but what they change on Lambda does not happen here: each warns once, saying so.
UNEMULATED_FUNCTION_PROPERTIES = {
    # AWS_LAMBDA_MAX_CONCURRENCY is set only for these functions:
    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-managed-instances-python-runtime.html
    "CapacityProviderConfig": "Lambda Managed Instances are not emulated: each environment runs one request "
                              "at a time and AWS_LAMBDA_MAX_CONCURRENCY is not set",
    "FunctionScalingConfig": "Lambda Managed Instances scaling is not emulated",
    "FileSystemConfigs": "EFS file systems are not mounted: their LocalMountPath does not exist in environments",
    "SnapStart": "SnapStart is not emulated: every cold start runs Init",
    "DurableConfig": "durable functions are not emulated: the handler runs as an ordinary function",
}
# Resource types the emulator creates or wires up: their properties must resolve.
EMULATED_TYPES = frozenset({
    "AWS::SQS::Queue", "AWS::Kinesis::Stream", "AWS::SNS::Topic", "AWS::SNS::Subscription",
    "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Permission", "AWS::Logs::LogGroup", "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
})
# Types with no local behaviour that are in almost every template: kept without a warning.
QUIET_TYPES = frozenset({
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::Lambda::Version", "AWS::Lambda::Alias",
})

_log = logging.getLogger("emulator.template.loader")


# --- YAML with CloudFormation's short tags --------------------------------------------------

# Long names of every short tag CloudFormation's YAML accepts.
_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{name: f"Fn::{name}" for name in (
        "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
        "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr", "Length", "ToJsonString",
    )},
}


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that understands `!Ref`, `!GetAtt`, … and keeps CloudFormation's scalars.

    YAML 1.1 timestamps are turned off: `AWSTemplateFormatVersion: 2010-09-09` must stay
    the string CloudFormation sees, not a `datetime.date`.
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys; CloudFormation rejects the template, and a
        # silently dropped property is far harder to debug than an error with a line number.
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_tag(long_name: str):
    def construct(loader: TemplateLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                # `!GetAtt Res.Attr`: the attribute itself may contain dots (Endpoint.Address).
                logical_id, _, attribute = str(value).partition(".")
                value = [logical_id, attribute]
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    TemplateLoader.add_constructor(f"!{_short}", _construct_tag(_long))


# --- loading ---------------------------------------------------------------------------


def load_template(path: Path, *, region: str = "us-east-1", account_id: str = "123456789012",
                  parameters: Mapping[str, str] | None = None,
                  endpoint_url: str = "http://127.0.0.1:4566",
                  warn: Callable[[str], None] | None = None,
                  imports: Mapping[str, str] | None = None) -> AppSpec:
    """Read a SAM / CloudFormation template file. Relative code paths are taken from its folder.

    `parameters` are the stack's parameter values (`--parameter-overrides`); `imports` the
    values of the exports `Fn::ImportValue` reads (`--import-values`)."""
    path = Path(path)
    return parse_template(_read_document(path), base_dir=path.parent, source=str(path),
                          region=region, account_id=account_id, parameters=parameters,
                          endpoint_url=endpoint_url, warn=warn, imports=imports)


def _read_document(path: Path) -> Any:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TemplateError(source, f"cannot read the template ({err.strerror}); check the path") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        # YAML is (nearly) a superset of JSON, so only a `.json` file is JSON for certain.
        if path.suffix == ".json":
            raise TemplateError(source, f"JSON is malformed: {err.msg}; fix the syntax",
                                line=err.lineno) from None
    try:
        return yaml.load(text, Loader=TemplateLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise TemplateError(source, f"YAML is malformed: {problem}; fix the syntax",
                            line=mark.line + 1 if mark else None) from None


def parse_template(doc: Mapping[str, Any], *, base_dir: Path, source: str = "<in-code>",
                   region: str = "us-east-1", account_id: str = "123456789012",
                   parameters: Mapping[str, str] | None = None,
                   endpoint_url: str = "http://127.0.0.1:4566",
                   warn: Callable[[str], None] | None = None,
                   imports: Mapping[str, str] | None = None) -> AppSpec:
    """Turn an already-parsed template (`{"Resources": …}`, intrinsics in long form) into an AppSpec."""
    # Absolute from here on: environments run with their own working directory, so a code
    # folder relative to where `emulator up` started would not be found by them.
    settings = StackSettings(source, Path(base_dir).resolve(), region, account_id, endpoint_url.rstrip("/"),
                           dict(parameters or {}), warn or _log.warning, imports=dict(imports or {}))
    stack = StackScope(doc, settings)
    prepare_gateway(stack, doc)  # SAM's transform for APIs, before anything refers to them
    functions: dict[str, FunctionSpec] = {}
    resources: dict[str, ResourceSpec] = {}
    invoke_configs: list[str] = []
    layers = read_layers(stack)
    for logical_id, rtype in stack.types.items():
        if not stack.included(logical_id) or rtype in LAYER_TYPES:
            continue
        if rtype in (SAM_FUNCTION, LAMBDA_FUNCTION):
            spec = _read_function(_Props(stack, logical_id), layers)
            if spec.name in functions:
                raise TemplateError(source, f"function name {spec.name!r} is also used by resource "
                                    f"{functions[spec.name].logical_id!r}; names must be unique, "
                                    "so change FunctionName", logical_id=logical_id, prop="FunctionName")
            functions[spec.name] = spec
        elif rtype == EVENT_INVOKE_CONFIG:
            invoke_configs.append(logical_id)
        elif rtype in GATEWAY_TYPES:
            continue  # read_gateway, below
        else:
            resources[logical_id] = _read_resource(stack, logical_id, rtype)
    for logical_id in invoke_configs:
        _attach_event_invoke_config(_Props(stack, logical_id), functions)
    gateway = read_gateway(stack, functions, _read_document)
    return AppSpec(functions=functions, resources=resources, source=source, gateway=gateway, layers=layers)


# --- functions --------------------------------------------------------------------------


class _Props:
    """One resource's properties, resolved one at a time, with errors that name the property."""

    def __init__(self, stack: StackScope, logical_id: str) -> None:
        self.stack, self.logical_id, self.type = stack, logical_id, stack.types[logical_id]
        used = _USED[self.type]
        for prop, value in stack.raw[logical_id]["Properties"].items():
            if prop in UNEMULATED_FUNCTION_PROPERTIES:
                if value not in ({"ApplyOn": "None"}, None):  # SnapStart off says nothing
                    stack.settings.warn_once((self.type, prop), f"{self.type} property {prop!r} (first seen on "
                                             f"{logical_id!r}): {UNEMULATED_FUNCTION_PROPERTIES[prop]}")
            elif prop not in used and prop not in IGNORED_FUNCTION_PROPERTIES:
                stack.settings.warn_once((self.type, prop), f"{self.type} property {prop!r} (first seen "
                                         f"on {logical_id!r}) is not known to the emulator; ignored")

    def get(self, prop: str) -> Any:
        return self.stack.resolve_property(self.logical_id, prop)

    def fail(self, prop: str, problem: str) -> NoReturn:
        self.stack.fail(problem, self.logical_id, prop)

    def text(self, prop: str, value: Any) -> str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.fail(prop, f"{value!r} is not a string; write a plain value")
        return str(value)

    def integer(self, prop: str, value: Any, low: int, high: int | None = None) -> int | None:
        """An integer within [low, high], or None if absent. Numeric strings count, as in CloudFormation."""
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(prop, f"{value!r} is not an integer; write a whole number")
        if value < low or (high is not None and value > high):
            allowed = f"{low} to {high}" if high is not None else f"at least {low}"
            self.fail(prop, f"{value} is out of range: the allowed range is {allowed}")
        return value

    def mapping(self, prop: str, value: Any, expected: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(prop, f"must be a mapping with {expected}, got {value!r}")
        return value


def _read_function(props: _Props, layers: Mapping[str, LayerSpec]) -> FunctionSpec:
    sam = props.type == SAM_FUNCTION
    stack, logical_id = props.stack, props.logical_id
    code = None if sam else props.get("Code")
    name = stack.name_of(logical_id)
    if not _FUNCTION_NAME.fullmatch(name) or len(name) > MAX_FUNCTION_NAME_LENGTH:
        props.fail("FunctionName", f"{name!r} is not a valid function name: use 1 to "
                   f"{MAX_FUNCTION_NAME_LENGTH} letters, digits, '-' or '_'")
    image = None
    if (props.get("PackageType") == "Image" or (sam and props.get("ImageUri") is not None)
            or (isinstance(code, Mapping) and "ImageUri" in code)):
        image = _image(props, code)
        handler = ""
    else:
        handler = props.get("Handler")
        if not isinstance(handler, str) or not _HANDLER.fullmatch(handler) or "." not in handler.strip("."):
            props.fail("Handler", f"{handler!r} is not a handler: write 'module.function', e.g. app.handler")
    reserved = props.integer("ReservedConcurrentExecutions", props.get("ReservedConcurrentExecutions"), 0)
    alias = provisioned = event_invoke = dead_letter = None
    events: Mapping[str, Any] = {}
    if sam:
        alias, provisioned = _aliases(props, reserved)
        config = props.get("EventInvokeConfig")
        event_invoke = None if config is None else _event_invoke(props, "EventInvokeConfig", config)
        dead_letter = _dead_letter(props, "DeadLetterQueue", ("Type", "TargetArn"))
        events = _events(props)
    else:
        dead_letter = _dead_letter(props, "DeadLetterConfig", ("TargetArn",))
    runtime = "" if image else _runtime(props)
    return FunctionSpec(
        name=name, code_dir=_image_dir(props, name, image) if image else _code_dir(props, name, code),
        handler=handler, runtime=runtime,
        memory_mb=props.integer("MemorySize", props.get("MemorySize"), MIN_MEMORY_MB, MAX_MEMORY_MB)
        or DEFAULT_MEMORY_MB,
        timeout_s=props.integer("Timeout", props.get("Timeout"), MIN_TIMEOUT_S, MAX_TIMEOUT_S)
        or DEFAULT_TIMEOUT_S,
        environment=_environment(props),
        description=props.text("Description", props.get("Description") or ""),
        logical_id=logical_id, reserved_concurrency=reserved, auto_publish_alias=alias,
        provisioned_concurrency=provisioned, event_invoke=event_invoke,
        dead_letter_arn=dead_letter, events=dict(events),
        package_type="Image" if image else "Zip", image=image,
        layers=function_layers(stack, logical_id, props.get("Layers"), runtime, layers),
        tenant_isolation_mode=_tenancy(props),
        logging=_logging_config(props), tags=_tags(props, sam), role=_role(props),
        architecture=_architecture(props),
    )


# SAM tags every function it creates with lambda:createdBy=SAM:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html
SAM_CREATED_BY_TAG = ("lambda:createdBy", "SAM")
# LoggingConfig values (the Lambda API model's LogFormat, ApplicationLogLevel, SystemLogLevel):
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
LOG_FORMATS = ("Text", "JSON")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_JSON_LOG_LEVEL = "INFO"


def _tags(props: _Props, sam: bool) -> dict[str, str]:
    """SAM `Tags: {Key: Value}`; AWS::Lambda::Function `Tags: [{Key, Value}]`."""
    raw = props.get("Tags")
    tags: dict[str, str] = {}
    if sam:
        tags.update(props.mapping("Tags", raw, "Key: Value pairs"))
        tags[SAM_CREATED_BY_TAG[0]] = SAM_CREATED_BY_TAG[1]
    elif raw is not None:
        if not isinstance(raw, list) or any(not isinstance(t, Mapping) or "Key" not in t for t in raw):
            props.fail("Tags", "must be a list of {Key, Value} entries")
        tags.update({str(t["Key"]): t.get("Value", "") for t in raw})
    return {str(k): to_text(v, f"Tags.{k}") for k, v in tags.items()}


def _logging_config(props: _Props) -> LoggingSpec:
    config = props.mapping("LoggingConfig", props.get("LoggingConfig"), "LogFormat, LogGroup, ApplicationLogLevel, SystemLogLevel")
    log_format = config.get("LogFormat", "Text")
    if log_format not in LOG_FORMATS:
        props.fail("LoggingConfig.LogFormat", f"{log_format!r} is not a log format; use Text or JSON")
    levels = {}
    for key, allowed in (("ApplicationLogLevel", APPLICATION_LOG_LEVELS), ("SystemLogLevel", SYSTEM_LOG_LEVELS)):
        value = config.get(key)
        if value is not None and value not in allowed:
            props.fail(f"LoggingConfig.{key}", f"{value!r} is not a level; use one of {', '.join(allowed)}")
        if value is not None and log_format != "JSON":
            props.fail(f"LoggingConfig.{key}", "log levels apply to the JSON log format only; add LogFormat: JSON")
        levels[key] = value or (DEFAULT_JSON_LOG_LEVEL if log_format == "JSON" else None)
    group = config.get("LogGroup")
    if group is not None and (not isinstance(group, str) or not re.fullmatch(r"[\.\-_/#A-Za-z0-9]{1,512}", group)):
        props.fail("LoggingConfig.LogGroup", f"{group!r} is not a log group name")
    return LoggingSpec(log_format, levels["ApplicationLogLevel"], levels["SystemLogLevel"], group)


def _role(props: _Props) -> str:
    """The execution role, when it resolves to an ARN (shown by GetFunction)."""
    try:
        role = props.get("Role")
    except TemplateError:
        return ""  # a role the emulator cannot resolve changes nothing locally
    return role if isinstance(role, str) and role.startswith("arn:") else ""


def _architecture(props: _Props) -> str:
    """`Architectures`: one of x86_64 (the default) or arm64. It decides the price
    (emulator/advice/cost.py), not where the code runs: handlers run on this machine's CPU.
    https://docs.aws.amazon.com/lambda/latest/dg/foundation-arch.html"""
    value = props.get("Architectures")
    if value is None:
        return DEFAULT_ARCHITECTURE
    if not isinstance(value, list) or len(value) != 1 or value[0] not in ARCHITECTURES:
        props.fail("Architectures", f"{value!r} is not a list of one architecture ({' or '.join(ARCHITECTURES)})")
    return str(value[0])


def _image(props: _Props, code: Any) -> ImageSpec:
    """`PackageType: Image`: ImageUri (SAM) or Code.ImageUri, ImageConfig, and the resource's
    Metadata (Dockerfile, DockerContext, DockerTag, DockerBuildArgs) that `sam build` reads:
    https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-cli-using-build.html"""
    uri = props.get("ImageUri") if props.type == SAM_FUNCTION else (code or {}).get("ImageUri")
    config = props.mapping("ImageConfig", props.get("ImageConfig"), "Command, EntryPoint or WorkingDirectory")

    def strings(key: str) -> tuple[str, ...]:
        value = config.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            props.fail(f"ImageConfig.{key}", f"{value!r} is not a list of strings")
        return tuple(value)

    metadata = props.stack.raw[props.logical_id].get("Metadata") or {}
    if not isinstance(metadata, Mapping):
        metadata = {}
    dockerfile = metadata.get("Dockerfile")
    context = None
    if dockerfile is not None:
        context = (props.stack.settings.base_dir / str(metadata.get("DockerContext", "."))).resolve()
        if not (context / str(dockerfile)).is_file():
            props.fail("Metadata.Dockerfile", f"{context / str(dockerfile)} is not a file; point Metadata "
                       "DockerContext and Dockerfile at the image's build files")
    elif not isinstance(uri, str) or not uri:
        props.fail("ImageUri", "an Image function needs ImageUri, or Metadata with Dockerfile and "
                   "DockerContext to build the image locally")
    build_args = metadata.get("DockerBuildArgs") or {}
    return ImageSpec(
        uri=str(uri or ""), command=strings("Command"), entry_point=strings("EntryPoint"),
        working_directory=str(config.get("WorkingDirectory") or ""), dockerfile=str(dockerfile or ""),
        docker_context=context, docker_tag=str(metadata.get("DockerTag") or ""),
        build_args=tuple((str(k), str(v)) for k, v in build_args.items()) if isinstance(build_args, Mapping) else (),
    )


def _image_dir(props: _Props, name: str, image: ImageSpec) -> Path:
    """The folder watched for an image function: its build context (an edit rebuilds the
    image for new environments), else an empty folder of its own."""
    if image.docker_context is not None:
        return image.docker_context
    folder = props.stack.settings.base_dir / INLINE_CODE_DIR.parent / "image" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# What tenant isolation cannot be combined with: SnapStart, provisioned concurrency, function
# URLs, and event sources other than API Gateway
# (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda.TenancyConfig.html).
_NOT_WITH_TENANCY = ("SnapStart", "ProvisionedConcurrencyConfig", "FunctionUrlConfig")
_TENANCY_EVENT_TYPES = frozenset({"Api", "HttpApi"})


def _tenancy(props: _Props) -> str | None:
    """TenancyConfig: {TenantIsolationMode: PER_TENANT}, the one mode there is:
    https://docs.aws.amazon.com/lambda/latest/api/API_TenancyConfig.html"""
    config = props.mapping("TenancyConfig", props.get("TenancyConfig"), "TenantIsolationMode")
    if not config:
        return None
    mode = config.get("TenantIsolationMode")
    if mode != "PER_TENANT":
        props.fail("TenancyConfig.TenantIsolationMode", f"{mode!r} is not a tenant isolation mode; use PER_TENANT")
    for prop in _NOT_WITH_TENANCY:
        if props.get(prop) not in (None, {"ApplyOn": "None"}):
            props.fail(prop, "cannot be used with TenancyConfig: Lambda refuses it for tenant-isolated functions")
    if props.type == SAM_FUNCTION:
        for name, event in (props.get("Events") or {}).items():
            if isinstance(event, Mapping) and event.get("Type") not in _TENANCY_EVENT_TYPES:
                props.fail(f"Events.{name}", f"a {event.get('Type')} event cannot invoke a tenant-isolated function: "
                           "only API Gateway can (it passes the tenant id)")
    return mode


def _runtime(props: _Props) -> str:
    runtime = props.get("Runtime")
    if runtime is None:
        # SAM requires Runtime for Zip functions; be lenient locally, but say so.
        props.stack.settings.warn(f"{props.stack.settings.source}: resource {props.logical_id!r} "
                                  f"has no Runtime; using {DEFAULT_RUNTIME}")
        return DEFAULT_RUNTIME
    if not isinstance(runtime, str) or not _KNOWN_RUNTIME.fullmatch(runtime):
        props.fail("Runtime", f"{runtime!r} is not a Lambda runtime: use one of python3.N, nodejsN.x, "
                   f"provided.al2023, javaN, dotnetN, rubyN.N (e.g. Runtime: {DEFAULT_RUNTIME})")
    return runtime


def _code_dir(props: _Props, name: str, code: Any) -> Path:
    """The folder holding the function's code, or its .zip (unpacked when the emulator starts);
    inline source is written to a folder."""
    if props.type == SAM_FUNCTION:
        inline, prop = props.get("InlineCode"), "CodeUri"
        if inline is not None:
            return _write_inline(props, "InlineCode", name, inline)
        code = props.get("CodeUri")
        code = DEFAULT_CODE_URI if code is None else code
    else:
        prop = "Code"
        if isinstance(code, Mapping) and "ZipFile" in code:
            return _write_inline(props, "Code.ZipFile", name, code["ZipFile"])
        if code is None:
            props.fail(prop, "is required: give the local folder of the function's source")
    if isinstance(code, Mapping) or (isinstance(code, str) and code.startswith("s3://")):
        props.fail(prop, f"{code!r} is code in S3, but only local code is supported; point "
                   f"{prop} at the folder holding the handler's source")
    folder = (props.stack.settings.base_dir / props.text(prop, code)).resolve()
    if folder.is_file() and folder.suffix == ".zip":
        return folder  # a deployment package: unpacked into a folder of the emulator's at start-up
    if not folder.is_dir():
        props.fail(prop, f"{folder} is neither a folder nor a .zip file; point {prop} at the folder holding "
                   "the handler's source or at its .zip (relative to the template)")
    return folder


def _write_inline(props: _Props, prop: str, name: str, source: Any) -> Path:
    if not isinstance(source, str) or not source.strip():
        props.fail(prop, "inline code must be a non-empty string of Python source")
    folder = props.stack.settings.base_dir / INLINE_CODE_DIR / name
    target = folder / INLINE_MODULE
    # Rewrite only on change, so a file watcher does not see a spurious edit on every load.
    if not target.is_file() or target.read_text(encoding="utf-8") != source:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    return folder


def _environment(props: _Props) -> dict[str, str]:
    environment = props.mapping("Environment", props.get("Environment"), "Variables")
    variables = props.mapping("Environment.Variables", environment.get("Variables"), "NAME: value pairs")
    result: dict[str, str] = {}
    for key, value in variables.items():
        prop = f"Environment.Variables.{key}"
        if not isinstance(key, str) or not _ENVIRONMENT_KEY.fullmatch(key):
            props.fail(prop, "a variable name must start with a letter, have at least 2 characters "
                       "and use only letters, digits and '_'")
        if value is None or isinstance(value, (Mapping, list)):
            props.fail(prop, f"{value!r} is not a string; quote the value (use '' for empty)")
        result[key] = to_text(value, prop)
    # "4 KB" for all environment variables: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    size = sum(len(k.encode()) + len(v.encode()) for k, v in result.items())
    if size > MAX_ENVIRONMENT_BYTES:
        props.fail("Environment.Variables", f"the variables take {size} bytes, over the "
                   f"{MAX_ENVIRONMENT_BYTES}-byte limit; move large values to a file")
    return result


def _aliases(props: _Props, reserved: int | None) -> tuple[str | None, int | None]:
    alias = props.get("AutoPublishAlias")
    if alias is not None and not (isinstance(alias, str) and _ALIAS_NAME.fullmatch(alias)):
        props.fail("AutoPublishAlias", f"{alias!r} is not an alias name: use letters, digits, "
                   "'-' or '_', not only digits")
    prop = "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions"
    config = props.mapping("ProvisionedConcurrencyConfig", props.get("ProvisionedConcurrencyConfig"),
                           "ProvisionedConcurrentExecutions")
    provisioned = props.integer(prop, config.get("ProvisionedConcurrentExecutions"), 1)
    # Provisioned concurrency lives on a version or alias, never on $LATEST:
    # https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
    if provisioned is not None and alias is None:
        props.fail("ProvisionedConcurrencyConfig", "needs AutoPublishAlias: provisioned "
                   "concurrency is set on an alias; add AutoPublishAlias: live")
    # PC cannot exceed reserved concurrency (same page).
    if provisioned is not None and reserved is not None and provisioned > reserved:
        props.fail(prop, f"{provisioned} is more than ReservedConcurrentExecutions ({reserved}); "
                   "lower it or raise the reserved concurrency")
    return alias, provisioned


def _event_invoke(props: _Props, base: str, config: Any) -> EventInvokeSpec:
    """SAM `EventInvokeConfig` or the properties of an AWS::Lambda::EventInvokeConfig."""
    prefix = f"{base}." if base else ""
    config = props.mapping(base, config,
                           "MaximumRetryAttempts, MaximumEventAgeInSeconds or DestinationConfig")
    retries = props.integer(f"{prefix}MaximumRetryAttempts", config.get("MaximumRetryAttempts"),
                            MIN_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS)
    age = props.integer(f"{prefix}MaximumEventAgeInSeconds", config.get("MaximumEventAgeInSeconds"),
                        MIN_EVENT_AGE_S, MAX_EVENT_AGE_S)
    destinations = props.mapping(f"{prefix}DestinationConfig", config.get("DestinationConfig"),
                                 "OnSuccess and/or OnFailure")
    arns: dict[str, str | None] = {}
    for outcome in ("OnSuccess", "OnFailure"):
        prop = f"{prefix}DestinationConfig.{outcome}"
        target = props.mapping(prop, destinations.get(outcome), "Destination")
        arns[outcome] = None
        if not target:
            continue
        kind = target.get("Type")
        if (base == "EventInvokeConfig" or kind is not None) and kind not in DESTINATION_TYPES:
            props.fail(f"{prop}.Type", f"{kind!r} is not a destination type; use one of "
                       f"{', '.join(DESTINATION_TYPES)}")
        arn = target.get("Destination")
        if not isinstance(arn, str) or not arn.startswith("arn:") or arn.count(":") < 5:
            props.fail(f"{prop}.Destination", f"{arn!r} is not an ARN; the emulator needs an explicit "
                       "Destination, e.g. !GetAtt MyQueue.Arn")
        if outcome == "OnSuccess" and (kind == "S3" or arn.split(":")[2] in ON_FAILURE_ONLY_SERVICES):
            props.fail(f"{prop}.Destination", "S3 is an on-failure destination only; use it under OnFailure")
        arns[outcome] = arn
    return EventInvokeSpec(retries, age, arns["OnSuccess"], arns["OnFailure"])


def _dead_letter(props: _Props, prop: str, keys: tuple[str, ...]) -> str | None:
    """SAM `DeadLetterQueue: {Type, TargetArn}` or Lambda `DeadLetterConfig: {TargetArn}`."""
    config = props.mapping(prop, props.get(prop), " and ".join(keys))
    if not config:
        return None
    arn = config.get("TargetArn")
    service = arn.split(":")[2] if isinstance(arn, str) and arn.count(":") >= 5 else None
    if "Type" in keys and config.get("Type") not in DEAD_LETTER_TYPES:
        props.fail(f"{prop}.Type", f"{config.get('Type')!r} is not a dead-letter type; use SQS or SNS")
    expected = {str(config["Type"]).lower()} if "Type" in keys else {"sqs", "sns"}
    if service not in expected:
        kinds = " or ".join(kind.upper() for kind in sorted(expected))
        props.fail(f"{prop}.TargetArn", f"{arn!r} is not the ARN of an {kinds} target; use e.g. "
                   "!GetAtt MyQueue.Arn or !Ref MyTopic")
    return arn


def _events(props: _Props) -> Mapping[str, Any]:
    events = props.mapping("Events", props.get("Events"), "one entry per event source")
    for name, event in events.items():
        if not isinstance(event, Mapping) or not isinstance(event.get("Type"), str):
            props.fail(f"Events.{name}", "each event needs a Type (SQS, Kinesis, DynamoDB, SNS, …) "
                       "and Properties")
    return events


def _attach_event_invoke_config(props: _Props, functions: dict[str, FunctionSpec]) -> None:
    """An AWS::Lambda::EventInvokeConfig resource sets its function's async settings."""
    target = props.get("FunctionName")
    if not isinstance(target, str) or not target:
        props.fail("FunctionName", "is required: name the function, e.g. !Ref MyFunction")
    if props.get("Qualifier") is None:
        props.fail("Qualifier", "is required: use $LATEST or the function's alias")
    # An ARN (arn:aws:lambda:region:account:function:name[:qualifier]) names the function too.
    name = target.split(":")[6] if target.startswith("arn:") and target.count(":") >= 6 else target
    function = functions.get(name)
    if function is None:
        props.fail("FunctionName", f"there is no function named {name!r} in this template; use !Ref "
                   "on the function's logical id")
    if function.event_invoke is not None:
        props.fail("FunctionName", f"function {name!r} already has an EventInvokeConfig; keep only one")
    config = {key: props.get(key) for key in
              ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")}
    functions[name] = replace(function, event_invoke=_event_invoke(props, "", config))


# --- other resources --------------------------------------------------------------------


def _read_resource(stack: StackScope, logical_id: str, rtype: str) -> ResourceSpec:
    """Any other resource, with Properties resolved and its physical name computed."""
    if rtype not in EMULATED_TYPES and rtype not in QUIET_TYPES:
        stack.settings.warn_once(("type", rtype), f"resource type {rtype} (first seen on "
                                 f"{logical_id!r}) is not emulated; it is kept as declared")
    raw = stack.raw[logical_id]["Properties"]
    try:
        name = stack.name_of(logical_id) if rtype in NAME_PROPERTY else ""
        properties = {prop: value for prop in raw
                      if (value := stack.resolve_property(logical_id, prop)) is not None}
    except TemplateError as err:
        if rtype in EMULATED_TYPES:
            raise
        # Nothing local reads this resource, so a reference the emulator cannot answer must not
        # stop the app from loading: keep the properties as written.
        stack.settings.warn(f"{err}; {rtype} is not emulated, so the resource is kept as written")
        name, properties = "", dict(raw)
    return ResourceSpec(logical_id, rtype, properties, name)
