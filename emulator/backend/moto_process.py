"""The moto server that backs every non-Lambda AWS API, run as a supervised child process.

A separate process rather than moto's ThreadedMotoServer: moto is GIL-bound and logs
every request (docs/measurements.md), so in-process it would slow the invoke path.
The child dies with us (PR_SET_PDEATHSIG) and is reaped on shutdown.

Supervised: its exit is noticed at once (a pidfd the event loop
watches), logged once, and the child is restarted on the same port after a backoff
(emulator/policy/restarts.py), up to a bounded number of restarts in a row. Meanwhile
`unavailable_reason()` says why calls cannot be served (the proxy answers them 503
ServiceUnavailable, the health endpoint reports the state); after a restart `on_restart`
runs (the server re-creates the template's resources: moto keeps everything in memory).

By default the child first applies emulator/moto_child/fast_sqs.py (an indexed SQS queue
model, a short path for SQS's JSON calls, keep-alive) and fast_kinesis.py: moto's own SQS
and Kinesis are O(queue or shard depth) per call. They are applied only on the moto
versions they were verified with; on any other, moto runs unpatched and a warning is
logged. What the child writes on stderr (why it could not start, a model that could not be
applied) goes to our log under `emulator.moto`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from enum import Enum
from typing import Any, Awaitable, Callable, Mapping

import aiohttp

from emulator.child_env import child_environment
from emulator.policy.restarts import RestartPolicy
from emulator.supervision import SupervisedChild, describe_exit, log_output, stop_process
from emulator.tasks import OwnedTasks

log = logging.getLogger("emulator.moto")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
# The backend runs at a lower CPU priority than the control plane and the handlers: when
# pollers keep both CPUs busy, moto (one GIL-bound process, most of the CPU of a queue
# drain) yields to the event loop instead of delaying it. Measured while a mapping drains
# 100,000 messages (2 CPUs, A/B runs): warm invoke p50 0.84 -> 0.68 ms, p99 6-6.6 -> 3-3.7 ms,
# and the drain itself 9,450 -> 11,200-11,750 msg/s (docs/benchmarks.md, "Event sources").
# Only matters when the CPUs are contended.
MOTO_NICE = 10


def moto_environment(environ: Mapping[str, str], home: str | None) -> dict[str, str]:
    """The moto child's whole environment (emulator/child_env.py) with moto's own settings
    (MOTO_*), never the user's secrets nor their AWS configuration files."""
    settings = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    if home is not None:
        settings["HOME"] = home
    return child_environment(environ, prefixes=("MOTO_",), settings=settings)


def moto_command(host: str, port: int, fast_sqs: bool = True, options: tuple[str, ...] = ()) -> list[str]:
    """argv of the moto child (emulator/moto_child/__main__.py); `options` are the child's own
    (`--time-scale=X`, `--dynamodb-capacity=on|off`)."""
    command = [sys.executable, "-m", "emulator.moto_child", f"--nice={MOTO_NICE}", *options]
    if not fast_sqs:
        command.append("--plain")
    return command + ["-H", host, "-p", str(port)]


def warn_if_unverified(fast_sqs: bool) -> None:
    from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, installed_moto_version, is_verified

    version = installed_moto_version()
    if fast_sqs and version is not None and not is_verified(version):
        log.warning("moto %s is not a version the fast SQS and Kinesis models and the SNS fan-out were verified with "
                    "(%s): the backend runs moto's own SQS and Kinesis, which slow down as queues and streams grow, "
                    "and SNS delivers nothing to Lambda", version,
                    ", ".join(VERIFIED_MOTO_VERSIONS))


def free_port(host: str = "127.0.0.1") -> int:
    family, kind, _, _, address = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind) as sock:  # "::" is IPv6
        sock.bind(address)
        return sock.getsockname()[1]


class BackendState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # exited unexpectedly; a new child is due or starting
    FAILED = "failed"  # exited too often in a row: not restarted again


_TRANSITIONS = {
    BackendState.STOPPED: {BackendState.STARTING},
    BackendState.STARTING: {BackendState.RUNNING, BackendState.STOPPED},
    BackendState.RUNNING: {BackendState.RESTARTING, BackendState.FAILED, BackendState.STOPPED},
    BackendState.RESTARTING: {BackendState.RUNNING, BackendState.RESTARTING, BackendState.FAILED, BackendState.STOPPED},
    BackendState.FAILED: {BackendState.STOPPED},
}


