"""The execution backends a scenario test runs on (emulator/execution/backends.py).

`EXECUTIONS` parametrises a test (or a module's emulator) over every backend that can run
here: the same assertions hold on each, because admission, scaling, timeouts, metrics,
logs and event sources do not depend on what runs the environment. `settings(execution)`
gives the emulator settings for one. A backend that cannot run on this machine is skipped
with the reason.
"""

from __future__ import annotations

import gc
import fcntl
import getpass
import tempfile
import importlib.util
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

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


def engine_unavailable() -> str | None:
    """Why no container can run here (no SDK, no engine answering), or None."""
    if importlib.util.find_spec("docker") is None:
        return "the docker Python SDK is not installed"
    import docker

    try:
        client = docker.from_env(version="auto", timeout=5)
    except Exception as exc:
        # The SDK leaves the socket of a failed version probe (an engine still starting) to
        # the garbage collector: collect it here, not as a ResourceWarning in a later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        return f"no Docker engine: {exc}"
    try:
        client.ping()
    except Exception as exc:
        return f"no Docker engine answers: {exc}"
    finally:
        client.close()
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
