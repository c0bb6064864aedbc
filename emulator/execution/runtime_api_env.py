"""An execution environment whose runtime talks the Lambda Runtime API.

The same lifecycle as a forked environment (EnvState: STARTING -> READY <-> BUSY ->
STOPPING -> DEAD) and the same outcomes for the invoker; what differs is the transport.
Init ends with the runtime's first `GET /next` (or `POST /init/error`); an invocation is
delivered as the answer to a parked `/next` and ends with `POST /{id}/response` or
`/{id}/error` (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). The
backend that started the runtime (a local process, a container) supplies how to kill it
and reports its exit through `on_exit`.

The runtime's own state machine follows AWS's Runtime Interface Emulator
(https://github.com/aws/aws-lambda-runtime-interface-emulator, `internal/lambda/core`):
INITIALIZING until the first `/next`, then READY (parked on `/next`), INVOKING (an event
was handed out) and RESPONDED (answered, not yet asking for the next one).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from emulator.execution.environment import EnvironmentLifecycle, EnvState, InitResult, RawOutcome
from emulator.execution.log_tail import LogTail
from emulator.execution.runtime_api import (
    ACCEPTED_BODY, ERROR_TYPE_HEADER, INIT_ERROR_PATH, NEXT_PATH, RESPONSE_MODE_HEADER, STREAMING_RESPONSE_MODE,
    MAX_PAYLOAD_BYTES, RESPONSE_PATH, API_PREFIX, RuntimeApiServer, RuntimeRequest, error_body,
)

if TYPE_CHECKING:
    from emulator.execution.backends import InvokeRequest

log = logging.getLogger("emulator.execution.runtime_api_env")


class RuntimePhase(enum.Enum):
    """Where the runtime is in its conversation with the Runtime API."""

    INITIALIZING = "RuntimeInitState"
    READY = "RuntimeReadyState"
    INVOKING = "RuntimeInvocationState"
    RESPONDED = "RuntimeInvocationResponseState"
    INIT_FAILED = "RuntimeInitErrorState"


class RuntimeApiEnvironment(EnvironmentLifecycle):
    """One environment served through the Runtime API. Not reusable after DEAD."""

    def __init__(self, env_id: str, on_log: Callable[[str], None]) -> None:
        super().__init__(env_id, on_log)
        self.phase = RuntimePhase.INITIALIZING
        self._kill: Callable[[], None] | None = None
        self._memory_kb: Callable[[], int] | None = None
        self._drain_output: Callable[[], None] | None = None
        self.api = RuntimeApiServer(self._handle)
        loop = asyncio.get_running_loop()
        self._started = time.perf_counter()
        self._init: asyncio.Future[InitResult] = loop.create_future()
        self._call: asyncio.Future[RawOutcome] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._parked: RuntimeRequest | None = None  # the runtime's GET /next, waiting for an event
        self._event: InvokeRequest | None = None  # an event not yet handed out
        self._current_id: str | None = None  # the event handed out, not yet answered
        self._delivered_at = 0.0
        self.exit_info: asyncio.Future[dict[str, Any]] = loop.create_future()

    # -- set up by the backend -----------------------------------------------------------
    async def listen(self, host: str) -> str:
        """The Runtime API's address for this environment (AWS_LAMBDA_RUNTIME_API)."""
        return await self.api.listen(host)

    def attach(self, kill: Callable[[], None], *, memory_kb: Callable[[], int] | None = None,
               drain_output: Callable[[], None] | None = None, pid: int | None = None) -> None:
        """How to end the runtime, read its peak memory and flush its output (all optional
        but `kill`)."""
        self._kill = kill
        self._memory_kb = memory_kb
        self._drain_output = drain_output
        self.pid = pid

    def starting(self) -> None:
        """The runtime is being started now: Init Duration counts from here (a container
        created ahead of time was not initialising while it waited)."""
        self._started = time.perf_counter()

    def output(self, text: str) -> None:
        """What the runtime wrote to its stdout/stderr: the function's log (and the tail)."""
        if self._log_capture is not None:
            self._log_capture.append(text)
        self._on_log(text)

    # -- lifecycle (the rest is EnvironmentLifecycle's) ---------------------------------------
    def kill(self) -> None:
        # The Runtime API stays open until the runtime's exit is reported (`on_exit`): a
        # container's kill is a request its engine carries out a little later, and a runtime
        # that saw its API vanish meanwhile would log "Failed to get next" and a traceback
        # into the function's log, as if it had crashed. Until then a STOPPING runtime is
        # answered as usual but never handed an event (its /next stays parked).
        self._stopping()
        if self._kill is not None:
            self._kill()

    def stop(self) -> None:
        # Lambda's Shutdown phase gives a runtime without extensions no grace worth waiting
        # for (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
        # an idle one is simply ended.
        if self.state is not EnvState.DEAD:
            self.kill()

    def on_exit(self, info: dict[str, Any]) -> None:
        if not self.exit_info.done():
            self.exit_info.set_result(info)
        self._mark_dead()

    @property
    def alive(self) -> bool:
        return self.state is not EnvState.DEAD and self.state is not EnvState.STOPPING

    # -- invocation ----------------------------------------------------------------------
    def invoke(self, request: InvokeRequest, timeout_s: float, log_capture: LogTail | None) -> asyncio.Future[RawOutcome]:
        loop = asyncio.get_running_loop()
        self.transition(EnvState.BUSY)
        call = loop.create_future()
        self._call = call
        self._log_capture = log_capture
        self._deadline = loop.call_later(timeout_s, self._on_deadline)
        self._event = request
        parked, self._parked = self._parked, None
        if parked is not None and parked.open:
            self._deliver(parked)
        return call

    def _on_deadline(self) -> None:
        call = self._call
        if call is not None and not call.done():
            call.set_result(RawOutcome("timeout", max_rss_kb=self._peak_kb()))
        self._call = None
        self.kill()

    def _finish_call(self, outcome: RawOutcome) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._drain_output is not None:
            self._drain_output()  # what the handler printed before answering goes before END
        call, self._call = self._call, None
        self._log_capture = None
        if self.state is EnvState.BUSY:
            self.transition(EnvState.READY)
        if call is not None and not call.done():
            call.set_result(outcome)

    def _peak_kb(self) -> int:
        if self._memory_kb is None:
            return 0
        try:
            return self._memory_kb()
        except OSError:
            return 0

    # -- the Runtime API -----------------------------------------------------------------
    def _handle(self, request: RuntimeRequest) -> None:
        path, method = request.path, request.method
        if path == NEXT_PATH:
            if method != "GET":
                return request.respond(405, error_body("MethodNotAllowed", f"{method} is not allowed on {path}"))
            return self._next(request)
        match = RESPONSE_PATH.match(path)
        if match is not None or path == INIT_ERROR_PATH:
            if method != "POST":
                return request.respond(405, error_body("MethodNotAllowed", f"{method} is not allowed on {path}"))
            if match is None:
                return self._init_error(request)
            return self._answer(request, match.group(1), match.group(2))
        if path.startswith(API_PREFIX):
            # Restore (SnapStart) and extension paths are not emulated.
            return request.respond(404, error_body("NotFound", f"{path} is not served by this emulator"))
        request.respond(404, error_body("NotFound", "404 page not found"))

    def _refuse_transition(self, request: RuntimeRequest, target: RuntimePhase) -> None:
        message = (f"State transition from {self.phase.value} to {target.value} failed for runtime. "
                   "Error: State transition is not allowed")
        request.respond(403, error_body("InvalidStateTransition", message))

    def _next(self, request: RuntimeRequest) -> None:
        if self.phase is RuntimePhase.INVOKING or self.phase is RuntimePhase.INIT_FAILED:
            return self._refuse_transition(request, RuntimePhase.READY)
        if self._parked is not None and self._parked.open:
            return self._refuse_transition(request, RuntimePhase.READY)
        if self.phase is RuntimePhase.INITIALIZING:
            if not self.alive:  # killed before its Init ended: it waits for its end; no Init is reported
                self._parked = request
                return
            self.init_ms = (time.perf_counter() - self._started) * 1000.0
            self.phase = RuntimePhase.READY
            if self.state is EnvState.STARTING:
                self.transition(EnvState.READY)
            if not self._init.done():
                self._init.set_result(InitResult(True, self.init_ms))
        self.phase = RuntimePhase.READY
        if self._event is not None and self.state is EnvState.BUSY:
            self._deliver(request)
        else:
            self._parked = request

    def _deliver(self, request: RuntimeRequest) -> None:
        event = self._event
        assert event is not None
        self._event = None
        self._current_id = event.request_id
        self.phase = RuntimePhase.INVOKING
        headers = {
            "Lambda-Runtime-Aws-Request-Id": event.request_id,
            "Lambda-Runtime-Deadline-Ms": str(event.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": event.invoked_arn,
            "Lambda-Runtime-Trace-Id": event.trace_id or _trace_id(event.request_id),
        }
        if event.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(event.client_context)
        if event.tenant_id is not None:
            # What runtime interface clients read for context.tenant_id (AWS's C++ and Rust
            # clients: lambda-runtime-aws-tenant-id).
            headers["Lambda-Runtime-Aws-Tenant-Id"] = event.tenant_id
        if event.cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(event.cognito_identity)
        self._delivered_at = time.perf_counter()
        request.respond(200, event.payload, headers)

    def _answer(self, request: RuntimeRequest, request_id: str, kind: str) -> None:
        target = RuntimePhase.RESPONDED
        if self.phase is not RuntimePhase.INVOKING:
            return self._refuse_transition(request, target)
        if request_id != self._current_id:
            return request.respond(400, error_body("InvalidRequestID", "Invalid request ID"))
        duration_ms = (time.perf_counter() - self._delivered_at) * 1000.0
        if kind == "response":
            mode = request.headers.get(RESPONSE_MODE_HEADER)
            if mode is not None and mode != STREAMING_RESPONSE_MODE:
                self._responded(RawOutcome("error", error_body("Runtime.InvalidResponseModeHeader", f"Invalid response mode {mode!r}"), duration_ms))
                return request.respond(400, error_body("InvalidFunctionResponseMode", "Invalid function response mode"))
            if request.oversize:
                self._responded(RawOutcome("too_large", b"", duration_ms, self._peak_kb()))
                return request.respond(413, error_body(
                    "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."))
            request.respond(202, ACCEPTED_BODY)
            return self._responded(RawOutcome("result", bytes(request.body), duration_ms, self._peak_kb()))
        request.respond(202, ACCEPTED_BODY)
        self._responded(RawOutcome("error", _error_payload(request), duration_ms, self._peak_kb()))

    def _responded(self, outcome: RawOutcome) -> None:
        self._current_id = None
        self.phase = RuntimePhase.RESPONDED
        self._finish_call(outcome)

    def _init_error(self, request: RuntimeRequest) -> None:
        if self.phase is not RuntimePhase.INITIALIZING:
            return self._refuse_transition(request, RuntimePhase.INIT_FAILED)
        self.phase = RuntimePhase.INIT_FAILED
        request.respond(202, ACCEPTED_BODY)
        # "Runtime should exit after reporting the error. Error will be served in response
        # to the first invoke" (the Runtime API page): the invoker kills and replaces it.
        if not self._init.done():
            self.init_ms = (time.perf_counter() - self._started) * 1000.0
            self._init.set_result(InitResult(False, self.init_ms, _error_payload(request)))

    def _mark_dead(self) -> None:
        if self.state is EnvState.DEAD:
            return
        self.state = EnvState.DEAD
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self._init.done():
            self._init.set_result(InitResult(False))
        if self._drain_output is not None:
            self._drain_output()
        call, self._call = self._call, None
        if call is not None and not call.done():
            call.set_result(RawOutcome("died"))
        self._parked = None
        self.api.close()


def _error_payload(request: RuntimeRequest) -> bytes:
    """The error object the caller gets: the runtime's body when it is one, else one made
    from the Lambda-Runtime-Function-Error-Type header."""
    header_type = request.headers.get(ERROR_TYPE_HEADER) or "Runtime.Unknown"
    if not request.oversize:
        try:
            value = json.loads(bytes(request.body)) if request.body else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            if "errorType" not in value:
                value["errorType"] = header_type
            return json.dumps(value).encode()
    return json.dumps({"errorMessage": "", "errorType": header_type}).encode()


def _trace_id(request_id: str) -> str:
    """An X-Ray trace header for the invocation (the runtime sets _X_AMZN_TRACE_ID from it):
    Root=1-<8 hex of epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0."""
    hexes = request_id.replace("-", "")
    return f"Root=1-{int(time.time()):08x}-{hexes[:24]};Parent={hexes[16:32]};Sampled=0"


def read_peak_kb(pid: int) -> int:
    """VmHWM (the process's peak resident memory) from /proc, in KiB."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1])
    return 0
