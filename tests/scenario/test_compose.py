"""`docker compose up` with the repository's docker-compose.yml serves the bundled example.

No registry is reachable here, so the emulator's image is built FROM a base made locally
(docker/local_images.py --emulator-base: this machine's Python with the emulator's
dependencies) and pip installs the emulator offline, exactly as the README says for such
machines. Skipped, with the reason, without an engine or Compose.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from core_testkit import wait_until
from execution_testkit import _LOCAL_IMAGES, _NO_ENGINE

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TIMEOUT_S = 600


def compose_command() -> list[str] | None:
    """`docker compose` (the v2 plugin) or `docker-compose` (v1), whichever is installed."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(_NO_ENGINE is not None, reason=f"no container engine: {_NO_ENGINE}")
def test_docker_compose_up_serves_the_bundled_example() -> None:
    compose = compose_command()
    if compose is None:
        pytest.skip("Docker Compose is not installed (docker compose plugin or docker-compose)")
    built = subprocess.run([sys.executable, str(_LOCAL_IMAGES), "--emulator-base"], capture_output=True, text=True,
                           timeout=COMPOSE_TIMEOUT_S, check=True)
    base = next(line.split()[1] for line in built.stdout.splitlines() if line.startswith("emulator-base"))
    port, api_port = _free_port(), _free_port()
    env = {**os.environ, "EMULATOR_BASE_IMAGE": base, "EMULATOR_PIP_ARGS": "--no-deps --no-build-isolation --no-index",
           "EMULATOR_PORT": str(port), "EMULATOR_API_PORT": str(api_port)}
    project = ["-p", f"lambdaemu{uuid.uuid4().hex[:8]}"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, *project, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=COMPOSE_TIMEOUT_S)

    build = run("build", "--force-rm")
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stderr[-2000:]

        def health() -> Any:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=2) as response:
                    return json.loads(response.read())
            except OSError:
                return None

        assert wait_until(lambda: (health() or {}).get("status") == "ready", 60), run("logs").stdout[-2000:]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/2015-03-31/functions/hello/invocations",
                                         data=b'{"name": "compose"}', method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["message"] == "Hello, compose!"
    finally:
        down = run("down", "--timeout", "20")
    assert down.returncode == 0, down.stderr[-2000:]
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project[1]}"],
                          capture_output=True, text=True)
    assert left.stdout.strip() == ""
