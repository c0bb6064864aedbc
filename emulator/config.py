"""One frozen, typed configuration.

Every option is declared once in OPTIONS; the CLI flags and the EMULATOR_* environment
variables are derived from it mechanically. Only `from_sources` reads the environment,
and only the composition root (the CLI, the pytest plugin) calls it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

ENV_PREFIX = "EMULATOR_"


@dataclass(frozen=True)
class Option:
    name: str  # field name; flag is --name-with-dashes, env var EMULATOR_NAME
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None
    many: bool = False  # the flag takes several words (`--parameter-overrides A=1 B=2`)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


bool_option = _bool  # the CLI lets a flag of this type stand alone (`--allow-remote` = true)

# The AWS CLI's long form of one pair, which `sam deploy --parameter-overrides` also takes.
_CFN_PAIR = re.compile(r"ParameterKey=(?P<key>[^,]*),\s*ParameterValue=(?P<value>.*)", re.DOTALL)


def key_values(raw: str | Iterable[str] | Mapping[str, Any]) -> dict[str, str]:
    """`Key=Value` pairs as `sam deploy --parameter-overrides` takes them: a string or several
    (the CLI's words), each holding pairs `Key=Value` or `ParameterKey=Key,ParameterValue=Value`
    separated by spaces, a value with spaces quoted (`Msg="hello world"`), as sam reads them; a
    mapping is taken as it is."""
    if isinstance(raw, Mapping):
        return {str(key): str(value) for key, value in raw.items()}
    words = [word for text in ([raw] if isinstance(raw, str) else raw) for word in shlex.split(str(text))]
    joined: list[str] = []
    for word in words:  # "ParameterKey=K, ParameterValue=V" arrives as two words
        if joined and joined[-1].endswith(",") and word.startswith("ParameterValue="):
            joined[-1] += word
        else:
            joined.append(word)
    pairs: dict[str, str] = {}
    for word in joined:
        long_form = _CFN_PAIR.fullmatch(word)
        key, sep, value = (long_form["key"], "=", long_form["value"]) if long_form else word.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected Key=Value (or ParameterKey=Key,ParameterValue=Value), got {word!r}")
        pairs[key.strip()] = value
    return pairs


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be 1 or more, got {text}")
    return value


def _filter_quota(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10:
        raise ValueError(f"must be between 1 and 10 (AWS's default quota is 5, raised on request up to 10), got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"must be a number, 0 or more, got {text}")
    return value


def _lambda_throttle_status(text: str) -> int:
    value = int(text)
    if value not in (429, 500, 502, 503, 504):
        raise ValueError(f"must be one of 429, 500, 502, 503, 504, got {text}")
    return value


def _runtime_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """`RUNTIME=VALUE[,RUNTIME=VALUE...]` (e.g. `python3.12=my-image:tag`), in order."""
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        runtime, sep, value = item.partition("=")
        if not sep or not runtime.strip() or not value.strip():
            raise ValueError(f"expected RUNTIME=VALUE, got {item.strip()!r}")
        pairs.append((runtime.strip(), value.strip()))
    return tuple(pairs)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be between 0 and 65535, got {text}")
    return value


@dataclass(frozen=True)
class Config:
    template: Path | None = None
    host: str = "127.0.0.1"  # safe by default: loopback only
    port: int = 3001  # the port `sam local start-lambda` uses
    region: str = "us-east-1"
    account_id: str = "123456789012"
    # Idle lifetime of an environment. AWS does not document it ("for some time"); we choose
    # 300 s, README 'Choices'.
    keep_alive: float = 300.0
    time_scale: float = 1.0
    scale_factor: float = 1.0
    # Default account concurrency 1,000 (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html),
    # at least 100 left unreserved (https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html).
    account_concurrency: int = 1000
    unreserved_minimum: int = 100
    scaling_model: str = "current"
    # 1,000 new environments per function every 10 seconds:
    # https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html
    scaling_environments: int = 1000
    scaling_period: float = 10.0
    # Before Nov 2023: a Regional burst (0 = by Region), then +500 per minute (AWS's archived page:
    # https://github.com/awsdocs/aws-lambda-developer-guide/blob/38e9014eba7b2de5dff7e353de675d991e58947d/doc_source/invocation-scaling.md).
    legacy_burst: int = 0
    legacy_per_minute: int = 500
    interpreter: str = "auto"
    log_invocations: bool = True
    log_level: str = "info"
    shutdown_timeout: float = 10.0
    watch_code: bool = True
    backend: str = "moto"
    aws_endpoint: str | None = None
    # SQS poller scaling, "current" (+300/min since Nov 2023) or "legacy" (+60/min), and the
    # per-mapping ceiling: 1,000 (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html);
    # AWS's launch blog says 1,250 for the old model, we keep the documented 1,000.
    sqs_scaling_model: str = "current"
    sqs_max_concurrency: int = 1000
    # Binding beyond loopback serves every API, unauthenticated, to the network: opt in.
    allow_remote: bool = False
    # How MemorySize is enforced (README, "Memory"): auto picks a cgroup where one can be
    # made, else the resident-memory watchdog.
    memory_limits: str = "auto"
    # What SNS does when Lambda refuses a message (function missing, payload too large): AWS's
    # pages disagree (README, "SNS → Lambda"); `retry` runs SNS's delivery policy, then the
    # dead-letter queue; `dead-letter` treats it as a client-side error, not retried.
    sns_lambda_rejections: str = "retry"
    # Filters per event source mapping: 5 by default, up to 10 on request
    # (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    event_filter_quota: int = 5
    # CPU in proportion to memory, as on Lambda (README, "Memory, crashes and processes"):
    # off by default, so load tests measure the emulator's scaling, not a throttled CPU.
    cpu_model: str = "off"
    # API Gateway (README "API Gateway"): the port of the APIs the template declares (3000,
    # as `sam local start-api`), the account-level throttle (0: AWS's value for the Region,
    # 10,000 rps / burst 5,000 in most: https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html),
    # and the choices where AWS is silent (README 'Choices').
    api_port: int = 3000
    api_account_rate: float = 0.0
    api_account_burst: int = 0
    api_lambda_throttle_status: int = 500
    api_quota_offset: str = "requests"
    api_throttle_spend: str = "admitted"
    api_cache_max_mb: int = 64
    api_cache_statuses: str = "all"
    # What runs execution environments (emulator/execution/backends.py): fork (Python, the
    # fastest), process-runtime-api (a runtime interface client as a local process) or
    # container (a Docker engine). Container-image functions always run in containers.
    execution: str = "fork"
    # RUNTIME=COMMAND: how process-runtime-api runs a runtime (the handler is appended).
    runtime_command: tuple[tuple[str, str], ...] = ()
    # RUNTIME=IMAGE: the image zip functions of that runtime run in (--execution container).
    runtime_image: tuple[tuple[str, str], ...] = ()
    # The Docker engine of the container backend (unset: DOCKER_HOST, else the local socket),
    # how containers reach the control plane, and how many are created ahead per function.
    docker_host: str | None = None
    container_network: str = "host"
    runtime_api_host: str = "127.0.0.1"
    container_pool: int = 1
    # HOST=CONTAINER folders mounted (read-write) into every container, e.g. shared fixtures.
    container_volumes: tuple[tuple[str, str], ...] = ()
    # The template's parameter values, as `sam deploy --parameter-overrides` takes them, and
    # the values of the exports its Fn::ImportValue reads (a local app has no other stacks).
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    import_values: Mapping[str, str] = field(default_factory=dict)
    # MemorySize per function name, over the template's (what UpdateFunctionConfiguration
    # would change; `emulator tune` starts emulators with it).
    memory_sizes: Mapping[str, str] = field(default_factory=dict)
    # The per-second timeline of metrics (docs/timeline.md) and how many seconds with data
    # each series keeps (a ring: memory stays bounded).
    timeline: bool = True
    timeline_retention: int = 3600
    # DynamoDB capacity units, throttling, on-demand limits and ReturnConsumedCapacity as
    # AWS accounts them (README, "DynamoDB capacity"); off: moto's own, never throttled.
    dynamodb_capacity: bool = True

    def __post_init__(self) -> None:
        # The pytest fixtures pass settings straight in: a dict, or the CLI's text.
        for name in ("parameter_overrides", "import_values", "memory_sizes"):
            object.__setattr__(self, name, key_values(getattr(self, name)))
    # Function logs also go to CloudWatch Logs in the backend, as on Lambda (README, "Logs").
    cloudwatch_logs: bool = True

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


OPTIONS: tuple[Option, ...] = (
    Option("template", Path, "SAM template to serve (default: ./template.yaml, else the bundled example)"),
    Option("host", str, "address to bind (default 127.0.0.1: loopback only; any other address needs --allow-remote)"),
    Option("port", _port, "port to listen on; 0 picks a free one and prints it (default 3001)"),
    Option("region", str, "AWS Region the emulator pretends to be (default us-east-1)"),
    Option("account_id", str, "AWS account id used in ARNs (default 123456789012)"),
    Option("keep_alive", _positive_float, "seconds an idle execution environment is kept (default 300)"),
    Option("time_scale", _positive_float, "run every emulated timer this many times faster (handlers still run in real time)"),
    Option("scale_factor", _positive_float, "divide every AWS concurrency and scaling limit by this factor (default 1)"),
    Option("account_concurrency", _positive_int, "account concurrency limit (AWS default 1000)"),
    Option("unreserved_minimum", _non_negative_int, "concurrency that must stay unreserved (AWS: 100)"),
    Option("scaling_model", str, "scaling-rate model: current (per function) or legacy (Regional burst)", ("current", "legacy")),
    Option("scaling_environments", _positive_int, "new environments per function per scaling period (AWS: 1000)"),
    Option("scaling_period", _positive_float, "scaling period in seconds (AWS: 10)"),
    Option("legacy_burst", _non_negative_int, "legacy model: Regional burst (0 = AWS's value for the Region)"),
    Option("legacy_per_minute", _positive_int, "legacy model: environments added per minute after the burst (AWS: 500)"),
    Option("interpreter", str, "run python3.X functions with a matching interpreter when installed (auto) or always with this Python (own)", ("auto", "own")),
    Option("log_invocations", _bool, "log START/END/REPORT and handler output (default true)"),
    Option("log_level", str, "emulator log level", ("debug", "info", "warning", "error")),
    Option("shutdown_timeout", _positive_float, "seconds to drain in-flight invocations on shutdown (default 10)"),
    Option("watch_code", _bool, "pick up code changes without a restart (default true)"),
    Option("backend", str, "backing services for non-Lambda APIs: moto (started by the emulator) or none", ("moto", "none")),
    Option("aws_endpoint", str, "use this endpoint (a separate moto server, LocalStack, ...) instead of starting moto"),
    Option("sqs_scaling_model", str, "SQS event source poller scaling: current (+300 batches/min) or legacy (+60/min)", ("current", "legacy")),
    Option("sqs_max_concurrency", _positive_int, "most concurrent batches per SQS event source mapping (AWS: 1000)"),
    Option("allow_remote", _bool, "allow --host to be a non-loopback address: every API is then served to the network without authentication"),
    Option(
        "memory_limits", str,
        "how MemorySize is enforced: auto (a memory cgroup when one can be made, else the watchdog), "
        "cgroup (fail if none can be made), watchdog (sample resident memory) or none",
        ("auto", "cgroup", "watchdog", "none"),
    ),
    Option("sns_lambda_rejections", str, "when Lambda refuses an SNS message (function missing, payload too large): "
           "retry (SNS's delivery policy, then the subscription's DLQ) or dead-letter (at once)", ("retry", "dead-letter")),
    Option("event_filter_quota", _filter_quota, "most FilterCriteria filters per event source mapping (AWS: 5, up to 10 on request)"),
    Option(
        "cpu_model", str,
        "CPU per environment: proportional (capped in proportion to MemorySize, 1,769 MB = 1 vCPU, where cgroups "
        "can be made) or off (uncapped; the default)",
        ("proportional", "off"),
    ),
    Option("api_port", _port, "port of the template's API Gateway APIs; 0 picks a free one and prints it (default 3000)"),
    Option("api_account_rate", _non_negative_float, "API Gateway account-level rate limit, requests/s (0: AWS's for the Region, 10000)"),
    Option("api_account_burst", _non_negative_int, "API Gateway account-level burst (0: AWS's for the Region, 5000)"),
    Option("api_lambda_throttle_status", _lambda_throttle_status, "status API Gateway answers when Lambda throttles the function (AWS: 500)"),
    Option("api_quota_offset", str, "what a usage plan quota's Offset means: requests (subtracted in the first period) or day (the period's first day)", ("requests", "day")),
    Option("api_cache_max_mb", _positive_int, "most memory, in MB, one REST stage's cache may hold (its CacheClusterSize, up to this; default 64)"),
    Option("api_cache_statuses", str, "which integration responses a REST stage cache keeps: all (default) or 2xx", ("all", "2xx")),
    Option("api_throttle_spend", str, "which throttle layers a request spends: admitted (only admitted requests, every layer) or each-layer (each layer it passes)", ("admitted", "each-layer")),
    Option(
        "execution", str,
        "what runs execution environments: fork (Python handlers forked from a preloaded runtime; fastest), "
        "process-runtime-api (a runtime interface client as a local process, through the Lambda Runtime API) "
        "or container (a Docker engine: DOCKER_HOST); container-image functions always run in containers",
        ("fork", "process-runtime-api", "container"),
    ),
    Option("runtime_command", _runtime_pairs, "RUNTIME=COMMAND[,...]: how --execution process-runtime-api starts a runtime's client (the handler is appended)"),
    Option("runtime_image", _runtime_pairs, "RUNTIME=IMAGE[,...]: the image zip functions of a runtime run in with --execution container"),
    Option("docker_host", str, "Docker engine of the container backend: unix:///path, tcp://host:port, ssh://user@host (default: DOCKER_HOST, else the local socket)"),
    Option("container_network", str, "how containers reach the emulator: host (its network; Linux) or bridge (through host.docker.internal)", ("host", "bridge")),
    Option("runtime_api_host", str, "address each container's Runtime API listens on and is told (default 127.0.0.1; on a bridge, a local engine's gateway is found by itself; an address of this machine for remote engines)"),
    Option("container_volumes", _runtime_pairs, "HOST=CONTAINER[,...]: folders mounted read-write into every container (e.g. test fixtures)"),
    Option("container_pool", _non_negative_int, "containers created ahead (not started) per function version, for the next cold start (default 1)"),
    Option("parameter_overrides", key_values, "template parameter values, as for sam deploy: Key=Value ... "
           "(or ParameterKey=Key,ParameterValue=Value ...)", many=True),
    Option("import_values", key_values, "values for the template's Fn::ImportValue: ExportName=Value ...", many=True),
    Option("memory_sizes", key_values, "MemorySize over the template's, per function: FunctionName=MB ...", many=True),
    Option("timeline", _bool, "record a per-second timeline of metrics, served as /_emulator/timeline, Prometheus text and the CloudWatch API (default true)"),
    Option("timeline_retention", _positive_int, "seconds with data each timeline series keeps (default 3600)"),
    Option("cloudwatch_logs", _bool, "also send function logs to CloudWatch Logs in the backend (default true; needs a backend)"),
    Option("dynamodb_capacity", _bool, "account DynamoDB capacity units and throttle tables as AWS does (default true; "
           "false: never throttled)"),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def from_sources(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None, base: Config | None = None) -> Config:
    """Defaults < EMULATOR_* environment < explicit flags. Raises ValueError naming the source."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = (environ or {}).get(option.env_var)
        if raw is None:
            continue
        values[option.name] = _convert(option, raw, option.env_var)
    for name, value in (flags or {}).items():
        if value is None:
            continue
        option = OPTIONS_BY_NAME[name]
        convert = isinstance(value, str) or (option.many and isinstance(value, (list, tuple)))
        values[name] = _convert(option, value, option.flag) if convert else value
    return (base or Config()).replace(**values)


def _convert(option: Option, raw: Any, source: str) -> Any:
    try:
        value = option.type(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    if option.choices and value not in option.choices:
        raise ValueError(f"{source}: expected one of {', '.join(option.choices)}, got {raw!r}")
    return value


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` listens on loopback only (127.0.0.0/8, ::1, localhost).

    The wildcard addresses ("", 0.0.0.0, ::) listen everywhere. Other names are resolved, and
    count as loopback only if every address they resolve to is.
    """
    if host in ("", "0.0.0.0", "::"):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses)


@dataclass(frozen=True)
class RemoteBinding:
    """What `--host` means for safety: a refusal (a non-loopback host without --allow-remote)
    or the start-up warning for an allowed one; both None on loopback."""

    refusal: str | None
    warning: str | None


def remote_binding(config: Config) -> RemoteBinding:
    """Checked once per start (a host name costs blocking DNS lookups)."""
    if is_loopback_host(config.host):
        return RemoteBinding(None, None)
    warning = (
        f"WARNING: listening on {config.host or '*'} (--allow-remote): anyone who can reach this address can call "
        "every API, invoke your functions and read your queues and tables, without credentials."
    )
    if config.allow_remote:
        return RemoteBinding(None, warning)
    return RemoteBinding(
        f"--host {config.host} is not a loopback address: every API the emulator serves (Lambda, and SQS, "
        "Kinesis, DynamoDB ... through moto) would be open to the network without authentication. "
        "Add --allow-remote (or EMULATOR_ALLOW_REMOTE=true) if that is what you want.",
        warning,
    )


def remote_binding_refusal(config: Config) -> str | None:
    """Why `config` may not start (a non-loopback --host without --allow-remote), or None."""
    return remote_binding(config).refusal


def remote_binding_warning(config: Config) -> str | None:
    """The start-up warning for a non-loopback --host, or None."""
    return remote_binding(config).warning
