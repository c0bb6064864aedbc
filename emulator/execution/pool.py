"""Execution environments per function version: creating them (cold) and reusing them (warm)."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from typing import Any

from emulator.execution.backends import Environment, ExecutionBackend
from emulator.execution.environment import EnvState, ExecutionEnvironment
from emulator.execution.forkserver_client import ForkServerClient, ForkServerError
from emulator.functions.registry import FunctionVersion
from emulator.execution.logsink import LogSink
from emulator.execution.platform_log import application_filter

log = logging.getLogger("emulator.execution.pool")

_RUNTIME_RE = re.compile(r"^python(3)\.(\d+)$")
DUMMY_CREDENTIALS = {
    # Handlers get credentials that can never reach real AWS (README: "Safe by default").
    "AWS_ACCESS_KEY_ID": "AKIAEMULATORLOCAL000",
    "AWS_SECRET_ACCESS_KEY": "emulator-local-secret-key-not-valid-in-aws",
    "AWS_SESSION_TOKEN": "emulator-local-session-token",
}
# How often the "no open files left" warning may repeat while environments are refused.
DESCRIPTOR_WARNING_INTERVAL_S = 10.0
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class EnvironmentLimitReached(RuntimeError):
    """No open files are left for another environment: the invocation is throttled."""


class EnvironmentFactory:
    """Starts one fork server per interpreter and forks environments from it."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str,
        logs: LogSink,
        interpreter: str = "auto",
        max_environments: int | None = None,
        home: str | None = None,
        memory_limits: str = "auto",
        cpu_model: str = "off",
    ) -> None:
        self.region = region
        self.cpu_model = cpu_model
        self.cpu_mode = ""  # how CPU follows memory, as the first fork server found it
        # Handlers' HOME: a private folder of this emulator, so that `~` (boto3's
        # ~/.aws/credentials, ~/.netrc, ...) never resolves to the user's home.
        self.home = home
        self.endpoint_url = endpoint_url
        self.logs = logs
        self.interpreter = interpreter
        self.memory_limits = memory_limits
        self._servers: dict[str, ForkServerClient] = {}
        self._starting: dict[str, asyncio.Task] = {}
        self._by_pid: dict[int, ExecutionEnvironment] = {}
        self._early_exits: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._warned: set[str] = set()
        self.memory_mode = ""  # how MemorySize is enforced, as the first fork server found it
        # The descriptor budget (emulator/execution/host_limits.py): environments alive or
        # being created never exceed it.
        self.max_environments = max_environments
        self._creating = 0
        self._refused = 0
        self._last_refusal_log = float("-inf")

    def python_for(self, runtime: str) -> str:
        """A python3.X interpreter matching the runtime, else our own (warned once)."""
        match = _RUNTIME_RE.match(runtime)
        own = sys.executable
        if match is None or int(match.group(2)) == sys.version_info.minor or self.interpreter == "own":
            return own
        found = shutil.which(f"python3.{match.group(2)}")
        if found:
            return found
        if runtime not in self._warned:
            self._warned.add(runtime)
            log.warning(
                "no %s interpreter found on PATH: running %s functions with Python %d.%d",
                runtime, runtime, sys.version_info.major, sys.version_info.minor,
            )
        return own

    @property
    def cgroups(self) -> bool:
        return self.memory_mode.startswith("cgroup")

    async def start(self) -> None:
        """Start the fork server of our own interpreter now rather than at the first cold
        start: it sweeps what a killed emulator left behind, and a memory-limit setting it
        cannot honour fails `emulator up` instead of the first invocation."""
        await self._server_for_python(sys.executable, f"python3.{sys.version_info.minor}")

    async def server_for(self, runtime: str) -> ForkServerClient:
        return await self._server_for_python(self.python_for(runtime), runtime)

    async def _server_for_python(self, python: str, runtime: str) -> ForkServerClient:
        server = self._servers.get(python)
        if server is not None and not server.closed:
            return server
        if server is not None:
            # Its template died: reap it, close its socket and remove its folder before
            # starting another (no zombies, nothing leaked).
            self._servers.pop(python, None)
            await server.close()
        task = self._starting.get(python)
        if task is None:
            task = asyncio.ensure_future(self._start_server(python, runtime))
            self._starting[python] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(python, None)

    async def _start_server(self, python: str, runtime: str) -> ForkServerClient:
        server = ForkServerClient(python, self._on_exit, self.memory_limits, self._on_recycle, self.cpu_model)
        try:
            await server.start()
        except Exception:
            if python == sys.executable:
                raise
            log.warning("could not start %s for %s; falling back to %s", python, runtime, sys.executable)
            # Share (or start) our own interpreter's template, and remember the fallback under
            # the failed interpreter too: otherwise every later cold start would retry it and
            # start yet another template, replacing (and leaking) the one already running.
            server = await self._server_for_python(sys.executable, runtime)
        self._servers[python] = server
        if not self.memory_mode:
            self.memory_mode = server.memory_mode
            log.log(logging.WARNING if server.memory_warning else logging.INFO, "memory limits: %s", server.memory_note or server.memory_mode)
        if not self.cpu_mode and self.cpu_model != "off":
            self.cpu_mode = server.cpu_mode
            if server.cpu_mode == "unavailable":
                log.warning("--cpu-model proportional: CPU cannot be capped in proportion to memory here (%s); "
                            "environments run uncapped and durations are unscaled", server.cpu_note)
            else:
                log.info("CPU in proportion to memory (1,769 MB = 1 vCPU): %s", server.cpu_note)
        return server

    def _on_exit(self, pid: int, info: dict[str, Any]) -> None:
        env = self._by_pid.pop(pid, None)
        if env is None:
            self._early_exits[pid] = info
        else:
            env.on_exit(info)

    def _on_recycle(self, pid: int) -> None:
        env = self._by_pid.get(pid)
        if env is not None:
            env.recycle = True  # its pool replaces it once idle

    def environment_spec(self, version: FunctionVersion, init_type: str, log_stream: str) -> dict[str, Any]:
        spec = version.spec
        log_group = spec.log_group
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # Never read the developer's real profiles or credentials from ~/.aws.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            **DUMMY_CREDENTIALS,
        }
        if self.home is not None:
            env["HOME"] = self.home
        if spec.layers_dir is not None:
            # Lambda's PATH ends in /opt/bin and its LD_LIBRARY_PATH in /opt/lib: here the
            # function's merged layers stand in for /opt.
            # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
            env["PATH"] += f":{spec.layers_dir}/bin"
            env["LD_LIBRARY_PATH"] = f"{spec.layers_dir}/lib"
        # Lambda sets it so that X-Ray SDKs log, not raise, when they find no segment (same page).
        env["AWS_XRAY_CONTEXT_MISSING"] = "LOG_ERROR"
        env.update(spec.environment)
        # Variables Lambda reserves, which always win:
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": version.version,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            }
        )
        if spec.logging.log_format == "JSON":
            # What Lambda sets for advanced logging controls, read by its runtime (and by
            # Powertools' Logger): https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.logging.application_log_level or "INFO"
        return {
            "env": env,
            "task_root": str(spec.code_dir),
            "handler": spec.handler,
            "memory_mb": spec.memory_mb,
            "function_name": spec.name,
            "function_version": version.version,
            "log_group": log_group,
            "log_stream": log_stream,
            # The bootstrap puts the layers' python/ folders on sys.path (runtimes/bootstrap.py).
            "layers_dir": None if spec.layers_dir is None else str(spec.layers_dir),
            "runtime": spec.runtime,
        }

    @property
    def environments(self) -> int:
        """Environments whose descriptors the control plane holds (alive or being created)."""
        return len(self._by_pid) + self._creating

    @property
    def refused(self) -> int:
        """New environments refused for want of descriptors (each one a throttle)."""
        return self._refused

    def has_room(self) -> bool:
        return self.max_environments is None or self.environments < self.max_environments

    def create_refused(self, function: str) -> None:
        """A cold start gave up for want of descriptors: count and log it."""
        self._refuse(function)

    def refusal(self, function: str) -> EnvironmentLimitReached:
        """Count and log a refused cold start; the error to raise for it."""
        return self._refuse(function)

    def _refuse(self, function: str) -> EnvironmentLimitReached:
        self._refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= DESCRIPTOR_WARNING_INTERVAL_S:
            self._last_refusal_log = now
            log.warning(
                "%s: no open files left for another environment (%d environments, budget %s): throttled "
                "(%d so far). Raise the open-files hard limit (ulimit -Hn) to run more at once.",
                function, self.environments, self.max_environments, self._refused,
            )
        return EnvironmentLimitReached(function)

    async def create(self, version: FunctionVersion, init_type: str = "on-demand") -> ExecutionEnvironment:
        """Fork and attach a new environment; it runs Init on its own (see wait_ready).

        Raises EnvironmentLimitReached when the descriptor budget has no room for it."""
        if not self.has_room():
            raise self._refuse(version.name)
        self._creating += 1
        try:
            return await self._create(version, init_type)
        finally:
            self._creating -= 1

    async def _create(self, version: FunctionVersion, init_type: str) -> ExecutionEnvironment:
        server = await self.server_for(version.spec.runtime)
        log_stream = time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version.version}]{uuid.uuid4().hex}"
        spec = self.environment_spec(version, init_type, log_stream)
        group = version.spec.log_group
        on_log = self.logs.handler_output(version.name, group, log_stream)
        keep = application_filter(version.spec.logging)
        if keep is not None:  # JSON logs above INFO: Lambda filters the function's own lines
            write = on_log
            on_log = lambda text: (kept := keep(text)) and write(kept)  # noqa: E731
        env = ExecutionEnvironment(f"{version.name}-{next(self._ids)}", on_log)
        env.log_stream = log_stream
        try:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            if exc.errno in _OUT_OF_DESCRIPTORS:  # the budget's safety net: never a 500
                raise self._refuse(version.name) from None
            raise
        try:
            output_r, output_w = os.pipe()
        except OSError as exc:
            parent.close()
            child.close()
            if exc.errno in _OUT_OF_DESCRIPTORS:
                raise self._refuse(version.name) from None
            raise
        try:
            try:
                pid = await server.spawn(spec, child, output_w)
            except ForkServerError:
                if not server.closed:
                    raise
                # The template died just now (killed, or its interpreter crashed): once more
                # with a new one, as the next cold start would.
                server = await self.server_for(version.spec.runtime)
                pid = await server.spawn(spec, child, output_w)
        except BaseException:
            parent.close()
            os.close(output_r)
            raise
        finally:
            child.close()
            os.close(output_w)
        await self._read_output(output_r, version.name, group, log_stream)
        early = self._early_exits.pop(pid, None)
        if early is None:
            self._by_pid[pid] = env
        await env.attach(parent, pid, server.kill)
        if early is not None:
            env.on_exit(early)
        return env

    async def spawn_program(self, version: FunctionVersion, spec: dict[str, Any], env: Any, on_output: Any) -> int:
        """Fork an environment that execs `spec["exec"]` (runtimes/exec_runtime.py) with the
        guarantees of a forked one; its output goes to `on_output(fd)`, its exit report to
        `env.on_exit`. Counted in this factory's environments (its descriptors are ours)."""
        if not self.has_room():
            raise self._refuse(version.name)
        self._creating += 1
        try:
            # Any fork server will do, the program replaces it: ours is always running.
            server = await self._server_for_python(sys.executable, f"python3.{sys.version_info.minor}")
            try:
                output_r, output_w = os.pipe()
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    raise self._refuse(version.name) from None
                raise
            try:
                pid = await server.spawn(spec, None, output_w)
            except BaseException:
                os.close(output_r)
                raise
            finally:
                os.close(output_w)
            on_output(output_r)
            early = self._early_exits.pop(pid, None)
            if early is None:
                self._by_pid[pid] = env
            else:
                env.on_exit(early)
            return pid
        finally:
            self._creating -= 1

    async def _read_output(self, fd: int, function: str, group: str, stream: str) -> None:
        """What the environment writes below sys.stdout (subprocesses, C code) goes to the
        function's log; the pipe closes when the environment and its children are gone."""
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(fd, "rb", buffering=0)
        try:
            await loop.connect_read_pipe(lambda: _OutputProtocol(self.logs.handler_output(function, group, stream)), pipe)
        except OSError:
            pipe.close()

    async def close(self) -> None:
        for task in self._starting.values():
            task.cancel()
        for server in {id(server): server for server in self._servers.values()}.values():
            await server.close()  # a fallback template is listed under several interpreters
        self._servers.clear()
        for env in list(self._by_pid.values()):
            env.on_exit({"status": "shutdown", "oom": False})
        self._by_pid.clear()


