"""The execution backends a scenario test runs on (emulator/execution/backends.py).

`EXECUTIONS` parametrises a test (or a module's emulator) over every backend that can run
here: the same assertions hold on each, because admission, scaling, timeouts, metrics,
logs and event sources do not depend on what runs the environment. `settings(execution)`
gives the emulator settings for one. A backend that cannot run on this machine is skipped
with the reason.
"""

from __future__ import annotations

import fcntl
import getpass
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

FORK = "fork"
PROCESS = "process-runtime-api"

_no_awslambdaric = importlib.util.find_spec("awslambdaric") is None

EXECUTIONS = [
    pytest.param(FORK, id=FORK),
    pytest.param(PROCESS, id=PROCESS, marks=pytest.mark.skipif(
        _no_awslambdaric, reason="awslambdaric (Python's runtime interface client) is not installed: pip install awslambdaric")),
]


def settings(execution: str) -> dict[str, Any]:
    """Emulator settings that run Python functions on `execution`."""
    if execution == CONTAINER:
        # The tests' own folders (gates, output files) at the same path inside the containers.
        shared = str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}")
        return {"execution": execution, "runtime_image": ((PYTHON_RUNTIME, runtime_image()),),
                "container_volumes": ((shared, shared),)}
    return {"execution": execution}


# -- containers ---------------------------------------------------------------------------------
CONTAINER = "container"
PYTHON_RUNTIME = "python3.11"
_LOCAL_IMAGES = Path(__file__).resolve().parent.parent / "docker" / "local_images.py"
_built: dict[str, str] = {}


def _engine_answers(url: str) -> bool:
    import docker

    if url.startswith("unix://"):
        # The SDK leaves the socket of a failed connection to the garbage collector (a
        # ResourceWarning): ask it only once the engine's socket takes connections.
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(url[len("unix://"):])
            except OSError:
                return False
    # A fixed API version: "auto" asks the engine from the constructor, and a constructor that
    # fails there leaves its connection to the garbage collector too.
    client = docker.APIClient(base_url=url, version="1.41", timeout=2)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def engine_unavailable() -> str | None:
    """Why no container can run here (no SDK, no engine answering), or None."""
    if importlib.util.find_spec("docker") is None:
        return "the docker Python SDK is not installed"
    url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    # _engine_answers probes the socket before the SDK touches it: the SDK leaves a failed
    # connection's socket to the garbage collector, a ResourceWarning in whichever later test
    # happens to run the collection.
    if not _engine_answers(url):
        return f"no Docker engine answers at {url}"
    return None


def local_images(docker_host: str | None = None) -> tuple[str, str]:
    """(base image, Python runtime image), built here from this machine's Python (no registry
    is needed): docker/local_images.py; cached by the engine across runs."""
    key = docker_host or ""
    if key not in _built:
        spec = importlib.util.spec_from_file_location("local_images", _LOCAL_IMAGES)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        base, runtime = module.build_all(docker_host)
        _built[key] = f"{base} {runtime}"
    base, runtime = _built[key].split()
    return base, runtime


def runtime_image(docker_host: str | None = None) -> str:
    return local_images(docker_host)[1]


# Backends whose environments are processes of this machine (tests that look at their PIDs).
LOCAL_EXECUTIONS = list(EXECUTIONS)
_NO_ENGINE = engine_unavailable()
EXECUTIONS.append(pytest.param(CONTAINER, id=CONTAINER, marks=pytest.mark.skipif(
    _NO_ENGINE is not None, reason=f"no container engine for the container backend: {_NO_ENGINE}")))


# -- Node.js through aws-lambda-ric ------------------------------------------------------------
# The version whose native client ships prebuilt (it runs on Node 20 with an engine warning).
NODE_RIC_PACKAGE = "aws-lambda-ric@4.0.2"
NODE_RIC_CACHE = Path.home() / ".cache" / "lambda-emulator-tests" / "aws-lambda-ric-4.0.2"
NPM_INSTALL_TIMEOUT_S = 600


