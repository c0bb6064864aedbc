"""Lambda's own log lines for one invocation (START, END, REPORT, INIT_REPORT), in the
function's log format. Pure formatting.

Text: the lines of https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html.
JSON (`LoggingConfig.LogFormat: JSON`): one object per system event, `{"time", "type",
"record"}`, with the event types and record fields of the Telemetry API schema
(https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html), which is
what Lambda writes to CloudWatch for JSON system logs
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html);
there is no END event in that format. `SystemLogLevel` filters them: these events are
INFO, so `WARN` leaves none (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from emulator.template.specs import LoggingSpec

_SYSTEM_LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30}
PLATFORM_EVENT_LEVEL = _SYSTEM_LEVELS["INFO"]


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


class PlatformLog:
    """The platform lines of one function's configuration."""

    __slots__ = ("json", "enabled")

    def __init__(self, logging: LoggingSpec) -> None:
        self.json = logging.log_format == "JSON"
        level = _SYSTEM_LEVELS.get(logging.system_log_level or "INFO", PLATFORM_EVENT_LEVEL)
        self.enabled = not self.json or level <= PLATFORM_EVENT_LEVEL

    def _event(self, kind: str, record: dict[str, Any]) -> str:
        return json.dumps({"time": _now_iso(), "type": kind, "record": record}) + "\n"

    def start(self, request_id: str, version: str) -> str:
        if not self.enabled:
            return ""
        if self.json:
            return self._event("platform.start", {"requestId": request_id, "version": version})
        return f"START RequestId: {request_id} Version: {version}\n"

    def end(self, request_id: str) -> str:
        if not self.enabled or self.json:
            return ""
        return f"END RequestId: {request_id}\n"

    def report(self, request_id: str, duration_ms: float, memory_mb: int, max_memory_mb: int,
               init_ms: float | None, error_type: str | None, tenant_id: str | None = None) -> str:
        if not self.enabled:
            return ""
        if self.json:
            metrics: dict[str, Any] = {"durationMs": round(duration_ms, 3), "billedDurationMs": math.ceil(duration_ms),
                                       "memorySizeMB": memory_mb, "maxMemoryUsedMB": max_memory_mb}
            if init_ms is not None:
                metrics["initDurationMs"] = round(init_ms, 3)
            record: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": _status(error_type)}
            if error_type in ("Runtime.ExitError", "Runtime.OutOfMemory"):
                record["errorType"] = error_type
            if tenant_id is not None:
                record["tenantId"] = tenant_id
            return self._event("platform.report", record)
        line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {math.ceil(duration_ms)} ms\t"
                f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB\t")
        if init_ms is not None:
            line += f"Init Duration: {init_ms:.2f} ms\t"
        if tenant_id is not None:
            # AWS documents the tenant in JSON logs' platform.report (tenantId); in text, our choice.
            line += f"Tenant ID: {tenant_id}\t"
        if error_type == "Sandbox.Timedout":
            line += "Status: timeout"
        elif error_type in ("Runtime.ExitError", "Runtime.OutOfMemory"):
            line += f"Status: error\tError Type: {error_type}"
        return line + "\n"

    def init_report(self, duration_ms: float, status: str, error_type: str | None = None) -> str:
        if not self.enabled:
            return ""
        if self.json:
            record: dict[str, Any] = {"initializationType": "on-demand", "phase": "init", "status": status,
                                      "metrics": {"durationMs": round(duration_ms, 3)}}
            if error_type:
                record["errorType"] = error_type
            return self._event("platform.initReport", record)
        line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: {status}"
        return line + (f"\tError Type: {error_type}\n" if error_type else "\n")


def _status(error_type: str | None) -> str:
    if error_type == "Sandbox.Timedout":
        return "timeout"
    if error_type in ("Runtime.ExitError", "Runtime.OutOfMemory"):
        return "error"
    return "success"


# ApplicationLogLevel values, most detailed first:
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
_APPLICATION_LEVELS = {"TRACE": 0, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50,
                       "CRITICAL": 50}


def application_filter(logging: LoggingSpec) -> Any:
    """For a JSON-format function whose ApplicationLogLevel is above INFO, a filter of its
    output text (None when nothing needs filtering). As Lambda does: a line that is a JSON
    object with a valid "level" has that level (the runtime's own error line says
    "log_level"); any other line is INFO (the log-level page above)."""
    if logging.log_format != "JSON":
        return None
    threshold = _APPLICATION_LEVELS.get(logging.application_log_level or "INFO", 20)
    if threshold <= _APPLICATION_LEVELS["INFO"]:
        return None

    def keep(text: str) -> str:
        return "".join(line for line in text.splitlines(keepends=True) if _line_level(line) >= threshold)

    return keep


def _line_level(line: str) -> int:
    if line.startswith("{"):
        try:
            value = json.loads(line)
        except ValueError:
            return _APPLICATION_LEVELS["INFO"]
        if isinstance(value, dict):
            level = value.get("level", value.get("log_level"))
            if isinstance(level, str):
                return _APPLICATION_LEVELS.get(level.upper(), _APPLICATION_LEVELS["INFO"])
    return _APPLICATION_LEVELS["INFO"]
