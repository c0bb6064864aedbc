"""The poller process, seen from the control plane: the `PollerHost` the SourceManager uses.

Why a process: while a mapping drains a queue at full speed, its batches (a ReceiveMessage,
an invoke and a DeleteMessageBatch each, ~1,000 a second) shared the control plane's event
loop with every other invocation, and an unrelated function's p99 grew several times
(docs/benchmarks.md, "Event sources"). A thread with its own loop would not help: it takes
the GIL, and a thread that wants it back may wait a whole switch interval (5 ms). So the
pollers run in a child process (sources/poller_host.py) with their own loop and backend
client, and only the invocation itself, admission and the environment round trip, runs
here: the child asks for it over a channel (sources/channel.py), answered by the
`LambdaInvokePort`, so every concurrency rule, throttle and metric is the control plane's.

Lifecycle (an explicit state machine over a supervised child), in `_TRANSITIONS`:
NOT_STARTED -> STARTING -> RUNNING -> STOPPING -> STOPPED, started on the first
`start_poller`. A child that exits on its own (end of file on the channel) takes it back to
NOT_STARTED at once; it is reaped, reported as a background error, and the manager starts
its pollers again in a new one. `close()` asks it to stop its pollers, then waits for it to
exit, kills it after STOP_TIMEOUT_S, and reaps it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from emulator.child_env import child_environment
from emulator.sources.base import InvokePort
from emulator.sources.channel import Channel, ChannelClosed, RemoteFailure
from emulator.sources.checkpoints import StreamCheckpoints
from emulator.sources.invoke_port import serve_invoke_port
from emulator.sources.mapping import EventSourceMapping
from emulator.sources.poller_host import STOP_TIMEOUT_S as CHILD_STOP_TIMEOUT_S, PollerHostSettings

log = logging.getLogger("emulator.sources.process")

# close(): how long the child may take to stop its pollers and exit before it is killed.
STOP_TIMEOUT_S = CHILD_STOP_TIMEOUT_S + 5.0
# How long a child whose channel closed may take to exit before it is killed.
EXIT_GRACE_S = 2.0
EXIT_POLL_S = 0.01
# /_emulator/metrics asks the child for its counters; a child too busy to answer within this
# long must not hang the endpoint (its mappings then show no live counters, with a warning).
SNAPSHOT_TIMEOUT_S = 5.0
# The child runs at a lower CPU priority than the control plane, the same as the moto child
# (emulator/backend/moto_process.py): when a drain keeps both CPUs busy, an invocation
# arriving at the control plane runs first, and the pollers and moto, the two halves of the
# drain, wait alike. Measured side by side (docs/benchmarks.md, "Event sources"), nice 10
# gave the lowest draining/quiet p99 ratio and no slower a drain than 0 or 5.
POLLER_NICE = 10


def poller_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The poller process's whole environment: enough to run Python, no HOME (it reads no
    user file) and no AWS configuration (it signs nothing: the backend is local)."""
    return child_environment(environ, settings={"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})


class PollerProcessState(Enum):
    NOT_STARTED = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


_TRANSITIONS: dict[PollerProcessState, frozenset[PollerProcessState]] = {
    PollerProcessState.NOT_STARTED: frozenset({PollerProcessState.STARTING, PollerProcessState.STOPPED}),
    # STARTING -> NOT_STARTED: the child could not be spawned, or died at once.
    PollerProcessState.STARTING: frozenset({PollerProcessState.RUNNING, PollerProcessState.NOT_STARTED}),
    # RUNNING -> NOT_STARTED: it died; the next start_poller starts a new one.
    PollerProcessState.RUNNING: frozenset({PollerProcessState.STOPPING, PollerProcessState.NOT_STARTED}),
    PollerProcessState.STOPPING: frozenset({PollerProcessState.STOPPED}),
    PollerProcessState.STOPPED: frozenset(),
}


class IllegalPollerProcessTransition(RuntimeError):
    def __init__(self, current: PollerProcessState, target: PollerProcessState) -> None:
        super().__init__(f"poller process: cannot go from {current.value} to {target.value}")


class PollerProcessError(RuntimeError):
    """An unexpected exception in the poller process; `remote_traceback` says where."""

    def __init__(self, summary: str, remote_traceback: str) -> None:
        super().__init__(f"in the poller process: {summary}")
        self.remote_traceback = remote_traceback


class PollerProcessDied(RuntimeError):
    """The poller process exited while its pollers were running."""


@dataclass(frozen=True)
class PollerProcessEvents:
    """What the poller process tells its owner (the SourceManager)."""

    report_error: Callable[[BaseException], None]
    processing_result: Callable[[str, str], None]  # (mapping UUID, LastProcessingResult)
    died: Callable[[], None]  # its pollers are gone: start them again


class PollerProcess:
    def __init__(self, settings: PollerHostSettings, functions: InvokePort, events: PollerProcessEvents) -> None:
        self.settings = settings
        self.functions = functions
        self.events = events
        self.state = PollerProcessState.NOT_STARTED
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._starting = asyncio.Lock()
        self._reapers: set[asyncio.Task[None]] = set()  # children that died, being reaped
        # Stream checkpoints as the child tells them: a new child resumes from these.
        self.checkpoints = StreamCheckpoints()

    # -- the PollerHost contract (sources/base.py) -------------------------------------------
    async def start_poller(self, mapping: EventSourceMapping, checkpoints: Mapping[str, Any] | None = None) -> None:
        if checkpoints is not None:
            self.checkpoints.replace(mapping.uuid, checkpoints)
        channel = await self._running()
        await channel.call("start", mapping, self.checkpoints.of(mapping.uuid))

    def forget(self, uuid: str) -> None:
        """The mapping is gone: its checkpoints too."""
        self.checkpoints.forget(uuid)

    async def stop_poller(self, uuid: str) -> dict[str, Any]:
        if self.state is not PollerProcessState.RUNNING or self._channel is None:
            return {}
        try:
            return await self._channel.call("stop", uuid)
        except ChannelClosed:
            return {}  # it died meanwhile: its pollers are gone

    async def snapshots(self) -> dict[str, dict[str, Any]]:
        if self.state is not PollerProcessState.RUNNING or self._channel is None:
            return {}
        try:
            return await asyncio.wait_for(self._channel.call("snapshots"), SNAPSHOT_TIMEOUT_S)
        except ChannelClosed:
            return {}
        except asyncio.TimeoutError:
            log.warning("poller process %s did not report its counters within %.0f s", self.pid, SNAPSHOT_TIMEOUT_S)
            return {}

    # -- lifecycle ---------------------------------------------------------------------------
    def _transition(self, target: PollerProcessState) -> None:
        if target not in _TRANSITIONS[self.state]:
            raise IllegalPollerProcessTransition(self.state, target)
        self.state = target

    async def _running(self) -> Channel:
        async with self._starting:
            if self.state is PollerProcessState.RUNNING and self._channel is not None:
                return self._channel
            if self.state is not PollerProcessState.NOT_STARTED:
                raise ChannelClosed(f"the poller process is {self.state.value}")
            self._transition(PollerProcessState.STARTING)
            try:
                channel = await self._spawn()
                if channel.closed:  # its end of file came first: it died at once
                    raise ChannelClosed("the poller process exited as it started")
            except BaseException:
                self._transition(PollerProcessState.NOT_STARTED)
                raise
            self._channel = channel
            self._transition(PollerProcessState.RUNNING)
            return channel

    async def _spawn(self) -> Channel:
        ours, theirs = socket.socketpair()
        settings = self.settings
        command = [sys.executable, "-m", "emulator.sources.poller_host", "--fd", str(theirs.fileno()),
                   "--settings", settings.to_json(), "--nice", str(POLLER_NICE)]
        try:
            # stdout is the CLI's (its first line is the URL); stderr is kept for a crash's traceback.
            # Its environment is the allow-list's (emulator/child_env.py): a handler can read
            # /proc/<pid>/environ of this process too, so none of the user's secrets go in.
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          pass_fds=(theirs.fileno(),), env=poller_environment(os.environ))
        except OSError as exc:
            ours.close()
            raise RuntimeError(f"cannot start the poller process: {exc}") from exc
        finally:
            theirs.close()
        self.pid = self._proc.pid
        notes = {"log": self._log, "error": self._error, "result": self.events.processing_result,
                 "checkpoint": self.checkpoints.advance}
        channel = Channel(serve_invoke_port(self.functions), notes, self._lost)
        await channel.connect(ours)
        log.debug("poller process %d started", self.pid)
        return channel

    def _lost(self, exc: BaseException | None) -> None:
        """End of file on the channel: expected while stopping, a death otherwise."""
        if self.state in (PollerProcessState.STOPPING, PollerProcessState.STOPPED):
            return
        proc, self._proc = self._proc, None
        had_pollers = self.state is PollerProcessState.RUNNING  # else it died while starting
        if had_pollers:
            self._channel = None
            self._transition(PollerProcessState.NOT_STARTED)  # the next start_poller starts a new one
        reaper = asyncio.ensure_future(self._bury(proc, had_pollers))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    async def _bury(self, proc: subprocess.Popen[bytes] | None, had_pollers: bool) -> None:
        status = await self._reap(proc, EXIT_GRACE_S) if proc is not None else None
        self.events.report_error(PollerProcessDied(f"the poller process exited (status {status})"
                                                   + ("; its pollers start again in a new one" if had_pollers else "")))
        if had_pollers:
            self.events.died()

    async def close(self) -> None:
        """Stop the pollers and the process (reaped; killed if it does not exit in time)."""
        async with self._starting:
            if self.state is PollerProcessState.STOPPED:
                return
            if self.state is PollerProcessState.NOT_STARTED:
                await asyncio.gather(*self._reapers, return_exceptions=True)
                self._transition(PollerProcessState.STOPPED)
                return
            self._transition(PollerProcessState.STOPPING)
        channel, proc = self._channel, self._proc
        if channel is not None:
            try:
                await asyncio.wait_for(channel.call("shutdown"), STOP_TIMEOUT_S)
            except (ChannelClosed, RemoteFailure, asyncio.TimeoutError) as exc:
                log.warning("poller process %s did not stop cleanly: %s", self.pid, exc or type(exc).__name__)
            channel.close()
        if proc is not None:
            await self._reap(proc, EXIT_GRACE_S)
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._transition(PollerProcessState.STOPPED)

    @staticmethod
    async def _reap(proc: subprocess.Popen[bytes], grace_s: float) -> int:
        """Wait up to `grace_s` for the exit, then kill; always reaps. Returns the status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(EXIT_POLL_S)
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    # -- notes from the child ----------------------------------------------------------------
    @staticmethod
    def _log(name: str, level: int, text: str) -> None:
        logging.getLogger(name).log(level, "%s", text)

    def _error(self, summary: str, remote_traceback: str) -> None:
        self.events.report_error(PollerProcessError(summary, remote_traceback))
