"""Run one invocation in an execution environment and shape the outcome as Lambda does.

Admission control (concurrency, scaling rate) happens before this; here an environment is
taken warm or created cold, the event is sent, and the outcome (result, function error,
timeout, crash, init failure) becomes the response body, the X-Amz-Function-Error header,
the START/END/REPORT lines and the LogResult tail.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from emulator.execution.backends import Environment, ExecutionBackend, InvokeRequest
from emulator.execution.environment import InitResult, RawOutcome
from emulator.execution.log_tail import LogTail
from emulator.functions.registry import FunctionVersion
from emulator.execution.logsink import LogSink
from emulator.execution.platform_log import PlatformLog
from emulator.functions.metrics import Metrics
from emulator.execution.pool import EnvironmentLimitReached, EnvironmentPool

# Init may take 10 s on demand; after that Lambda retries Init at the first invocation,
# bounded by the function timeout: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_TIMEOUT_S = 10.0
# For provisioned concurrency: max(130 s, function timeout) (same page).
PROVISIONED_INIT_TIMEOUT_S = 130.0
EXIT_REPORT_WAIT_S = 2.0
# How long a cold start waits for an evicted idle environment to exit (and free its
# descriptors) when the descriptor budget is full.
EVICTION_WAIT_S = 2.0
# MaxPayloadSize = 6 MiB + 100 bytes in AWS's Runtime Interface Emulator
# (https://github.com/aws/aws-lambda-runtime-interface-emulator): a larger function response
# is not delivered; the caller gets Function.ResponseSizeTooLarge instead.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100


@dataclass(slots=True)
class Invocation:
    payload: bytes
    request_id: str
    invoked_arn: str
    client_context: dict[str, Any] | None = None
    log_tail: bool = False
    trace_header: str = ""  # what the runtime sets as _X_AMZN_TRACE_ID (emulator/service/tracing.py)
    tenant_id: str | None = None  # its own environments: never shared with another tenant


@dataclass(slots=True)
class InvokeResult:
    payload: bytes
    executed_version: str
    request_id: str
    function_error: str | None = None  # "Unhandled" when the function failed
    error_type: str | None = None
    log_result: str | None = None
    cold: bool = False
    duration_ms: float = 0.0
    throttled: bool = False  # no environment could be created (scaling rate): nothing ran


def error_payload(error_type: str, message: str, request_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if request_id is not None:
        body["requestId"] = request_id
    return json.dumps(body).encode()


RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


def response_too_large_payload() -> bytes:
    # The message AWS returns (observed in users' reports; not in AWS's docs), with that limit.
    return error_payload(RESPONSE_TOO_LARGE, f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).")


def timeout_payload(request_id: str, timeout_s: float) -> bytes:
    # AWS emits Sandbox.Timedout with this text (observed in users' logs; AWS's Runtime Interface
    # Emulator prints the same "Task timed out after N.00 seconds").
    return error_payload("Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds")


def exit_payload(request_id: str, info: dict[str, Any] | None) -> tuple[str, bytes]:
    status = (info or {}).get("status", "signal: killed")
    if info and info.get("oom"):
        error_type = "Runtime.OutOfMemory"
    else:
        error_type = "Runtime.ExitError"
    return error_type, error_payload(error_type, f"RequestId: {request_id} Error: Runtime exited with error: {status}")


@dataclass(slots=True)
class _Attempt:
    """Bookkeeping of one invocation while it runs."""

    platform: list[str] = field(default_factory=list)  # Lambda's own lines: START, END, REPORT ...
    tail: LogTail | None = None  # everything, bounded to what LogType Tail returns
    init_ms: float | None = None
    error_type: str | None = None
    start_written: str | None = None  # the START line already written to the log, if any
    stream: str | None = None  # the environment's log stream (CloudWatch Logs), once known

    def add(self, line: str) -> None:
        if not line:
            return  # a line the function's SystemLogLevel leaves out
        self.platform.append(line)
        if self.tail is not None:
            self.tail.append(line)


class Invoker:
    def __init__(self, factory: ExecutionBackend, logs: LogSink, metrics: Metrics, log_invocations: bool = True) -> None:
        self.factory = factory
        self.logs = logs
        self.metrics = metrics
        self.log_invocations = log_invocations
        self.pools: dict[str, EnvironmentPool] = {}

    def pool_for(self, version: FunctionVersion, tenant_id: str | None = None) -> EnvironmentPool:
        """The version's environments; with tenant isolation, those of one tenant only
        (https://docs.aws.amazon.com/lambda/latest/dg/tenant-isolation.html)."""
        key = version.key if tenant_id is None else f"{version.key}\x00tenant:{tenant_id}"
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = EnvironmentPool(self.factory, version)
        return pool

    def new_code(self, version: FunctionVersion) -> None:
        """New code for `version`: its environments, every tenant's, load it from now on."""
        for pool in self.pools.values():
            if pool.version.key == version.key:
                pool.new_code(version)

    async def run(
        self,
        version: FunctionVersion,
        invocation: Invocation,
        *,
        provisioned: bool = False,
        gate: Callable[[str], bool] | None = None,
    ) -> InvokeResult:
        """`gate(function)` is asked before a new environment is created (the scaling rate)."""
        pool = self.pool_for(version, invocation.tenant_id)
        spec = version.spec
        attempt = _Attempt(tail=LogTail() if invocation.log_tail else None)
        started = time.perf_counter()
        env = pool.take_idle(provisioned)
        cold = env is None
        if env is None:
            if not self.factory.has_room() and not await self._evict_idle():
                self.factory.create_refused(version.name)
                return InvokeResult(b"", version.version, invocation.request_id, throttled=True)
            if gate is not None and not provisioned and not gate(version.name):
                return InvokeResult(b"", version.version, invocation.request_id, throttled=True)
            try:
                env, failure = await self._cold_start(pool, version, invocation, attempt, provisioned)
            except EnvironmentLimitReached:  # out of descriptors: throttled, never a 500
                return InvokeResult(b"", version.version, invocation.request_id, throttled=True)
            if failure is not None:
                return self._finish(version, invocation, attempt, failure, cold, started)
        assert env is not None
        request_id = invocation.request_id
        attempt.stream = env.log_stream
        if self.log_invocations or invocation.log_tail or self.logs.feed is not None:  # skip the formatting when nobody reads it
            start_line = _platform(spec.logging).start(request_id, version.version)
            attempt.add(start_line)
            if self.log_invocations or self.logs.feed is not None:
                self.logs.write(spec.name, start_line, spec.log_group, env.log_stream)
                attempt.start_written = start_line
        request = InvokeRequest(
            request_id,
            int(time.time() * 1000 + spec.timeout_s * 1000),
            invocation.invoked_arn,
            invocation.client_context,
            invocation.payload,
            trace_id=invocation.trace_header,
            tenant_id=invocation.tenant_id,
        )
        try:
            outcome = await env.invoke(request, spec.timeout_s, attempt.tail)
        except asyncio.CancelledError:
            pool.discard(env)  # nobody will read its answer: never hand a busy environment out again
            raise
        if outcome.kind == "too_large" or (outcome.kind == "result" and len(outcome.payload) > MAX_RESPONSE_BYTES):
            result = InvokeResult(response_too_large_payload(), version.version, request_id, "Unhandled", RESPONSE_TOO_LARGE)
        elif outcome.kind == "result":
            result = InvokeResult(outcome.payload, version.version, request_id)
        elif outcome.kind == "error":
            result = InvokeResult(outcome.payload, version.version, request_id, "Unhandled", _error_type(outcome.payload))
        elif outcome.kind == "timeout":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            attempt.add(f"{stamp}.000Z {request_id} Task timed out after {spec.timeout_s:.2f} seconds\n")
            result = InvokeResult(timeout_payload(request_id, spec.timeout_s), version.version, request_id, "Unhandled", "Sandbox.Timedout")
            outcome.duration_ms = spec.timeout_s * 1000.0
            if self.log_invocations or invocation.log_tail:  # only REPORT needs the killed process's peak memory
                outcome.max_rss_kb = ((await _exit_info(env)) or {}).get("max_memory_kb", 0)
        else:
            info = await _exit_info(env)
            error_type, payload = exit_payload(request_id, info)
            result = InvokeResult(payload, version.version, request_id, "Unhandled", error_type)
            outcome.duration_ms = (time.perf_counter() - started) * 1000.0
            outcome.max_rss_kb = (info or {}).get("max_memory_kb", 0)
        if env.alive:
            pool.give_back(env, time.monotonic())
        else:
            pool.discard(env)
        if cold:
            attempt.init_ms = env.init_ms
        return self._finish(version, invocation, attempt, result, cold, started, outcome)

    async def _evict_idle(self) -> bool:
        """Stop the least recently used idle environment of any function, so that the
        descriptor budget has room for a new one; False when none is idle."""
        oldest: tuple[EnvironmentPool, Environment] | None = None
        for pool in self.pools.values():
            for env in pool.idle:
                if oldest is None or env.last_used < oldest[1].last_used:
                    oldest = (pool, env)
        if oldest is None:
            return False
        pool, env = oldest
        pool.evict_idle(env)
        await _exit_info(env, EVICTION_WAIT_S)
        return self.factory.has_room()

    async def _cold_start(
        self, pool: EnvironmentPool, version: FunctionVersion, invocation: Invocation, attempt: _Attempt, provisioned: bool
    ) -> tuple[Environment | None, InvokeResult | None]:
        request_id = invocation.request_id
        init_started = time.perf_counter()
        env = await pool.create(provisioned=provisioned)
        env.capture_logs(attempt.tail)
        attempt.stream = env.log_stream
        init = await _wait_init(pool, env, INIT_TIMEOUT_S)
        if init is None:
            # Init over 10 s is retried at the first invocation, bounded by the function
            # timeout (INIT_TIMEOUT_S).
            env.kill()
            pool.discard(env)
            attempt.add(_platform(version.spec.logging).init_report(INIT_TIMEOUT_S * 1000, "timeout"))
            init_started = time.perf_counter()
            env = await pool.create(provisioned=provisioned)
            env.capture_logs(attempt.tail)
            attempt.stream = env.log_stream
            init = await _wait_init(pool, env, version.spec.timeout_s)
            if init is None:
                env.kill()
                pool.discard(env)
                return None, InvokeResult(
                    timeout_payload(request_id, version.spec.timeout_s), version.version, request_id, "Unhandled", "Sandbox.Timedout"
                )
        if init.ok:
            return env, None
        if not env.init_ms:  # a failed Init never reports its duration: it lasted until now
            env.init_ms = (time.perf_counter() - init_started) * 1000.0
        pool.discard(env)
        return None, await self._init_failure(env, init, version, request_id, attempt)

    async def _init_failure(
        self, env: Environment, init: InitResult, version: FunctionVersion, request_id: str, attempt: _Attempt
    ) -> InvokeResult:
        if init.error is not None:
            payload = init.error
            error_type = _error_type(payload)
        else:
            error_type, payload = exit_payload(request_id, await _exit_info(env))
        attempt.add(_platform(version.spec.logging).init_report(env.init_ms, "error", error_type))
        env.kill()
        return InvokeResult(payload, version.version, request_id, "Unhandled", error_type)

    def _finish(
        self,
        version: FunctionVersion,
        invocation: Invocation,
        attempt: _Attempt,
        result: InvokeResult,
        cold: bool,
        started: float,
        outcome: RawOutcome | None = None,
    ) -> InvokeResult:
        request_id = invocation.request_id
        spec = version.spec
        duration = outcome.duration_ms if outcome is not None else (time.perf_counter() - started) * 1000.0
        max_mb = math.ceil(outcome.max_rss_kb / 1024) if outcome is not None and outcome.max_rss_kb else 0
        result.cold = cold
        result.duration_ms = duration
        self.metrics.record_invocation(spec.name, result, cold, attempt.init_ms, invocation.tenant_id)
        feed = self.logs.feed
        if not (self.log_invocations or invocation.log_tail or feed is not None):
            return result
        platform = _platform(spec.logging)
        if outcome is None:  # init failed: Lambda still writes START for the request
            attempt.add(platform.start(request_id, version.version))
        attempt.add(platform.end(request_id))
        attempt.add(platform.report(request_id, duration, spec.memory_mb, max_mb,
                                    attempt.init_ms if cold else None, result.error_type,
                                    invocation.tenant_id))
        if self.log_invocations or feed is not None:
            # Handler output was written as it arrived; these are Lambda's own closing lines.
            lines = [line for line in attempt.platform if line is not attempt.start_written]
            if lines:
                self.logs.write(spec.name, "".join(lines), spec.log_group, attempt.stream)
        if attempt.tail is not None:
            result.log_result = base64.b64encode(attempt.tail.value()).decode()
        return result

    def retire(self, function: str, version: str | None = None) -> list[EnvironmentPool]:
        """Stop using the pools of a deleted function (or one deleted version); returns them
        (their busy environments finish first)."""
        keys = [key for key, pool in self.pools.items()
                if pool.version.name == function and (version is None or pool.version.version == version)]
        retired = [self.pools.pop(key) for key in keys]
        for pool in retired:
            pool.retire()
        return retired

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()


@functools.lru_cache(maxsize=1024)
def _platform(logging: Any) -> PlatformLog:
    """The platform-line formatter of one LoggingConfig (a frozen value)."""
    return PlatformLog(logging)


async def _wait_init(pool: EnvironmentPool, env: Environment, timeout_s: float) -> InitResult | None:
    try:
        return await env.wait_ready(timeout_s)
    except asyncio.CancelledError:
        pool.discard(env)  # its caller is gone: nobody would ever hand it out
        raise


async def _exit_info(env: Environment, wait_s: float = EXIT_REPORT_WAIT_S) -> dict[str, Any] | None:
    try:
        return await asyncio.wait_for(asyncio.shield(env.exit_info), wait_s)
    except asyncio.TimeoutError:
        return None


def _error_type(payload: bytes) -> str:
    try:
        value = json.loads(payload)
    except ValueError:
        return "Runtime.Unknown"
    return value.get("errorType", "Runtime.Unknown") if isinstance(value, dict) else "Runtime.Unknown"
