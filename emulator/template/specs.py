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
class FunctionSpec:
    """One Lambda function as declared by the user."""

    name: str
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