def node_ric_command() -> tuple[str | None, str]:
    """(the command that runs Node's runtime interface client, why not): installed once from
    the npm registry into a cache shared by test runs."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None, "Node.js and npm are not installed"
    ric = NODE_RIC_CACHE / "node_modules" / ".bin" / "aws-lambda-ric"
    NODE_RIC_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NODE_RIC_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time, across test processes
        if not ric.exists():
            result = subprocess.run(
                [npm, "install", "--prefix", str(NODE_RIC_CACHE), "--no-audit", "--no-fund", NODE_RIC_PACKAGE],
                capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S,
            )
            if result.returncode != 0 or not ric.exists():
                return None, f"npm install {NODE_RIC_PACKAGE} failed: {result.stderr.strip()[-300:]}"
    return f"{node} {ric}", ""


def node_runtime_image(docker_host: str | None = None) -> str:
    """A Node.js runtime image (this machine's node, aws-lambda-ric from the npm cache above),
    built here: docker/local_images.py."""
    key = f"node:{docker_host or ''}"
    if key not in _built:
        import docker

        command, reason = node_ric_command()
        if command is None:
            pytest.skip(f"Node's runtime interface client is not available: {reason}")
        spec = importlib.util.spec_from_file_location("local_images", _LOCAL_IMAGES)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        base, _ = local_images(docker_host)
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        try:
            _built[key] = module.build_node_runtime(client, base, NODE_RIC_CACHE / "node_modules")
        finally:
            client.close()
    return _built[key]


# -- a second Docker engine of the test's own ---------------------------------------------------
SECOND_ENGINE_START_S = 60.0


@contextmanager
def second_engine(run: Path, data_root: Path, *, tcp_port: int | None = None, bridge: str | None = None) -> Iterator[str]:
    """A dockerd beside the machine's engine, on its own socket (and a loopback TCP port when
    `tcp_port` is given: its URL is then tcp://), exec folder and `data_root` (kept between runs:
    its image cache); with `bridge` (a bridge interface of this machine) its containers'
    default network, else none. Stopped (with its containers) on exit; skips the test, saying
    why, when it cannot start."""
    dockerd = shutil.which("dockerd")
    if _NO_ENGINE is not None or dockerd is None or os.geteuid() != 0:
        pytest.skip("a second Docker engine needs dockerd and root" + (f" ({_NO_ENGINE})" if _NO_ENGINE else ""))
    from core_testkit import wait_until

    socket_url = f"unix://{run}/docker.sock"
    url = f"tcp://127.0.0.1:{tcp_port}" if tcp_port else socket_url
    hosts = ["--host", socket_url] + (["--host", url] if tcp_port else [])
    with open(run / "dockerd.log", "w") as engine_log:
        process = subprocess.Popen(
            [dockerd, *hosts, "--data-root", str(data_root), "--exec-root", str(run / "exec"),
             "--pidfile", str(run / "docker.pid"), f"--bridge={bridge or 'none'}", "--iptables=false", "--ip6tables=false"],
            stdout=subprocess.DEVNULL, stderr=engine_log,
        )
    try:
        if not wait_until(lambda: process.poll() is None and _engine_answers(url), SECOND_ENGINE_START_S, 0.2):
            pytest.skip(f"the second engine did not start: {(run / 'dockerd.log').read_text()[-500:]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # dockerd stops its containerd and containers
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # A stopped dockerd leaves the network namespace it bind-mounted in its exec root
        # (exec/netns/default): unmounted here, or no later pytest run could remove this
        # folder (pytest warns "(rm_rf) error removing" while it cleans old runs).
        for point in sorted(mounts_under(run), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True)


def mounts_under(folder: Path) -> list[str]:
    """The mount points inside `folder` (this process's mount namespace)."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4].replace("\\040", " ") for line in info]
    return [point for point in points if point.startswith(prefix)]


@contextmanager
def host_bridge(name: str, gateway_cidr: str) -> Iterator[str]:
    """A bridge interface of this machine (ip link), with the gateway address containers on it
    reach the host at; removed on exit. Skips the test, saying why, when it cannot be made."""
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        pytest.skip("a bridge for a second engine needs iproute2 (ip) and root")
    subnet = str(ipaddress.ip_interface(gateway_cidr).network)
    taken = subprocess.run([ip, "-o", "addr", "show", "to", subnet], capture_output=True, text=True).stdout.strip()
    if taken:
        pytest.skip(f"{subnet} is in use on this machine: {taken[:200]}")
    made = subprocess.run([ip, "link", "add", name, "type", "bridge"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create the bridge {name}: {made.stderr.strip()}")
    try:
        for command in (["addr", "add", gateway_cidr, "dev", name], ["link", "set", name, "up"]):
            done = subprocess.run([ip, *command], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot set up the bridge {name}: {done.stderr.strip()}")
        yield name
    finally:
        subprocess.run([ip, "link", "del", name], capture_output=True)
