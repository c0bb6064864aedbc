"""The `process-runtime-api` execution backend: a runtime interface client as a local process.

Each environment is a plain process running a standard runtime interface client against
the Runtime API the control plane serves for it (emulator/execution/runtime_api.py):
Python's `awslambdaric`, Node's `aws-lambda-ric`, a custom runtime's `bootstrap`, or any
command given with `--runtime-command`. It is forked by the fork server and then execs the
client (runtimes/exec_runtime.py), so it keeps every guarantee of a forked environment:
memory limit, its processes killed with it, nothing left after the emulator dies.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

from emulator.execution.runtime_api_env import RuntimeApiEnvironment, read_peak_kb
from emulator.functions.registry import FunctionVersion
from emulator.execution.logsink import LogSink
from emulator.template.specs import FunctionSpec

log = logging.getLogger("emulator.execution.process_backend")

# The loopback address the Runtime API listens on for local processes.
RUNTIME_API_HOST = "127.0.0.1"
# A custom runtime is an executable named `bootstrap` in the function's code (or a layer):
# https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html
CUSTOM_RUNTIME_BOOTSTRAP = "bootstrap"
# The Node.js runtime interface client's command, as npm installs it (package aws-lambda-ric).
NODE_RIC_COMMAND = "aws-lambda-ric"
_READ_CHUNK = 65536


class RuntimeCommandError(ValueError):
    """No command is known to run this runtime as a local process; the message says what to do."""


def runtime_command(spec: FunctionSpec, python: str, overrides: Mapping[str, tuple[str, ...]],
                    which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The argv that runs `spec`'s runtime interface client (the handler is its argument,
    as in AWS's base images' CMD), or RuntimeCommandError."""
    runtime = spec.runtime
    if runtime in overrides:
        return [*overrides[runtime], spec.handler]
    if runtime.startswith("provided"):
        bootstrap = Path(spec.code_dir) / CUSTOM_RUNTIME_BOOTSTRAP
        if not bootstrap.is_file():
            raise RuntimeCommandError(f"function {spec.name}: runtime {runtime} needs an executable "
                                      f"'{CUSTOM_RUNTIME_BOOTSTRAP}' in {spec.code_dir}")
        return [str(bootstrap)]
    if runtime.startswith("python"):
        return [python, "-m", "awslambdaric", spec.handler]
    if runtime.startswith("nodejs"):
        found = which(NODE_RIC_COMMAND) or _node_modules_bin(Path(spec.code_dir))
        if found is None:
            raise RuntimeCommandError(
                f"function {spec.name}: runtime {runtime} runs with Node's runtime interface client: "
                f"`npm install aws-lambda-ric` (in the function's folder or globally), or give "
                f"--runtime-command {runtime}='node /path/to/aws-lambda-ric/index.mjs'")
        return [found, spec.handler]
    raise RuntimeCommandError(f"function {spec.name}: no local command is known for runtime {runtime}: "
                              f"give one with --runtime-command {runtime}='COMMAND', or use --execution container")


def _node_modules_bin(folder: Path) -> str | None:
    for parent in (folder, *folder.parents):
        candidate = parent / "node_modules" / ".bin" / NODE_RIC_COMMAND
        if candidate.is_file():
            return str(candidate)
    return None


class OutputReader:
    """Whole lines from a runtime's stdout/stderr pipe; `drain()` reads what is there now, so
    what a handler printed before it answered is logged before the invocation's END line."""

    def __init__(self, fd: int, write: Callable[[str], None]) -> None:
        self._fd = fd
        self._write = write
        self._partial = b""
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self.drain)

    def drain(self) -> None:
        if self._fd < 0:
            return
        while True:
            try:
                data = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                data = b""
            if not data:
                self.close()
                return
            data = self._partial + data
            cut = data.rfind(b"\n") + 1
            self._partial = data[cut:]
            if cut:
                self._write(data[:cut].decode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        if self._partial:
            self._write(self._partial.decode("utf-8", "replace"))
            self._partial = b""


class ProcessRuntimeApiBackend:
    """Runtime interface clients as local processes, forked through the fork server."""

    def __init__(self, factory: Any, logs: LogSink, commands: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.factory = factory  # the fork backend: it forks, reaps and reports exits
        self.logs = logs
        self.commands = dict(commands or {})
        self._ids = itertools.count(1)

    # Environments and refusals are counted by the fork backend, which holds their
    # descriptors and processes.
    environments = 0
    refused = 0

    async def start(self) -> None:
        return None  # the fork backend's fork server is started first

    def has_room(self) -> bool:
        return self.factory.has_room()

    def create_refused(self, function: str) -> None:
        self.factory.create_refused(function)

    def check(self, version: FunctionVersion) -> None:
        """At start-up: a runtime without a known command fails `emulator up`, with the fix."""
        from emulator.execution.backends import UnsupportedExecution

        try:
            self.command_for(version.spec)
        except RuntimeCommandError as exc:
            raise UnsupportedExecution(str(exc)) from None

    def command_for(self, spec: FunctionSpec) -> list[str]:
        return runtime_command(spec, self.factory.python_for(spec.runtime), self.commands)

    async def create(self, version: FunctionVersion, init_type: str = "on-demand") -> RuntimeApiEnvironment:
        argv = self.command_for(version.spec)
        log_stream = time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version.version}]{uuid.uuid4().hex}"
        output = self.logs.handler_output(version.name, version.spec.log_group, log_stream)
        env = RuntimeApiEnvironment(f"{version.name}-rapi-{next(self._ids)}", output)
        env.log_stream = log_stream
        spec = self.factory.environment_spec(version, init_type, log_stream)
        spec["env"]["AWS_LAMBDA_RUNTIME_API"] = await env.listen(RUNTIME_API_HOST)
        spec["exec"] = argv
        readers: list[OutputReader] = []
        try:
            pid = await self.factory.spawn_program(version, spec, env, lambda fd: readers.append(OutputReader(fd, env.output)))
        except BaseException:
            env.api.close()
            raise
        handle = _ProcessHandle(pid, readers[0])
        env.attach(handle.kill, memory_kb=handle.peak_kb, drain_output=handle.drain, pid=pid)
        env.exit_info.add_done_callback(lambda _: handle.release())
        return env

    async def close(self) -> None:
        return None  # the fork server ends every process it forked


class _ProcessHandle:
    """Kill (through a pidfd: a recycled PID is never hit), peak memory, output of one process."""

    def __init__(self, pid: int, output: OutputReader) -> None:
        self.pid = pid
        self.output = output
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self._pidfd = None  # already gone: its exit report follows

    def kill(self) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass

    def peak_kb(self) -> int:
        return read_peak_kb(self.pid)

    def drain(self) -> None:
        self.output.drain()

    def release(self) -> None:
        self.output.drain()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