class _OutputProtocol(asyncio.Protocol):
    """Whole lines from an environment's output pipe, to the function's log."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            self._write(data[:cut].decode("utf-8", "replace"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial:
            self._write(self._partial.decode("utf-8", "replace"))
            self._partial = b""


class EnvironmentPool:
    """Environments of one function version. LIFO reuse keeps the warmest ones busy."""

    def __init__(self, factory: ExecutionBackend, version: FunctionVersion) -> None:
        self.factory = factory
        self.version = version
        self.idle: list[Environment] = []
        # Provisioned-concurrency environments: initialised ahead of traffic, never reaped
        # for idleness, used only by admissions charged to provisioned concurrency.
        self.provisioned_idle: list[Environment] = []
        self.members: set[Environment] = set()
        self.generation = 0

    def take_idle(self, provisioned: bool = False) -> Environment | None:
        idle = self.provisioned_idle if provisioned else self.idle
        while idle:
            env = idle.pop()
            if env.state is EnvState.READY and env.generation == self.generation and not env.recycle:
                return env
            self._retire(env)
        return None

    async def create(self, provisioned: bool = False) -> Environment:
        init_type = "provisioned-concurrency" if provisioned else "on-demand"
        env = await self.factory.create(self.version, init_type)
        env.generation = self.generation
        env.provisioned = provisioned
        self.members.add(env)
        return env

    def give_back(self, env: Environment, now: float) -> None:
        env.last_used = now
        if env.state is EnvState.READY and env.generation == self.generation and not env.recycle:
            (self.provisioned_idle if env.provisioned else self.idle).append(env)
        else:
            self._retire(env)

    def discard(self, env: Environment) -> None:
        self._retire(env)

    def _retire(self, env: Environment) -> None:
        self.members.discard(env)
        if env.state is EnvState.BUSY:
            env.kill()
        elif env.state is not EnvState.DEAD:
            env.stop()

    def new_code(self, version: FunctionVersion) -> None:
        """New code: later environments load it; idle ones go now, busy ones when they finish."""
        self.version = version
        self.generation += 1
        idle, self.idle = self.idle, []
        for env in idle:
            self._retire(env)

    def retire(self) -> None:
        """The version is gone (DeleteFunction): idle environments stop now, busy ones when
        their invocation ends."""
        self.generation += 1
        idle = self.idle + self.provisioned_idle
        self.idle, self.provisioned_idle = [], []
        for env in idle:
            self._retire(env)

    def evict_idle(self, env: Environment) -> None:
        """Stop one idle environment now, to free its descriptors for another function."""
        if env in self.idle:
            self.idle.remove(env)
            self._retire(env)

    def reap_idle(self, older_than: float) -> int:
        keep = [env for env in self.idle if env.last_used >= older_than and env.state is EnvState.READY]
        gone = [env for env in self.idle if env not in keep]
        self.idle = keep
        for env in gone:
            self._retire(env)
        return len(gone)

    @property
    def size(self) -> int:
        """Environments of this version that are alive (busy or idle)."""
        return sum(1 for env in self.members if env.state is not EnvState.DEAD)

    def close(self) -> None:
        for env in list(self.members):
            env.kill()
        self.members.clear()
        self.idle.clear()
        self.provisioned_idle.clear()
