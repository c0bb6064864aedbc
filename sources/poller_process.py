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

Lifecycle (an explicit state machine over a supervised child, emulator/supervision.py), in
`_TRANSITIONS`: NOT_STARTED -> STARTING -> RUNNING -> STOPPING -> STOPPED, started on the
first `start_poller`. A child that exits on its own (end of file on the channel) takes it
back to NOT_STARTED at once; it is reaped, reported as a background error, and the manager
starts its pollers again in a new one, which is started after the restart policy's delay
(emulator/policy/restarts.py, as for the moto backend): a child that dies again and again
is restarted ever later, then given up on (FAILED; its mappings are no longer polled, which
is reported). `close()` asks it to stop its pollers, then waits for it to exit, kills it
after STOP_TIMEOUT_S, and reaps it.
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

from emulator.backend.moto_process import MOTO_NICE
from emulator.child_env import child_environment
from emulator.policy.restarts import RestartPolicy
from emulator.supervision import SupervisedChild, describe_exit, stop_process
from emulator.tasks import OwnedTasks
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
# /_emulator/metrics asks the child for its counters; a child too busy to answer within this
# long must not hang the endpoint (its mappings then show no live counters, with a warning).
SNAPSHOT_TIMEOUT_S = 5.0
# The child runs at the same lower CPU priority as the moto child
# (emulator/backend/moto_process.py): when a drain keeps both CPUs busy, an invocation
# arriving at the control plane runs first, and the pollers and moto, the two halves of the
# drain, wait alike. Measured side by side (docs/benchmarks.md, "Event sources"), nice 10
# gave the lowest draining/quiet p99 ratio and no slower a drain than 0 or 5.
POLLER_NICE = MOTO_NICE


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
    FAILED = "failed"  # died too often in a row: not started again


