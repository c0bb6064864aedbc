"""Declarative description of an app: what the template (or in-code definitions) asks for.

These are plain frozen values. The template loader produces them; the control plane
turns them into live functions. Nothing here starts processes or reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.template.api_specs import GatewaySpec

# Memory 128-10,240 MB, timeout up to 900 s: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# Defaults 128 MB and 3 s: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html and
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
DEFAULT_MEMORY_MB = 128
MIN_TIMEOUT_S = 1
MAX_TIMEOUT_S = 900
DEFAULT_TIMEOUT_S = 3
DEFAULT_RUNTIME = "python3.11"
# https://docs.aws.amazon.com/lambda/latest/dg/foundation-arch.html
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_ARCHITECTURE = "x86_64"
# "4 KB" for all environment variables (the quotas page above).
MAX_ENVIRONMENT_BYTES = 4 * 1024


@dataclass(frozen=True)
class EventInvokeSpec:
    """`EventInvokeConfig` of a function (async invocation settings)."""

    maximum_retry_attempts: int | None = None
    maximum_event_age_s: int | None = None
    on_success_arn: str | None = None
    on_failure_arn: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """A container-image function (`PackageType: Image`): the image, its `ImageConfig`
    overrides, and how `sam build` would build it (the resource's `Metadata`)."""

    uri: str = ""  # ImageUri; empty when the image is built from `dockerfile`
    command: tuple[str, ...] = ()
    entry_point: tuple[str, ...] = ()
    working_directory: str = ""
    dockerfile: str = ""  # Metadata.Dockerfile, relative to docker_context
    docker_context: Path | None = None
    docker_tag: str = ""
    build_args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LayerSpec:
    """A layer version the template declares (AWS::Serverless::LayerVersion or
    AWS::Lambda::LayerVersion) with local content."""

    logical_id: str
    name: str
    arn: str  # the version's ARN, arn:aws:lambda:<region>:<account>:layer:<name>:<version>
    # A folder or a .zip, as declared; once the emulator has prepared the packages
    # (emulator/functions/packages.py), a folder of its own holding the layer's contents.
    content: Path
    version: int = 1
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    license_info: str | None = None
    size: int = 0  # bytes unpacked, known once prepared


@dataclass(frozen=True)
class LoggingSpec:
    """`LoggingConfig` of a function (advanced logging controls):
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html

    The levels apply only with the JSON format (same page); `log_group` None means
    `/aws/lambda/{name}`."""

    log_format: str = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function as declared by the user."""

    name: str
    # The folder holding the code, or a .zip of it as declared; always a folder once the
    # emulator has prepared the packages (a .zip is then unpacked into a folder of its own).
    code_dir: Path
    handler: str
    runtime: str = DEFAULT_RUNTIME
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_TIMEOUT_S
    environment: dict[str, str] = field(default_factory=dict)
    description: str = ""
    logical_id: str = ""
    reserved_concurrency: int | None = None
    auto_publish_alias: str | None = None
    provisioned_concurrency: int | None = None
    event_invoke: EventInvokeSpec | None = None
    dead_letter_arn: str | None = None
    # SAM `Events` as written (resolved intrinsics), for the event-source layer.
    events: dict[str, Any] = field(default_factory=dict)
    # "Zip" (code folder + runtime) or "Image" (a container image: `image`).
    package_type: str = "Zip"
    image: ImageSpec | None = None
    # The function's layers in the order they are applied (later ones overwrite earlier
    # ones' files, as in /opt on Lambda).
    layers: tuple[LayerSpec, ...] = ()
    # What the function's environments see as /opt: its layers merged in order. Set when the
    # packages are prepared; None without layers.
    layers_dir: Path | None = None
    # TenancyConfig.TenantIsolationMode ("PER_TENANT"), or None: every invocation then names
    # a tenant, and each tenant has environments of its own.
    tenant_isolation_mode: str | None = None
    # Architectures[0]: what AWS would bill (x86_64 or arm64); handlers run on this machine.
    architecture: str = DEFAULT_ARCHITECTURE
    logging: LoggingSpec = LoggingSpec()
    tags: dict[str, str] = field(default_factory=dict)
    role: str = ""  # the execution role's ARN as declared ("" when none: a default is shown)
    # Layer version ARNs given through the Lambda API (shown back by GetFunction).
    layer_arns: tuple[str, ...] = ()
    # Settings accepted through the Lambda API with no local effect, shown back as given
    # (TracingConfig, Architectures, …: emulator/functions/function_settings.py).
    api_echo: dict[str, Any] = field(default_factory=dict)

    @property
    def log_group(self) -> str:
        return self.logging.log_group or f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class ResourceSpec:
    """A non-function resource the emulator creates in the backing services (queues, streams, …)."""

    logical_id: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    # Physical name (QueueName, TableName, …, else one derived from the logical id); "" for
    # types that have no name of their own.
    name: str = ""


@dataclass(frozen=True)
class AppSpec:
    """Everything one template declares."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    resources: dict[str, ResourceSpec] = field(default_factory=dict)
    source: str = "<in-code>"
    # API Gateway: APIs, usage plans and keys (emulator/template/gateway.py).
    gateway: GatewaySpec = field(default_factory=GatewaySpec)
    layers: dict[str, LayerSpec] = field(default_factory=dict)  # by logical id
