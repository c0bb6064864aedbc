"""The container backend on another Docker engine than the local one, named by its address
(`--docker-host tcp://…`, as DOCKER_HOST would): environments run there while admission
stays in the control plane. The "remote" engine is a second dockerd this test starts on
this machine, with its own socket, TCP port (loopback only) and data folder; its images are
built there (docker/local_images.py), cached across runs in that folder.
"""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import GATED_OK_SOURCE, Gate, wait_until
from execution_testkit import CONTAINER, PYTHON_RUNTIME, mounts_under, runtime_image, second_engine, settings
from emulator.execution.docker_engine import LABEL
from emulator.pytest_plugin import inline_function, running_emulator

pytestmark = pytest.mark.scenario

# Kept between runs, so the second engine's image cache survives (a few seconds to fill).
ENGINE_DATA = Path("/var/lib/lambda-emulator-test-engine")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def remote_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run = tmp_path_factory.mktemp("engine")
    with second_engine(run, ENGINE_DATA, tcp_port=_free_port()) as url:
        yield url
    assert mounts_under(run) == []  # the stopped engine left nothing mounted in its folder


def test_environments_run_on_the_engine_docker_host_names_and_admission_stays_central(
    remote_engine: str, tmp_path: Path
) -> None:
    import docker

    local, remote = docker.from_env(version="auto"), docker.DockerClient(base_url=remote_engine, version="auto")
    try:
        image = runtime_image(remote_engine)  # built on the remote engine itself
        config = {**settings(CONTAINER), "runtime_image": ((PYTHON_RUNTIME, image),), "docker_host": remote_engine}
        # Timeout: held at a gate meanwhile
        template = {"Sleeper": inline_function(GATED_OK_SOURCE, ReservedConcurrentExecutions=2, MemorySize=1024, Timeout=60)}
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