class IllegalBackendTransition(RuntimeError):
    pass


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, fast_sqs: bool = True,
                 policy: RestartPolicy | None = None, home: str | None = None, options: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port
        self.fast_sqs = fast_sqs
        self.options = options
        self.home = home
        # Run after each restart, once the new child answers (the server re-provisions).
        self.on_restart: Callable[[], Awaitable[None]] | None = None
        self.state = BackendState.STOPPED
        self.restarts = 0  # successful restarts since start()
        self.last_exit: str | None = None  # how the last child that died ended
        self._child = SupervisedChild("moto backend", policy)
        self._tasks = OwnedTasks("moto backend", lambda error: None)  # failures are logged by OwnedTasks

    @property
    def policy(self) -> RestartPolicy:
        return self._child.policy

    @property
    def _proc(self) -> subprocess.Popen | None:
        return self._child.proc

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self.state is BackendState.RUNNING else None

    def _transition(self, new: BackendState) -> None:
        if new is not self.state and new not in _TRANSITIONS[self.state]:
            raise IllegalBackendTransition(f"moto backend: {self.state.value} -> {new.value}")
        self.state = new

    # -- what the server, the proxy and the health endpoint read ---------------------------
    def describe(self) -> dict[str, Any]:
        return {"state": self.state.value, "pid": self.pid, "url": self.url, "restarts": self.restarts,
                "last_exit": self.last_exit}

    def unavailable_reason(self) -> str | None:
        """None while the backend serves; else why it cannot, for the caller's error message."""
        if self.state is BackendState.RUNNING:
            return None
        if self.state is BackendState.RESTARTING:
            return (f"The emulator's AWS backend (moto) exited unexpectedly ({self.last_exit}) and is being "
                    "restarted; its data (queues, messages, streams, tables) was lost and the template's "
                    "resources are created again once it is back. Retry shortly.")
        if self.state is BackendState.FAILED:
            return (f"The emulator's AWS backend (moto) exited unexpectedly ({self.last_exit}) "
                    f"after {self.policy.max_restarts} restarts in a row and is not restarted again: restart the emulator.")
        return f"The emulator's AWS backend (moto) is {self.state.value}."

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._transition(BackendState.STARTING)
        if self.port == 0:
            self.port = free_port(self.host)
        warn_if_unverified(self.fast_sqs)
        self._child.starting()
        try:
            proc = await self._launch()
        except BaseException:
            self._transition(BackendState.STOPPED)
            raise
        self._child.watch(proc, self._exited)
        self._transition(BackendState.RUNNING)

    async def _launch(self) -> subprocess.Popen:
        """Start a child on self.port and wait until it answers; RuntimeError if it cannot."""
        try:
            proc = subprocess.Popen(
                moto_command(self.host, self.port, self.fast_sqs, self.options),
                env=moto_environment(os.environ, self.home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Into our log: why it failed to start, a fast model that could not be applied.
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise RuntimeError(f"cannot start the moto server: {exc}") from exc
        reader = log_output(proc, log, "moto")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        try:
            async with aiohttp.ClientSession() as session:
                while True:
                    if proc.poll() is not None:
                        await asyncio.to_thread(reader.join, STOP_TIMEOUT_S)  # its reason is logged first
                        raise RuntimeError(
                            "the moto server exited at start-up (is moto[server] installed? is port "
                            f"{self.port} free? {describe_exit(proc.returncode)})"
                        )
                    try:
                        async with session.get(self.url + "/moto-api/", timeout=aiohttp.ClientTimeout(total=2)) as response:
                            if response.status < 500:
                                return proc
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        pass
                    if loop.time() > deadline:
                        raise RuntimeError(f"the moto server did not answer within {START_TIMEOUT_S:.0f} s")
                    await asyncio.sleep(0.05)
        except BaseException:
            await stop_process(proc, STOP_TIMEOUT_S)
            raise

    async def reset(self) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url + "/moto-api/reset") as response:
                await response.read()

    async def stop(self) -> None:
        if self.state is not BackendState.STOPPED:
            self._transition(BackendState.STOPPED)
        await self._tasks.cancel_all()  # a restart under way, and the child it started
        await self._child.stop(STOP_TIMEOUT_S)

    # -- supervision ------------------------------------------------------------------------
    def _exited(self, proc: subprocess.Popen) -> None:
        """The child exited (reaped) while we did not stop it."""
        if self.state not in (BackendState.RUNNING, BackendState.RESTARTING):
            return
        self.last_exit = describe_exit(proc.returncode)
        delay = self._child.restart_delay()
        if delay is None:
            self._transition(BackendState.FAILED)
            log.error("the moto backend (pid %d) exited unexpectedly (%s) after %d restarts in a row: not restarted "
                      "again; every call for it answers 503 ServiceUnavailable until the emulator is restarted",
                      proc.pid, self.last_exit, self.policy.max_restarts)
            return
        self._transition(BackendState.RESTARTING)
        log.error("the moto backend (pid %d) exited unexpectedly (%s): its data is lost; restarting it in %.1f s "
                  "(restart %d in a row, at most %d); calls for it answer 503 ServiceUnavailable meanwhile",
                  proc.pid, self.last_exit, delay, self._child.in_a_row, self.policy.max_restarts)
        self._tasks.spawn(self._restart(delay), "restart")

    async def _restart(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            self._child.starting()
            try:
                proc = await self._launch()
                break
            except RuntimeError as exc:
                next_delay = self._child.restart_delay()
                if next_delay is None:
                    self._transition(BackendState.FAILED)
                    log.error("the moto backend could not be restarted (%s): gave up after %d attempts in a row; "
                              "every call for it answers 503 ServiceUnavailable until the emulator is restarted",
                              exc, self.policy.max_restarts)
                    return
                log.warning("the moto backend could not be restarted (%s): trying again in %.1f s", exc, next_delay)
                delay = next_delay
        self._child.watch(proc, self._exited)  # a death while re-provisioning starts the next restart
        log.warning("the moto backend is back (pid %d); re-creating the template's resources", proc.pid)
        if self.on_restart is not None:
            try:
                await self.on_restart()
            except Exception as exc:  # the backend serves; what could not be re-created is said here
                log.error("after the moto backend restarted, re-creating the template's resources failed: %s", exc)
        if self._proc is not proc or self.state is not BackendState.RESTARTING:
            return  # it died meanwhile: _exited took over
        self.restarts += 1
        self._transition(BackendState.RUNNING)
        log.warning("the moto backend serves again (pid %d, restart %d)", proc.pid, self.restarts)

