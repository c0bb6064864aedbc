"""The `container` execution backend: one container per execution environment, on a Docker engine.

Runs container-image functions (`PackageType: Image`: `ImageUri`, or an image built from the
template's `Metadata` `Dockerfile`/`DockerContext` as `sam build` does) and, with
`--execution container`, zip functions of any runtime: the code folder mounted read-only at
/var/task in the runtime image named with `--runtime-image RUNTIME=IMAGE` (AWS's base images
keep the code there: https://docs.aws.amazon.com/lambda/latest/dg/images-create.html).

The runtime inside talks to the Runtime API the control plane serves for that container
(emulator/execution/runtime_api_env.py), so the invoker sees the same environment as for a
local process. Each container gets Lambda's limits: `MemorySize` as its memory limit (no
swap) and CPU in proportion (1,769 MB = 1 vCPU:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), 1,024 open files
and processes (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
Containers start on demand, are reused warm, reaped when idle, killed at a timeout; one
pre-created (not started) container per function version waits for the next cold start.
All carry labels naming this emulator: shutdown removes them, and the next start removes
those of an emulator that was killed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emulator.execution.docker_engine import (
    FUNCTION_LABEL, LABEL, OWNER_LABEL, DockerEngine, EngineUnavailable, owner_token, peak_memory_kb, thread,
)
from emulator.execution.logsink import LogSink
from emulator.execution.runtime_api_env import RuntimeApiEnvironment
from emulator.functions.registry import FunctionVersion

log = logging.getLogger("emulator.execution.container_backend")

# "At 1,769 MB, a function has the equivalent of one vCPU":
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
MB_PER_VCPU = 1769
# 1,024 file descriptors and 1,024 processes/threads per environment:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_OPEN_FILES = 1024
MAX_PROCESSES = 1024
TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
# The name containers on a bridge network have for the host (Docker's host-gateway).
HOST_GATEWAY_NAME = "host.docker.internal"
# Variables of the control plane's environments that mean nothing inside an image, whose
# own PATH and HOME apply.
_HOST_ONLY_VARIABLES = ("PATH", "HOME")
BUILT_IMAGE_REPOSITORY = "lambda-emulator-fn"


@dataclass(frozen=True)
class ContainerSettings:
    docker_host: str | None = None  # None: DOCKER_HOST, else the local socket
    runtime_images: dict[str, str] = field(default_factory=dict)  # runtime -> image for zip functions
    network: str = "host"  # "host": containers share the host's loopback; "bridge": they reach it through the gateway
    runtime_api_host: str = "127.0.0.1"  # where each container's Runtime API listens (and what it is told)
    precreated: int = 1  # containers created ahead, per function version, for the next cold start
    volumes: tuple[tuple[str, str], ...] = ()  # (host folder, container folder), mounted read-write


@dataclass
class _Prepared:
    """A created (not started) container and the environment that will serve it."""

    env: RuntimeApiEnvironment
    container: Any
    code_sha256: str


class ContainerBackend:
    def __init__(self, factory: Any, logs: LogSink, settings: ContainerSettings) -> None:
        self.factory = factory  # Lambda's variables for each environment come from the fork backend's spec
        self.logs = logs
        self.settings = settings
        self.engine: DockerEngine | None = None
        self.owner = owner_token()
        self._ids = itertools.count(1)
        self._live: set[RuntimeApiEnvironment] = set()
        self._creating = 0
        self._spares: dict[str, list[_Prepared]] = {}
        self._refills: set[asyncio.Task] = set()
        self._builds: dict[str, asyncio.Future[str]] = {}
        self._image_configs: dict[str, dict[str, Any]] = {}
        self._checked: list[FunctionVersion] = []  # pre-created once the emulator serves

    @property
    def environments(self) -> int:
        return len(self._live) + self._creating

    refused = 0  # refusals are counted by the fork backend, which keeps the budget

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to the engine and remove what a killed emulator left there."""
        from emulator.execution.backends import UnsupportedExecution

        try:
            self.engine = await asyncio.to_thread(DockerEngine, self.settings.docker_host)
        except EngineUnavailable as exc:
            raise UnsupportedExecution(str(exc)) from None
        removed = await asyncio.to_thread(self.engine.sweep_orphans)
        if removed:
            log.info("removed %d container(s) left by an emulator that is no longer running", removed)

    def has_room(self) -> bool:
        return self.factory.has_room()

    def create_refused(self, function: str) -> None:
        self.factory.create_refused(function)

    def check(self, version: FunctionVersion) -> None:
        """At start-up: a zip function needs a runtime image; then its first container is
        pre-created (and an image built from Metadata is built) while the emulator starts."""
        from emulator.execution.backends import UnsupportedExecution

        spec = version.spec
        if spec.package_type != "Image" and spec.runtime not in self.settings.runtime_images:
            raise UnsupportedExecution(
                f"function {spec.name}: --execution container needs an image for runtime {spec.runtime}: "
                f"--runtime-image {spec.runtime}=IMAGE (AWS's base image for it, where your engine can pull it)")
        image = None
        if spec.package_type != "Image":
            image = self.settings.runtime_images[spec.runtime]
        elif spec.image is not None and not spec.image.dockerfile:
            image = spec.image.uri
        if image is not None and self.engine is not None:
            try:
                self.engine.ensure_image(image)  # at start-up, once: a missing image fails `emulator up`
            except EngineUnavailable as exc:
                raise UnsupportedExecution(f"function {spec.name}: {exc}") from None
        self._checked.append(version)

    def ready(self) -> None:
        """The emulator serves (its endpoint is known): pre-create the first containers."""
        if self.settings.precreated > 0 and self.engine is not None:
            for version in self._checked:
                self._refill(version)
        self._checked.clear()

    async def close(self) -> None:
        for task in list(self._refills):
            task.cancel()
        await asyncio.gather(*self._refills, return_exceptions=True)
        for spares in self._spares.values():
            for spare in spares:
                spare.env.api.close()
        self._spares.clear()
        for env in list(self._live):
            env.api.close()
        engine, self.engine = self.engine, None
        if engine is not None:
            await asyncio.to_thread(self._remove_all, engine)
            await asyncio.to_thread(engine.close)

    def _remove_all(self, engine: DockerEngine) -> None:
        for container in engine.containers(**{OWNER_LABEL: self.owner}):
            engine.remove(container)

    # -- environments --------------------------------------------------------------------
    async def create(self, version: FunctionVersion, init_type: str = "on-demand") -> RuntimeApiEnvironment:
        engine = self.engine
        assert engine is not None, "the container backend was not started"
        self._creating += 1
        try:
            prepared = self._take_spare(version, init_type)
            if prepared is None:
                prepared = await self._prepare(version, init_type)
            prepared.env.starting()
            try:
                await asyncio.to_thread(engine.start, prepared.container)
            except BaseException:
                prepared.env.api.close()
                await asyncio.to_thread(engine.remove, prepared.container)
                raise
            self._follow(prepared)
        finally:
            self._creating -= 1
        if init_type == "on-demand" and self.settings.precreated > 0:
            self._refill(version)
        return prepared.env

    def _take_spare(self, version: FunctionVersion, init_type: str) -> _Prepared | None:
        if init_type != "on-demand":
            return None
        spares = self._spares.get(version.key) or []
        while spares:
            spare = spares.pop()
            if spare.code_sha256 == version.code_sha256:
                return spare
            self._discard(spare)  # made for code that has changed since
        return None

    def _refill(self, version: FunctionVersion) -> None:
        if len(self._spares.get(version.key) or []) >= self.settings.precreated:
            return

        async def refill() -> None:
            try:
                prepared = await self._prepare(version, "on-demand")
            except Exception as exc:  # the next cold start creates its own and reports the failure
                log.debug("could not pre-create a container for %s: %s", version.key, exc)
                return
            if self.engine is None:
                self._discard(prepared)
                return
            self._spares.setdefault(version.key, []).append(prepared)

        task = asyncio.ensure_future(refill())
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    def _discard(self, prepared: _Prepared) -> None:
        prepared.env.api.close()
        if self.engine is not None:
            task = asyncio.ensure_future(asyncio.to_thread(self.engine.remove, prepared.container))
            self._refills.add(task)
            task.add_done_callback(self._refills.discard)

    async def _prepare(self, version: FunctionVersion, init_type: str) -> _Prepared:
        engine = self.engine
        assert engine is not None
        spec = version.spec
        image = await self._image_for(version)
        config = await self._image_config(image)
        log_stream = time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version.version}]{uuid.uuid4().hex}"
        output = self.logs.handler_output(version.name, version.spec.log_group, log_stream)
        env = RuntimeApiEnvironment(f"{version.name}-ctr-{next(self._ids)}", output)
        env.log_stream = log_stream
        address = await env.listen(self.settings.runtime_api_host)
        kwargs: dict[str, Any] = dict(
            image=image,
            environment=self._variables(version, init_type, address, config, log_stream),
            labels={LABEL: "1", OWNER_LABEL: self.owner, FUNCTION_LABEL: version.key},
            mem_limit=f"{spec.memory_mb}m",
            memswap_limit=f"{spec.memory_mb}m",
            nano_cpus=int(spec.memory_mb / MB_PER_VCPU * 1e9),
            pids_limit=MAX_PROCESSES,
            ulimits=[_ulimit(MAX_OPEN_FILES)],
            network_mode=self.settings.network,
            detach=True,
        )
        if spec.package_type == "Image" and spec.image is not None:
            if spec.image.command:
                kwargs["command"] = list(spec.image.command)
            if spec.image.entry_point:
                kwargs["entrypoint"] = list(spec.image.entry_point)
            if spec.image.working_directory:
                kwargs["working_dir"] = spec.image.working_directory
        else:
            kwargs["command"] = [spec.handler]
            kwargs["volumes"] = {str(spec.code_dir): {"bind": TASK_ROOT, "mode": "ro"}}
        if self.settings.volumes:
            volumes = kwargs.setdefault("volumes", {})
            for host, inside in self.settings.volumes:
                volumes[host] = {"bind": inside, "mode": "rw"}
        if self.settings.network == "bridge":
            kwargs["extra_hosts"] = {HOST_GATEWAY_NAME: "host-gateway"}
        try:
            container = await asyncio.to_thread(engine.create, **kwargs)
        except BaseException:
            env.api.close()
            raise
        env.attach(lambda: self._kill(container), memory_kb=lambda: peak_memory_kb(container.id))
        return _Prepared(env, container, version.code_sha256)

    def _variables(self, version: FunctionVersion, init_type: str, address: str, config: dict[str, Any],
                   log_stream: str) -> dict[str, str]:
        spec = version.spec
        variables = dict(self.factory.environment_spec(version, init_type, log_stream)["env"])
        for name in _HOST_ONLY_VARIABLES:
            variables.pop(name, None)
        variables.update({
            "LAMBDA_TASK_ROOT": TASK_ROOT,
            "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_ENDPOINT_URL": self._endpoint_for_containers(variables.get("AWS_ENDPOINT_URL", "")),
        })
        if spec.package_type == "Image":
            variables.pop("AWS_EXECUTION_ENV", None)
            command = list(spec.image.command) if spec.image and spec.image.command else list(config.get("Cmd") or [])
            if command:
                variables["_HANDLER"] = command[0]  # as Lambda sets it from the image's CMD
            else:
                variables.pop("_HANDLER", None)
        return variables

    def _endpoint_for_containers(self, endpoint: str) -> str:
        """The emulator's endpoint as a container reaches it: the same URL on the host's
        network; through the host gateway on a bridge."""
        if self.settings.network != "bridge" or not endpoint:
            return endpoint
        parts = urlsplit(endpoint)
        return urlunsplit(parts._replace(netloc=f"{HOST_GATEWAY_NAME}:{parts.port}"))

    def _kill(self, container: Any) -> None:
        engine = self.engine
        if engine is not None:
            asyncio.get_running_loop().run_in_executor(None, engine.kill, container)

    def _follow(self, prepared: _Prepared) -> None:
        """Threads that follow the running container: its output into the function's log,
        its exit into the environment (then it is removed)."""
        engine, env, container = self.engine, prepared.env, prepared.container
        assert engine is not None
        loop = asyncio.get_running_loop()
        self._live.add(env)
        lines = _LineSplitter(lambda text: loop.call_soon_threadsafe(env.output, text))

        def exited() -> None:
            info = engine.wait_exit(container)
            lines.flush()
            try:
                loop.call_soon_threadsafe(self._exited, env, info)
            except RuntimeError:
                pass  # the loop is closed: the emulator is gone, shutdown removed it
            engine.remove(container)

        thread(engine.follow_logs, container, lines.write, name=f"logs-{env.env_id}")
        thread(exited, name=f"exit-{env.env_id}")

    def _exited(self, env: RuntimeApiEnvironment, info: dict[str, Any]) -> None:
        self._live.discard(env)
        env.on_exit(info)

    async def _image_config(self, image: str) -> dict[str, Any]:
        config = self._image_configs.get(image)
        if config is None:
            assert self.engine is not None
            config = self._image_configs[image] = await asyncio.to_thread(self.engine.image_config, image)
        return config

    async def _image_for(self, version: FunctionVersion) -> str:
        spec = version.spec
        if spec.package_type != "Image":
            return self.settings.runtime_images[spec.runtime]
        assert spec.image is not None
        if not spec.image.dockerfile:
            return spec.image.uri
        # Built as `sam build` builds it, once per content of the build context.
        tag = f"{BUILT_IMAGE_REPOSITORY}/{spec.name.lower()}:{(version.code_sha256 or 'latest')[:12]}"
        build = self._builds.get(tag)
        if build is None:
            assert self.engine is not None and spec.image.docker_context is not None
            log.info("%s: building its image from %s", spec.name, spec.image.docker_context)
            build = self._builds[tag] = asyncio.ensure_future(asyncio.to_thread(
                self.engine.build, str(spec.image.docker_context), spec.image.dockerfile, tag, dict(spec.image.build_args)))
        try:
            return await asyncio.shield(build)
        except Exception:
            self._builds.pop(tag, None)  # the next cold start tries again (the user may fix the Dockerfile)
            raise


class _LineSplitter:
    """Bytes from a container's log stream, to the function's log in whole lines."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._partial = b""

    def write(self, chunk: bytes) -> None:
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            self._emit(data[:cut])

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""

    def _emit(self, data: bytes) -> None:
        try:
            self._write(data.decode("utf-8", "replace"))
        except RuntimeError:
            pass  # the loop is closed


def _ulimit(limit: int) -> Any:
    from docker.types import Ulimit

    return Ulimit(name="nofile", soft=limit, hard=limit)
