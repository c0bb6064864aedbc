"""One execution environment as the control plane sees it: a state machine over a socket.

STARTING -> READY <-> BUSY -> STOPPING -> DEAD, transitions in one place. The process itself
is a fork of the fork server (runtimes/forkserver.py); we talk to it with runtimes/protocol.py,
notice its death at once (socket EOF) and learn how it died from the fork server's report.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import signal
import socket
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from emulator.execution.log_tail import LogTail
from emulator.runtimes import protocol

if TYPE_CHECKING:
    from emulator.execution.backends import InvokeRequest

log = logging.getLogger("emulator.execution.environment")


class EnvState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    DEAD = "dead"


_TRANSITIONS: dict[EnvState, frozenset[EnvState]] = {
    EnvState.STARTING: frozenset({EnvState.READY, EnvState.STOPPING, EnvState.DEAD}),
    EnvState.READY: frozenset({EnvState.BUSY, EnvState.STOPPING, EnvState.DEAD}),
    EnvState.BUSY: frozenset({EnvState.READY, EnvState.STOPPING, EnvState.DEAD}),
    EnvState.STOPPING: frozenset({EnvState.DEAD}),
    EnvState.DEAD: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(slots=True)
class InitResult:
    ok: bool
    init_ms: float = 0.0
    error: bytes | None = None  # the AWS error object, when init reported one


@dataclass(slots=True)
class RawOutcome:
    """What came back from one invocation, before it is shaped into an HTTP response."""

    kind: str  # "result" | "error" | "too_large" | "timeout" | "died"
    payload: bytes = b""
    duration_ms: float = 0.0
    max_rss_kb: int = 0


class EnvironmentLifecycle:
    """What every kind of environment shares (the forked one below, the Runtime API's in
    runtime_api_env.py): the state machine, what the pool reads, Init's wait and log capture."""

    def __init__(self, env_id: str, on_log: Callable[[str], None]) -> None:
        self.env_id = env_id
        self.state = EnvState.STARTING
        self.pid: int | None = None
        self.generation = 0
        self.last_used = 0.0
        self.provisioned = False
        self.recycle = False  # to be replaced once idle (the fork server asked, or a config change)
        self.init_ms = 0.0
        self.log_stream = ""  # its CloudWatch Logs stream: YYYY/MM/DD/[version]id
        self._on_log = on_log
        self._log_capture: LogTail | None = None
        self._init: asyncio.Future[InitResult] | None = None

    def transition(self, new: EnvState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"environment {self.env_id}: {self.state.value} -> {new.value}")
        self.state = new

    async def wait_ready(self, timeout_s: float) -> InitResult | None:
        """None when init did not finish within `timeout_s` (the caller decides what follows)."""
        assert self._init is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._init), timeout_s)
        except asyncio.TimeoutError:
            return None

    def capture_logs(self, capture: LogTail | None) -> None:
        """Also collect handler output into `capture` (for LogType Tail) until the next result."""
        self._log_capture = capture

    def _stopping(self) -> None:
        """The first step of a kill: STOPPING, unless it is already stopping or dead."""
        if self.state is not EnvState.DEAD and self.state is not EnvState.STOPPING:
            self.transition(EnvState.STOPPING)