_TRANSITIONS: dict[PollerProcessState, frozenset[PollerProcessState]] = {
    PollerProcessState.NOT_STARTED: frozenset({PollerProcessState.STARTING, PollerProcessState.STOPPED}),
    # STARTING -> NOT_STARTED: the child could not be spawned, or died at once (-> FAILED: too often).
    PollerProcessState.STARTING: frozenset({PollerProcessState.RUNNING, PollerProcessState.NOT_STARTED,
                                            PollerProcessState.FAILED}),
    # RUNNING -> NOT_STARTED: it died; the next start_poller starts a new one, after the restart delay.
    PollerProcessState.RUNNING: frozenset({PollerProcessState.STOPPING, PollerProcessState.NOT_STARTED,
                                           PollerProcessState.FAILED}),
    PollerProcessState.STOPPING: frozenset({PollerProcessState.STOPPED}),
    PollerProcessState.STOPPED: frozenset(),
    PollerProcessState.FAILED: frozenset({PollerProcessState.STOPPED}),
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


class PollerProcessFailed(RuntimeError):
    """The poller process died too often in a row and is not started again."""


@dataclass(frozen=True)
class PollerProcessEvents:
    """What the poller process tells its owner (the SourceManager)."""

    report_error: Callable[[BaseException], None]
    processing_result: Callable[[str, str], None]  # (mapping UUID, LastProcessingResult)
    died: Callable[[], None]  # its pollers are gone: start them again


class PollerProcess:
    def __init__(self, settings: PollerHostSettings, functions: InvokePort, events: PollerProcessEvents,
                 policy: RestartPolicy | None = None) -> None:
        self.settings = settings
        self.functions = functions
        self.events = events
        self.state = PollerProcessState.NOT_STARTED
        self.pid: int | None = None
        self._child = SupervisedChild("poller process", policy)
        self._not_before = 0.0  # loop time before which no new child starts (the restart delay)
        self._gave_up = False  # died too often in a row: FAILED
        self._channel: Channel | None = None
        self._starting = asyncio.Lock()
        self._closing = asyncio.Event()
        self._reapers = OwnedTasks("poller process reaper", events.report_error)  # children that died
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

    @property
    def policy(self) -> RestartPolicy:
        return self._child.policy

    @policy.setter
    def policy(self, policy: RestartPolicy) -> None:
        self._child.policy = policy

    async def _running(self) -> Channel:
        async with self._starting:
            if self.state is PollerProcessState.RUNNING and self._channel is not None:
                return self._channel
            if self.state is PollerProcessState.FAILED:
                raise PollerProcessFailed(f"the poller process died {self.policy.max_restarts + 1} times in a row "
                                          "and is not started again: restart the emulator")
            if self.state is not PollerProcessState.NOT_STARTED:
                raise ChannelClosed(f"the poller process is {self.state.value}")
            await self._restart_delay()
            self._transition(PollerProcessState.STARTING)
            self._child.starting()
            channel: Channel | None = None
            try:
                channel = await self._spawn()
                if channel.closed:  # its end of file came first: it died at once (_lost counted it)
                    raise ChannelClosed("the poller process exited as it started")
            except BaseException as exc:
                if channel is None and not isinstance(exc, asyncio.CancelledError):
                    self._schedule_restart()  # it could not be spawned: a failed attempt counts as a death
                self._transition(PollerProcessState.FAILED if self._gave_up else PollerProcessState.NOT_STARTED)
                raise
            self._channel = channel
            self._transition(PollerProcessState.RUNNING)
            return channel

    async def _restart_delay(self) -> None:
        """Wait out the restart delay after a death (cut short by close())."""
        delay = self._not_before - asyncio.get_running_loop().time()
        if delay > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), delay)
            except asyncio.TimeoutError:
                pass
        if self._closing.is_set():
            raise ChannelClosed("the poller process is stopping")

    def _schedule_restart(self) -> float | None:
        """A death now: the delay before the next child may start; None when it is given up on."""
        delay = self._child.restart_delay()
        if delay is None:
            self._gave_up = True
        else:
            self._not_before = asyncio.get_running_loop().time() + delay
        return delay

    async def _spawn(self) -> Channel:
        ours, theirs = socket.socketpair()
        settings = self.settings
        command = [sys.executable, "-m", "emulator.sources.poller_host", "--fd", str(theirs.fileno()),
                   "--settings", settings.to_json(), "--nice", str(POLLER_NICE)]
        try:
            # stdout is the CLI's (its first line is the URL); stderr is kept for a crash's traceback.
            # Its environment is the allow-list's (emulator/child_env.py): a handler can read
            # /proc/<pid>/environ of this process too, so none of the user's secrets go in.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    pass_fds=(theirs.fileno(),), env=poller_environment(os.environ))
        except OSError as exc:
            ours.close()
            raise RuntimeError(f"cannot start the poller process: {exc}") from exc
        finally:
            theirs.close()
        # Its death is noticed as the end of its channel (after the last notes it sent).
        self._child.watch(proc, None)
        self.pid = proc.pid
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
        proc, self._child.proc = self._child.proc, None
        restart_in = self._schedule_restart()
        if self.state is PollerProcessState.RUNNING:  # else it died while starting: _running moves on
            self._channel = None
            # The next start_poller starts a new one (after the delay).
            self._transition(PollerProcessState.FAILED if self._gave_up else PollerProcessState.NOT_STARTED)
        self._reapers.spawn(self._bury(proc, restart_in), "reap")

    async def _bury(self, proc: subprocess.Popen[bytes] | None, restart_in: float | None) -> None:
        """Reap a child that died, report it, and have the manager start its pollers again."""
        status = describe_exit(await stop_process(proc, EXIT_GRACE_S, terminate=False)) if proc is not None else "?"
        if restart_in is None:
            log.error("the poller process exited (%s) after %d restarts in a row: not started again; event source "
                      "mappings are not polled until the emulator is restarted", status, self.policy.max_restarts)
            self.events.report_error(PollerProcessFailed(f"the poller process exited ({status}) after "
                                                         f"{self.policy.max_restarts} restarts in a row"))
            return
        log.error("the poller process exited (%s): its pollers start again in a new one in %.1f s (restart %d in a "
                  "row, at most %d)", status, restart_in, self._child.in_a_row, self.policy.max_restarts)
        self.events.report_error(PollerProcessDied(f"the poller process exited ({status}); its pollers start again "
                                                   "in a new one"))
        self.events.died()

    async def close(self) -> None:
        """Stop the pollers and the process (reaped; killed if it does not exit in time)."""
        self._closing.set()  # a restart waiting out its delay gives up
        async with self._starting:
            if self.state is PollerProcessState.STOPPED:
                return
            if self.state in (PollerProcessState.NOT_STARTED, PollerProcessState.FAILED):
                await self._child.stop(EXIT_GRACE_S)  # one whose start was cancelled
                await asyncio.gather(*self._reapers, return_exceptions=True)
                self._transition(PollerProcessState.STOPPED)
                return
            self._transition(PollerProcessState.STOPPING)
        channel = self._channel
        if channel is not None:
            try:
                await asyncio.wait_for(channel.call("shutdown"), STOP_TIMEOUT_S)
            except (ChannelClosed, RemoteFailure, asyncio.TimeoutError) as exc:
                log.warning("poller process %s did not stop cleanly: %s", self.pid, exc or type(exc).__name__)
            channel.close()
        await self._child.stop(EXIT_GRACE_S, terminate=False)  # it exits at the end of its channel
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._transition(PollerProcessState.STOPPED)

    # -- notes from the child ----------------------------------------------------------------
    @staticmethod
    def _log(name: str, level: int, text: str) -> None:
        logging.getLogger(name).log(level, "%s", text)

    def _error(self, summary: str, remote_traceback: str) -> None:
        self.events.report_error(PollerProcessError(summary, remote_traceback))
