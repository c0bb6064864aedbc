"""The seam between the invoker and whatever runs execution environments.

The invoker (admission has already happened) asks an `ExecutionBackend` for a new
`Environment` and talks to it only through the small protocol below, so concurrency,
the scaling rate, timeouts, metrics, logs and every event source behave the same whichever
backend runs a function:

* `fork` (emulator/execution/pool.py `EnvironmentFactory`): a process forked from a fork
  server that preloaded our own Python runtime; the fastest, Python handlers only.
* `process-runtime-api` (emulator/execution/process_backend.py): a plain local process
  running a standard runtime interface client (awslambdaric, aws-lambda-ric, a custom
  `bootstrap`) against the Lambda Runtime API the control plane serves for it.
* `container` (emulator/execution/container_backend.py): the same Runtime API, served to a
  container on a Docker engine (local or remote): container-image functions, and zip
  functions of any runtime in a runtime image.

`ExecutionBackends` routes each function version to its backend and keeps one budget of
environments across them all (the control plane's open files are shared).
"""

from __future__ import annotations

import asyncio
import shlex
from typing import Any, Callable, Iterable, NamedTuple, Protocol

from emulator.execution.environment import EnvState, InitResult, RawOutcome
from emulator.execution.log_tail import LogTail
from emulator.functions.registry import FunctionVersion

FORK = "fork"
PROCESS_RUNTIME_API = "process-runtime-api"
CONTAINER = "container"
EXECUTION_MODES = (FORK, PROCESS_RUNTIME_API, CONTAINER)


class InvokeRequest(NamedTuple):
    """One invocation as every backend receives it (the Runtime API's /next headers carry
    the same fields: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)."""

    request_id: str
    deadline_ms: int  # absolute, Unix epoch milliseconds
    invoked_arn: str
    client_context: dict[str, Any] | None
    payload: bytes
    trace_id: str = ""  # the X-Ray header the runtime sets as _X_AMZN_TRACE_ID
    tenant_id: str | None = None  # TenancyConfig PER_TENANT: the invocation's tenant
    cognito_identity: dict[str, Any] | None = None


class Environment(Protocol):
    """What the invoker, the pools and the reaper need of one execution environment.

    Its lifecycle is EnvState's: STARTING -> READY <-> BUSY -> STOPPING -> DEAD."""

    env_id: str
    state: EnvState
    generation: int
    last_used: float
    provisioned: bool
    recycle: bool
    init_ms: float
    log_stream: str  # its CloudWatch Logs stream (YYYY/MM/DD/[version]id)
    exit_info: asyncio.Future[dict[str, Any]]

    @property
    def alive(self) -> bool: ...

    async def wait_ready(self, timeout_s: float) -> InitResult | None: ...

    def capture_logs(self, capture: LogTail | None) -> None: ...

    def invoke(self, request: InvokeRequest, timeout_s: float, log_capture: LogTail | None) -> asyncio.Future[RawOutcome]: ...

    def kill(self) -> None: ...

    def stop(self) -> None: ...


class ExecutionBackend(Protocol):
    """Creates environments for function versions; owns and ends everything it started."""

    @property
    def environments(self) -> int: ...

    @property
    def refused(self) -> int: ...

    async def start(self) -> None: ...

    def has_room(self) -> bool: ...

    def create_refused(self, function: str) -> None: ...

    async def create(self, version: FunctionVersion, init_type: str = "on-demand") -> Any: ...

    async def close(self) -> None: ...


class ExecutionBackends:
    """Routes each function version to its backend; one environment budget for all.

    `choose(version)` names the backend (one of EXECUTION_MODES); `fork` is also the
    budget keeper (its descriptor budget, counters and refusal log), so a throttle for want
    of open files looks the same whichever backend would have run the function."""

    def __init__(self, fork: Any, others: dict[str, ExecutionBackend], choose: Callable[[FunctionVersion], str]) -> None:
        self.fork = fork
        self.backends: dict[str, ExecutionBackend] = {FORK: fork, **others}
        self.choose = choose

    def backend_for(self, version: FunctionVersion) -> ExecutionBackend:
        return self.backends[self.choose(version)]

    @property
    def environments(self) -> int:
        return sum(backend.environments for backend in self.backends.values())

    @property
    def refused(self) -> int:
        return sum(backend.refused for backend in self.backends.values())

    def has_room(self) -> bool:
        limit = self.fork.max_environments
        return limit is None or self.environments < limit

    def create_refused(self, function: str) -> None:
        self.fork.create_refused(function)

    async def start(self) -> None:
        for backend in self.backends.values():
            await backend.start()

    def ready(self) -> None:
        """The emulator serves: backends that prepare environments ahead may start now."""
        for backend in self.backends.values():
            hook = getattr(backend, "ready", None)
            if hook is not None:
                hook()

    async def create(self, version: FunctionVersion, init_type: str = "on-demand") -> Any:
        backend = self.backend_for(version)
        if backend is not self.fork and not self.has_room():
            raise self.fork.refusal(version.name)
        return await backend.create(version, init_type)

    async def close(self) -> None:
        for backend in reversed(list(self.backends.values())):
            await backend.close()


class UnsupportedExecution(ValueError):
    """A function cannot run on the backend chosen for it; the message says what to do."""


def choose_execution(version: FunctionVersion, execution: str) -> str:
    """Container-image functions run in containers; every other function where
    `--execution` says."""
    if version.spec.package_type == "Image":
        return CONTAINER
    return execution


def build_backends(config: Any, factory: Any, logs: Any, functions: Iterable[Any] = ()) -> ExecutionBackends:
    """The backends `config` asks for, around the fork backend `factory` (always there: it
    forks the local processes of process-runtime-api too). The container backend (and the
    Docker SDK) only when `--execution container` or an Image function needs it."""
    from emulator.execution.process_backend import ProcessRuntimeApiBackend

    commands = {runtime: tuple(shlex.split(command)) for runtime, command in config.runtime_command}
    others: dict[str, ExecutionBackend] = {PROCESS_RUNTIME_API: ProcessRuntimeApiBackend(factory, logs, commands)}
    if config.execution == CONTAINER or any(spec.package_type == "Image" for spec in functions):
        from emulator.execution.container_backend import ContainerBackend, ContainerSettings

        settings = ContainerSettings(
            docker_host=config.docker_host, runtime_images=dict(config.runtime_image), network=config.container_network,
            runtime_api_host=config.runtime_api_host, precreated=config.container_pool,
            volumes=tuple(config.container_volumes),
        )
        others[CONTAINER] = ContainerBackend(factory, logs, settings)
    execution = config.execution
    return ExecutionBackends(factory, others, lambda version: choose_execution(version, execution))


def check_runnable(backends: ExecutionBackends, version: FunctionVersion) -> None:
    """Raise UnsupportedExecution when `version` cannot run where it is routed (at start-up,
    not at its first invocation)."""
    mode = backends.choose(version)
    spec = version.spec
    if mode == FORK and not spec.runtime.startswith("python"):
        raise UnsupportedExecution(
            f"function {spec.name}: runtime {spec.runtime} cannot be forked from the Python runtime; "
            "run it with --execution process-runtime-api (a local runtime interface client) or --execution container")
    if mode not in backends.backends:
        raise UnsupportedExecution(f"function {spec.name}: the {mode} execution backend is not available")
    checker = getattr(backends.backends[mode], "check", None)
    if checker is not None:
        checker(version)