class ExecutionEnvironment(EnvironmentLifecycle, asyncio.Protocol):
    """Owns one environment process. Not reusable after DEAD."""

    def __init__(self, env_id: str, on_log: Callable[[str], None]) -> None:
        super().__init__(env_id, on_log)
        # Asks the fork server (its parent) to SIGKILL it, when no pidfd could be opened.
        self._kill_by_parent: Callable[[int], None] | None = None
        self._gone = False  # it had exited before a pidfd could be opened
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._call: asyncio.Future[RawOutcome] | None = None
        # The call in flight must end by loop time `_deadline_at`. One timer serves many calls
        # (creating and cancelling a uvloop timer per call cost ~1-2.7 us of the ~90 us the
        # control plane spends on a warm invoke): it is armed for `_timer.when()` and, when it
        # fires before the call in flight is due, armed again for that call's deadline
        # (emulator/api/fast_http.py does the same for its connections).
        self._deadline_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._pidfd: int | None = None
        self._loop = asyncio.get_running_loop()
        self.exit_info: asyncio.Future[dict[str, Any]] = self._loop.create_future()

    # -- lifecycle ---------------------------------------------------------------------
    async def attach(self, sock: socket.socket, pid: int, kill_by_parent: Callable[[int], None] | None = None) -> None:
        """Talk to process `pid` over `sock`; `kill_by_parent(pid)` asks its parent (the fork
        server) to kill it, for when no pidfd can be opened."""
        loop = asyncio.get_running_loop()
        self.pid = pid
        self._kill_by_parent = kill_by_parent
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd, self._gone = None, True  # already gone: the socket EOF reports it
        except OSError:
            # No pidfd (a kernel before 5.3: ENOSYS; no descriptor left: EMFILE): kill() then
            # asks the fork server, its parent, which knows the PID is still this process.
            self._pidfd = None
        self._init = loop.create_future()
        await loop.create_unix_connection(lambda: self, sock=sock)

    def kill(self) -> None:
        """SIGKILL the process (via its pidfd, or its parent, so a recycled PID is never hit)."""
        self._stopping()
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass
        elif not self._gone and self.pid is not None and self._kill_by_parent is not None and self.state is not EnvState.DEAD:
            self._kill_by_parent(self.pid)
        if self._transport is not None:
            self._transport.close()

    def stop(self) -> None:
        """Graceful stop of an idle environment: closing its socket ends its serve loop."""
        if self.state in (EnvState.READY, EnvState.STARTING):
            self.transition(EnvState.STOPPING)
        if self._transport is not None:
            self._transport.close()

    def on_exit(self, info: dict[str, Any]) -> None:
        if not self.exit_info.done():
            self.exit_info.set_result(info)
        self._mark_dead()

    # -- invocation --------------------------------------------------------------------
    def invoke(self, request: InvokeRequest, timeout_s: float, log_capture: LogTail | None) -> asyncio.Future[RawOutcome]:
        """Send one INVOKE frame; the future resolves with the outcome (never raises)."""
        frame = protocol.invoke_frame(
            request.request_id,
            request.deadline_ms,
            _json_string(request.invoked_arn),
            "null" if request.client_context is None else json.dumps(request.client_context),
            request.payload,
            request.trace_id,
            None if request.tenant_id is None else json.dumps(request.tenant_id),
        )
        loop = self._loop
        self.transition(EnvState.BUSY)
        call = loop.create_future()
        self._call = call
        self._log_capture = log_capture
        self._deadline_at = deadline = loop.time() + timeout_s
        if self._timer is None or self._timer.when() > deadline:
            self._arm_timer(deadline)
        assert self._transport is not None
        self._transport.write(frame)
        return call

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        assert self._timer is not None
        fired_at, self._timer = self._timer.when(), None
        if self._call is None:
            return  # no call in flight: the next one arms its own
        if self._deadline_at > fired_at:
            self._arm_timer(self._deadline_at)  # armed for an earlier call: this one is due later
            return
        call, self._call = self._call, None
        if not call.done():
            call.set_result(RawOutcome("timeout"))
        self.kill()

    def _finish_call(self, outcome: RawOutcome) -> None:
        call, self._call = self._call, None
        self._log_capture = None
        if self.state is EnvState.BUSY:
            self.transition(EnvState.READY)
        if call is not None and not call.done():
            call.set_result(outcome)

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        header = protocol.HEADER
        offset = 0
        size = len(buffer)
        while size - offset >= header.size:
            length, kind = header.unpack_from(buffer, offset)
            if length > protocol.MAX_FRAME:
                self._refuse(f"a frame of {length} bytes (the limit is {protocol.MAX_FRAME})")
                return
            end = offset + header.size + length
            if end > size:
                break
            try:
                self._dispatch(kind, memoryview(buffer)[offset + header.size : end])
            except (ValueError, KeyError, TypeError, IndexError) as exc:  # struct.error is a ValueError
                self._refuse(f"a malformed frame of kind {kind} ({type(exc).__name__})")
                return
            offset = end
        if offset:
            del buffer[:offset]

    def _refuse(self, what: str) -> None:
        """The environment broke the protocol (a handler wrote to our socket, or memory
        corruption): it cannot be trusted with another frame. Kill it, say why."""
        self._buffer.clear()
        line = f"environment {self.env_id} sent {what}: killed\n"
        log.error(line.rstrip())
        if self._log_capture is not None:
            self._log_capture.append(line)
        self.kill()

    def _dispatch(self, kind: int, body: memoryview) -> None:
        if kind == protocol.LOG:
            text = bytes(body).decode("utf-8", "replace")
            if self._log_capture is not None:
                self._log_capture.append(text)
            self._on_log(text)
        elif kind == protocol.RESULT or kind == protocol.ERROR:
            duration_ms, max_rss_kb, payload = protocol.split_result(body)
            self._finish_call(RawOutcome("result" if kind == protocol.RESULT else "error", payload, duration_ms, max_rss_kb))
        elif kind == protocol.RESULT_TOO_LARGE:
            duration_ms, max_rss_kb, _ = protocol.split_result(body)
            self._finish_call(RawOutcome("too_large", b"", duration_ms, max_rss_kb))
        elif kind == protocol.READY:
            meta, _ = protocol.split_meta(body)
            self.init_ms = meta["init_ms"]
            if self.state is EnvState.STARTING:
                self.transition(EnvState.READY)
            if self._init is not None and not self._init.done():
                self._init.set_result(InitResult(True, self.init_ms))
        elif kind == protocol.INIT_ERROR:
            if self._init is not None and not self._init.done():
                self._init.set_result(InitResult(False, error=bytes(body)))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._mark_dead()

    def _mark_dead(self) -> None:
        if self.state is EnvState.DEAD:
            return
        self.state = EnvState.DEAD
        self._cancel_timer()
        if self._init is not None and not self._init.done():
            self._init.set_result(InitResult(False))
        call, self._call = self._call, None
        if call is not None and not call.done():
            call.set_result(RawOutcome("died"))
        if self._transport is not None:
            self._transport.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    @property
    def alive(self) -> bool:
        return self.state is not EnvState.DEAD and self.state is not EnvState.STOPPING


@functools.lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    return json.dumps(text)
