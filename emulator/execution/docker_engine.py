"""The Docker engine, as the container backend uses it: blocking calls of the `docker` SDK,
run in worker threads by the caller, never on the event loop.

Whatever engine `DOCKER_HOST` (or `--docker-host`) names: the local socket, another socket,
`tcp://host:2375`, `ssh://user@host` (the SDK's own transports). Every container the
emulator makes carries labels naming the emulator process that owns it, so the next start
removes what a killed emulator left behind, and shutdown removes the rest.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any, Callable

log = logging.getLogger("emulator.execution.docker_engine")

LABEL = "lambda-emulator"  # every container the emulator made
OWNER_LABEL = "lambda-emulator.owner"  # host:pid:start-ticks of the emulator that made it
FUNCTION_LABEL = "lambda-emulator.function"
STOP_TIMEOUT_S = 0  # killed at once: Lambda's Shutdown gives a runtime without extensions no grace
# cgroup v1 files of a local engine's container (cgroupfs driver): the peak memory, for REPORT.
_CGROUP_PEAK_PATHS = (
    "/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.peak",
)


class EngineUnavailable(RuntimeError):
    """No Docker engine answers where we were told to look; the message says where and why."""


def owner_token(pid: int | None = None) -> str:
    """This emulator's identity on labels: host, PID and the process's start time (a PID the
    kernel reused later names another process)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return "gone"
    return raw[raw.rindex(")") + 2 :].split()[19]


def owner_alive(token: str) -> bool:
    """Whether the emulator that labelled a container still runs (on this host; another host's
    containers are never judged from here)."""
    host, _, rest = token.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return _start_ticks(int(pid)) == ticks


class DockerEngine:
    """One connection to an engine (blocking; call from worker threads)."""

    def __init__(self, docker_host: str | None = None) -> None:
        try:
            import docker
        except ImportError:
            raise EngineUnavailable("the docker Python SDK is not installed: pip install docker") from None
        self._docker = docker
        where = docker_host or "the default engine (DOCKER_HOST or /var/run/docker.sock)"
        try:
            if docker_host:
                self.client = docker.DockerClient(base_url=docker_host, version="auto", use_ssh_client=docker_host.startswith("ssh://"))
            else:
                self.client = docker.from_env(version="auto")
            self.client.ping()
        except Exception as exc:  # the SDK raises requests', urllib3's and its own errors
            raise EngineUnavailable(f"no Docker engine answers at {where}: {exc}") from None
        self.where = where

    def close(self) -> None:
        self.client.close()

    # -- images ------------------------------------------------------------------------
    def has_image(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except self._docker.errors.ImageNotFound:
            return False

    def ensure_image(self, image: str) -> None:
        """Pull `image` unless the engine has it (the SDK's create does not pull); a clear
        error when it can be neither found nor pulled."""
        if self.has_image(image):
            return
        try:
            self.client.images.pull(image)
        except Exception as exc:  # registry unreachable, unknown image, no credentials ...
            raise EngineUnavailable(f"image {image} is not on the Docker engine at {self.where} and could not be pulled: "
                                    f"{exc}; pull or build it there first") from None

    def image_config(self, image: str) -> dict[str, Any]:
        return self.client.images.get(image).attrs.get("Config") or {}

    def build(self, context: str, dockerfile: str, tag: str, build_args: dict[str, str]) -> str:
        """`docker build`, as `sam build` does for an Image function's Metadata."""
        try:
            self.client.images.build(path=context, dockerfile=dockerfile, tag=tag, buildargs=build_args or None, rm=True)
        except self._docker.errors.BuildError as exc:
            lines = [str(item.get("stream") or item.get("error") or "").rstrip() for item in exc.build_log]
            raise RuntimeError(f"docker build of {context} failed: {exc.msg}\n" + "\n".join(line for line in lines if line)[-2000:]) from None
        return tag

    # -- containers --------------------------------------------------------------------
    def create(self, **kwargs: Any) -> Any:
        return self.client.containers.create(**kwargs)

    def start(self, container: Any) -> None:
        container.start()

    def kill(self, container: Any) -> None:
        try:
            container.kill()
        except self._docker.errors.APIError:
            pass  # already stopped or gone

    def remove(self, container: Any) -> None:
        try:
            container.remove(force=True)
        except self._docker.errors.NotFound:
            pass
        except self._docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                log.warning("could not remove container %s: %s", container.id[:12], exc)

    def wait_exit(self, container: Any) -> dict[str, Any]:
        """Block until the container stops; its exit in Lambda's words (as the fork server
        reports a process): status, and whether the kernel killed it for memory."""
        try:
            code = int(container.wait().get("StatusCode", -1))
            container.reload()
            state = container.attrs.get("State") or {}
        except self._docker.errors.NotFound:
            return {"status": "signal: killed", "oom": False}
        except Exception as exc:  # the engine went away: the container is lost to us
            return {"status": f"the Docker engine failed: {exc}", "oom": False}
        oom = bool(state.get("OOMKilled"))
        # An exit code above 128 is 128 + the signal that ended the runtime.
        status = "signal: killed" if code == 137 else (f"signal: {code - 128}" if code > 128 else f"exit status {code}")
        return {"status": status, "oom": oom}

    def follow_logs(self, container: Any, write: Callable[[bytes], None]) -> None:
        """Block, passing what the container writes to stdout/stderr to `write`, until it stops."""
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                write(chunk)
        except Exception:  # the engine went away or the container was removed: no more output
            return

    def containers(self, **labels: str) -> list[Any]:
        """Our containers (with these labels), as listed: not inspected one by one, since
        one may be removed between the list and its inspection."""
        wanted = [LABEL] + [f"{key}={value}" for key, value in labels.items()]
        return self.client.containers.list(all=True, sparse=True, filters={"label": wanted})

    def sweep_orphans(self) -> int:
        """Remove the containers of emulators that are no longer running (killed, crashed)."""
        removed = 0
        for container in self.containers():
            owner = (container.attrs.get("Labels") or {}).get(OWNER_LABEL, "")
            if owner and not owner_alive(owner):
                self.remove(container)
                removed += 1
        return removed


def peak_memory_kb(container_id: str) -> int:
    """The container's peak memory from its cgroup, when the engine is local (else 0)."""
    for pattern in _CGROUP_PEAK_PATHS:
        try:
            with open(pattern.format(id=container_id)) as f:
                return int(f.read().strip()) // 1024
        except (OSError, ValueError):
            continue
    return 0


def thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """A daemon thread that follows one container (its exit, its logs)."""
    worker = threading.Thread(target=target, args=args, name=name, daemon=True)
    worker.start()
    return worker
