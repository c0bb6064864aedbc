"""Control-plane side of the fork server (runtimes/forkserver.py) for one interpreter.

The fork server is started once with fork+exec; after that every new execution environment
is a fork of it, requested with a `spawn` datagram that carries the environment's socket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

from emulator import runtimes
from emulator.child_env import child_environment
from emulator.supervision import stop_process
from emulator.tasks import OwnedTasks

log = logging.getLogger("emulator.execution.forkserver_client")

START_TIMEOUT_S = 30.0
SPAWN_TIMEOUT_S = 30.0
# Longer than the fork server takes to end everything below it (SHUTDOWN_WAIT_S there).
STOP_TIMEOUT_S = 8.0
# The name our runtime package has inside the fork server and every environment: the
# control plane knows it as `emulator.runtimes`, but a handler must be free to have (and
# import) modules called `emulator` or `runtimes` of its own.
RUNTIME_PACKAGE = "_lambda_emulator_runtime"


class ForkServerError(RuntimeError):
    """The fork server could not be started or died."""


class ForkServerClient:
    """Owns one fork server and routes its exit reports to environments by PID."""

    def __init__(
        self,
        python: str,
        on_exit: Callable[[int, dict[str, Any]], None],
        memory_limits: str = "auto",
        on_recycle: Callable[[int], None] | None = None,
        cpu_model: str = "off",
    ) -> None:
        self.python = python
        self.memory_limits = memory_limits
        self.cpu_model = cpu_model
        self.cpu_mode = ""  # "cgroup-v1", "cgroup-v2", "off" or "unavailable" (cpu_note says why)
        self.cpu_note = ""
        self._on_recycle = on_recycle
        self._on_exit = on_exit
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._hello: asyncio.Future | None = None
        self._ids = itertools.count(1)
        self._send_lock = asyncio.Lock()
        self._later = OwnedTasks("fork server client", lambda error: None)  # kill requests behind a full socket
        self._path_dir: tempfile.TemporaryDirectory | None = None
        self.memory_mode = ""  # "cgroup-v1", "cgroup-v2", "watchdog" or "none" (README, "Memory")
        self.memory_note = ""
        self.memory_warning = False
        self.version = ""
        self.closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Only the runtime goes on the fork server's path, under a private name: a foreign
        # interpreter must not see the control plane's packages, and handlers must not see
        # ours (the environment also drops this folder from sys.path before user code runs).
        self._path_dir = tempfile.TemporaryDirectory(prefix="lambda-emulator-rt-")
        os.symlink(Path(runtimes.__file__).parent, Path(self._path_dir.name) / RUNTIME_PACKAGE)
        # The user's HOME, for a pyenv shim that finds its root there (handlers get their own).
        env = child_environment(os.environ, also=("HOME",),
                                settings={"PYTHONPATH": self._path_dir.name, "PYTHONUNBUFFERED": "1"})
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", f"{RUNTIME_PACKAGE}.forkserver", str(child.fileno()), self.memory_limits, self.cpu_model],
                pass_fds=[child.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
                cwd="/",
                # Out of the emulator's process group: a signal to the group (Ctrl-\, an IDE
                # stopping the run) must not kill the fork server before it ends the environments.
                start_new_session=True,
            )
        except OSError as exc:
            parent.close()
            raise ForkServerError(f"cannot start {self.python}: {exc}") from exc
        finally:
            child.close()
        parent.setblocking(False)
        self._sock = parent
        self._hello = loop.create_future()
        loop.add_reader(parent.fileno(), self._on_readable)
        try:
            hello = await asyncio.wait_for(self._hello, START_TIMEOUT_S)
        except (asyncio.TimeoutError, ForkServerError) as exc:
            self.abort()
            raise ForkServerError(f"the fork server for {self.python} did not start: {exc}") from None
        except BaseException:  # cancelled (shutdown during start-up): leave nothing behind
            self.abort()
            raise
        if hello.get("error"):
            self.abort()
            raise ForkServerError(hello["error"])
        self.memory_mode = hello.get("memory", "")
        self.memory_note = hello.get("memory_note", "")
        self.memory_warning = bool(hello.get("memory_warning"))
        self.cpu_mode = hello.get("cpu", "off")
        self.cpu_note = hello.get("cpu_note", "")
        self.version = hello.get("python", "")

    @property
    def cgroups(self) -> bool:
        return self.memory_mode.startswith("cgroup")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def spawn(self, spec: dict[str, Any], env_sock: socket.socket | None, output_fd: int | None = None) -> int:
        """Fork a new environment that will talk over `env_sock` (and write its fd 1 and 2
        to `output_fd`); returns its PID. A spec with "exec" (a program that talks the
        Runtime API: runtimes/exec_runtime.py) has no socket, only the output pipe."""
        fds = [fd for fd in (env_sock.fileno() if env_sock is not None else None, output_fd) if fd is not None]
        if self.closed or self._sock is None:
            raise ForkServerError("the fork server is not running")
        request_id = f"env-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = json.dumps({"op": "spawn", "id": request_id, "spec": spec}).encode()
        try:
            # One sender at a time: when the fork server is busy forking, the socket fills and
            # senders wait for it to drain, and the loop keeps only one writer callback per fd.
            async with self._send_lock:
                while True:
                    if self._sock is None:
                        raise ForkServerError("the fork server is not running")
                    try:
                        socket.send_fds(self._sock, [message], fds)
                        break
                    except BlockingIOError:
                        await self._wait_writable()
            reply = await asyncio.wait_for(future, SPAWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise ForkServerError(f"the fork server did not fork within {SPAWN_TIMEOUT_S:.0f} s") from None
        except OSError as exc:
            self.closed = True  # the peer is gone (its EOF may not have been read yet)
            raise ForkServerError(f"fork server unreachable: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
        if reply.get("op") != "spawned":
            raise ForkServerError(reply.get("error", "spawn failed"))
        return int(reply["pid"])

    def kill(self, pid: int) -> None:
        """Ask the fork server, the environment's parent, to SIGKILL `pid`: for an environment
        whose pidfd could not be opened (environment.py). Best effort: a datagram queued
        behind a full socket is sent once it drains."""
        if self.closed or self._sock is None:
            return
        message = json.dumps({"op": "kill", "pid": pid}).encode()
        try:
            self._sock.send(message)
        except BlockingIOError:
            self._later.spawn(self._send_when_writable(message), f"kill {pid}")
        except OSError:
            pass  # the fork server is gone, and every environment with it

    async def _send_when_writable(self, message: bytes) -> None:
        async with self._send_lock:
            while self._sock is not None:
                try:
                    self._sock.send(message)
                    return
                except BlockingIOError:
                    await self._wait_writable()
                except OSError:
                    return

    async def _wait_writable(self) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self._sock.fileno()  # type: ignore[union-attr]
        loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._on_dead()
                return
            message = json.loads(data)
            op = message.get("op")
            if op == "exited":
                self._on_exit(int(message["pid"]), message)
            elif op == "recycle" and self._on_recycle is not None:
                self._on_recycle(int(message["pid"]))
            elif op in ("spawned", "spawn_failed"):
                future = self._pending.get(message["id"])
                if future is not None and not future.done():
                    future.set_result(message)
            elif op == "hello" and self._hello is not None and not self._hello.done():
                self._hello.set_result(message)

    def _on_dead(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
        error = ForkServerError("the fork server exited")
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(error)
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(error)
        if not self.closed:
            log.error("fork server for %s exited unexpectedly", self.python)
        self.closed = True

    def abort(self) -> None:
        """Synchronous teardown for failed or cancelled start-ups."""
        self.closed = True
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except (ValueError, OSError, RuntimeError):
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        if self._path_dir is not None:
            self._path_dir.cleanup()
            self._path_dir = None

    async def close(self) -> None:
        """Closing the socket makes the fork server kill and reap every environment, then exit."""
        self.closed = True
        await self._later.cancel_all()
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except (ValueError, OSError):
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            await stop_process(self._proc, STOP_TIMEOUT_S, terminate=False)  # the closed socket asked it to exit
        if self._path_dir is not None:
            self._path_dir.cleanup()
            self._path_dir = None

