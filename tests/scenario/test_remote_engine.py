"""The container backend on another Docker engine than the local one, named by its address
(`--docker-host tcp://…`, as DOCKER_HOST would): environments run there while admission
stays in the control plane. The "remote" engine is a second dockerd this test starts on
this machine, with its own socket, TCP port (loopback only) and data folder; its images are
built there (docker/local_images.py), cached across runs in that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import GATED_HANDLER_SOURCE, Gate, wait_until
from execution_testkit import _NO_ENGINE, PYTHON_RUNTIME, runtime_image, settings, CONTAINER
from emulator.execution.docker_engine import LABEL
from emulator.pytest_plugin import inline_function, running_emulator

pytestmark = pytest.mark.scenario

# Kept between runs, so the second engine's image cache survives (a few seconds to fill).
ENGINE_DATA = Path("/var/lib/lambda-emulator-test-engine")
ENGINE_START_S = 60.0
SLEEPER = GATED_HANDLER_SOURCE + """
def handler(event, context):
    wait_at_gate(event, context)
    return {"ok": True}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def remote_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dockerd = shutil.which("dockerd")
    if _NO_ENGINE is not None or dockerd is None or os.geteuid() != 0:
        pytest.skip("a second Docker engine needs dockerd and root" + (f" ({_NO_ENGINE})" if _NO_ENGINE else ""))
    import docker

    run = tmp_path_factory.mktemp("engine")
    url = f"tcp://127.0.0.1:{_free_port()}"
    with open(run / "dockerd.log", "w") as engine_log:
        process = subprocess.Popen(
            [dockerd, "--host", f"unix://{run}/docker.sock", "--host", url,
             "--data-root", str(ENGINE_DATA), "--exec-root", str(run / "exec"), "--pidfile", str(run / "docker.pid"),
             "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdout=subprocess.DEVNULL, stderr=engine_log,
        )
    try:
        def answers() -> bool:
            try:
                client = docker.DockerClient(base_url=url, version="auto", timeout=2)
            except Exception:
                return False
            try:
                return bool(client.ping())
            except Exception:
                return False
            finally:
                client.close()

        if not wait_until(answers, ENGINE_START_S, 0.2):
            pytest.skip(f"the second engine did not start: {(run / 'dockerd.log').read_text()[-500:]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # dockerd stops its containerd and containers
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_environments_run_on_the_engine_docker_host_names_and_admission_stays_central(
    remote_engine: str, tmp_path: Path
) -> None:
    import docker

    local, remote = docker.from_env(version="auto"), docker.DockerClient(base_url=remote_engine, version="auto")
    try:
        image = runtime_image(remote_engine)  # built on the remote engine itself
        config = {**settings(CONTAINER), "runtime_image": ((PYTHON_RUNTIME, image),), "docker_host": remote_engine}
        template = {"Sleeper": inline_function(SLEEPER, ReservedConcurrentExecutions=2, MemorySize=1024)}
        with running_emulator(template, backend="none", **config) as emu:
            gate = Gate(tmp_path / "gate")

            def invoke(_: int) -> Any:
                try:
                    return json.load(emu.lambda_client.invoke(FunctionName="Sleeper", Payload=json.dumps({"gate": gate.path}))["Payload"])
                except ClientError as error:
                    return error.response.get("Reason")

            with ThreadPoolExecutor(5) as pool:
                futures = [pool.submit(invoke, i) for i in range(5)]
                wait_until(lambda: gate.arrived() >= 2 and sum(f.done() for f in futures) >= 3, 60)
                mine = [c for c in remote.containers.list(filters={"label": LABEL}) if c.status == "running"]
                gate.open()
                outcomes = [f.result() for f in futures]
            assert outcomes.count({"ok": True}) == 2
            assert outcomes.count("ReservedFunctionConcurrentInvocationLimitExceeded") == 3
            assert len(mine) == 2  # the two environments, on the remote engine
            assert not [c for c in local.containers.list(all=True, filters={"label": LABEL})
                        if c.labels.get("lambda-emulator.function", "").startswith("Sleeper:")]
        assert wait_until(lambda: not remote.containers.list(all=True, filters={"label": LABEL}), 30)
    finally:
        local.close()
        remote.close()
