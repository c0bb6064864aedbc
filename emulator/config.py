"""One frozen, typed configuration.

Every option is declared once in OPTIONS; the CLI flags and the EMULATOR_* environment
variables are derived from it mechanically. Only `from_sources` reads the environment,
and only the composition root (the CLI, the pytest plugin) calls it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

ENV_PREFIX = "EMULATOR_"


@dataclass(frozen=True)
class Option:
    name: str  # field name; flag is --name-with-dashes, env var EMULATOR_NAME
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None

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
        values[name] = _convert(option, value, option.flag) if isinstance(value, str) else value
    return (base or Config()).replace(**values)


def _convert(option: Option, raw: str, source: str) -> Any:
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


def remote_binding_refusal(config: Config) -> str | None:
    """Why `config` may not start (a non-loopback --host without --allow-remote), or None."""
    if config.allow_remote or is_loopback_host(config.host):
        return None
    return (
        f"--host {config.host} is not a loopback address: every API the emulator serves (Lambda, and SQS, "
        "Kinesis, DynamoDB ... through moto) would be open to the network without authentication. "
        "Add --allow-remote (or EMULATOR_ALLOW_REMOTE=true) if that is what you want."
    )


def remote_binding_warning(config: Config) -> str | None:
    """The start-up warning for an allowed non-loopback --host, or None."""
    if is_loopback_host(config.host):
        return None
    return (
        f"WARNING: listening on {config.host or '*'} (--allow-remote): anyone who can reach this address can call "
        "every API, invoke your functions and read your queues and tables, without credentials."
    )
