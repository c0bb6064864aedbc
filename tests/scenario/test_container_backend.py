"""The container backend on a real Docker engine: container-image functions (ImageUri with
ImageConfig, and an image built from the template's Metadata as `sam build` does), Lambda's
limits on each container, failures, and nothing left behind after shutdown or after the
emulator is killed. Images are built locally (docker/local_images.py): no registry is needed.
Skipped, with the reason, where no engine answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import call, wait_until
from execution_testkit import CONTAINER, _NO_ENGINE, runtime_image, settings
from emulator.execution.docker_engine import FUNCTION_LABEL, LABEL, OWNER_LABEL
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = [pytest.mark.scenario, pytest.mark.skipif(_NO_ENGINE is not None, reason=f"no container engine: {_NO_ENGINE}")]

APP = """
import os, sys, time
def handler(event, context):
    action = event.get("action")
    if action == "raise":
        raise ValueError("the value was wrong")
    if action == "sleep":
        time.sleep(10)
    if action == "exit":
        os._exit(3)
    if action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    return {"handler": os.environ.get("_HANDLER"), "task_root": os.environ["LAMBDA_TASK_ROOT"], "cwd": os.getcwd(),
            "memory": context.memory_limit_in_mb, "marker": os.environ.get("MARKER"), "event": event,
            "endpoint": os.environ["AWS_ENDPOINT_URL"]}
"""
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG MARKER
ENV MARKER=${MARKER}
COPY app.py /var/task/app.py
COPY app.py /opt/app/app.py
CMD ["app.handler"]
"""


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    import docker

    client = docker.from_env(version="auto")
    yield client
    client.close()


@pytest.fixture(scope="module")
def function_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A container image with the handler baked in (as a user's would be), built here."""
    context = tmp_path_factory.mktemp("image-uri")
    (context / "app.py").write_text(APP)
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = "lambda-emulator-test/image-uri:1"
    docker_client.images.build(path=str(context), tag=tag, buildargs={"BASE": runtime_image(), "MARKER": "from-uri"}, rm=True)
    return tag


@pytest.fixture(scope="module")
def emu(function_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    built = tmp_path_factory.mktemp("image-build")
    (built / "app.py").write_text(APP)
    (built / "Dockerfile").write_text(DOCKERFILE)
    template = {"Resources": {
        "FromUri": {"Type": "AWS::Serverless::Function", "Properties": {
            "PackageType": "Image", "ImageUri": function_image, "MemorySize": 1769, "Timeout": 2,
            "ImageConfig": {"Command": ["app.handler"], "WorkingDirectory": "/opt/app"}}},
        "Built": {"Type": "AWS::Serverless::Function", "Properties": {"PackageType": "Image", "MemorySize": 1024},
                  "Metadata": {"Dockerfile": "Dockerfile", "DockerContext": str(built),
                               "DockerBuildArgs": {"BASE": runtime_image(), "MARKER": "from-metadata"}}},
        "Zip": inline_function(APP, handler="app.handler", MemorySize=512, Timeout=2),
        "Small": inline_function(APP, handler="app.handler", MemorySize=256, Timeout=30),
    }}
    with running_emulator(template, backend="none", **settings(CONTAINER)) as handle:
        yield handle


def our_containers(client: Any, **labels: str) -> list[Any]:
    import docker.errors

    wanted = [LABEL] + [f"{key}={value}" for key, value in labels.items()]
    for _ in range(10):
        try:
            return client.containers.list(all=True, filters={"label": wanted})
        except docker.errors.NotFound:
            continue  # one was removed between the list and its inspect (the SDK inspects each): list again
    return client.containers.list(all=True, filters={"label": wanted})


def test_image_function_runs_its_image_with_image_config(emu: EmulatorHandle) -> None:
    result = call(emu.lambda_client, "FromUri", {"n": 1})
    assert result.function_error is None, result.payload
    assert result.payload["handler"] == "app.handler"  # _HANDLER from ImageConfig.Command
    assert result.payload["cwd"] == "/opt/app"  # ImageConfig.WorkingDirectory
    assert (result.payload["marker"], result.payload["event"]) == ("from-uri", {"n": 1})
    assert result.payload["endpoint"] == emu.url  # the emulator, reachable from inside
    assert result.cold and not call(emu.lambda_client, "FromUri", {}).cold  # reused warm


def test_image_function_is_built_from_its_metadata_dockerfile(emu: EmulatorHandle) -> None:
    result = call(emu.lambda_client, "Built", {})
    assert result.function_error is None, result.payload
    assert (result.payload["marker"], result.payload["handler"]) == ("from-metadata", "app.handler")  # the image's CMD


def test_zip_function_runs_in_the_runtime_image_with_its_code_at_var_task(emu: EmulatorHandle) -> None:
    result = call(emu.lambda_client, "Zip", {})
    assert result.function_error is None, result.payload
    assert (result.payload["task_root"], result.payload["cwd"], result.payload["memory"]) == ("/var/task", "/var/task", "512")


def test_each_container_has_lambdas_memory_cpu_file_and_process_limits(emu: EmulatorHandle, docker_client: Any) -> None:
    assert call(emu.lambda_client, "Zip", {}).function_error is None
    [container] = [c for c in our_containers(docker_client, **{FUNCTION_LABEL: "Zip:$LATEST"}) if c.status == "running"]
    host = container.attrs["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 512 * 1024 * 1024  # MemorySize, no swap
    assert host["NanoCpus"] == int(512 / 1769 * 1e9)  # 1,769 MB = 1 vCPU
    assert host["PidsLimit"] == 1024
    assert {"Name": "nofile", "Soft": 1024, "Hard": 1024} in host["Ulimits"]
    assert container.labels[OWNER_LABEL].split(":")[1] == str(os.getpid())  # this emulator (pytest) owns it


def test_errors_timeouts_crashes_and_out_of_memory_in_containers(emu: EmulatorHandle, docker_client: Any) -> None:
    lam = emu.lambda_client
    failed = call(lam, "Zip", {"action": "raise"})
    assert (failed.function_error, failed.payload["errorType"], failed.payload["errorMessage"]) == (
        "Unhandled", "ValueError", "the value was wrong")
    assert not call(lam, "Zip", {}).cold  # a handled error keeps the container
    timed_out = call(lam, "Zip", {"action": "sleep"})
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in timed_out.log
    assert call(lam, "Zip", {}).cold  # killed and replaced
    crashed = call(lam, "Zip", {"action": "exit"})
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    oom = call(lam, "Small", {"action": "allocate", "mb": 600})
    assert oom.payload["errorType"] == "Runtime.OutOfMemory", oom.payload
    assert call(lam, "Small", {}).cold
    # The failed ones were removed, not left stopped: only running and pre-created ones remain.
    assert wait_until(lambda: {c.status for c in our_containers(docker_client)} <= {"running", "created"})


def test_throttling_counts_containers_exactly(emu: EmulatorHandle) -> None:
    metrics = emu.metrics()["functions"]
    assert metrics["Zip"]["Throttles"] == 0 and metrics["Zip"]["ConcurrentExecutions"] == 0


# -- nothing left behind ---------------------------------------------------------------------------
def _write_app(folder: Path) -> Path:
    """A template of one 1,024 MB function "Fn" running APP from `folder`/code; its path."""
    code = folder / "code"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(APP))
    template = folder / "template.json"
    template.write_text(json.dumps({"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {
        "CodeUri": str(code), "Handler": "app.handler", "Runtime": "python3.11", "MemorySize": 1024}}}}))
    return template


def _start_cli(template: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "up", "--port", "0", "--backend", "none", "--template", str(template), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://"), url
    return process, url


def _invoke(url: str, name: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(f"{url}/2015-03-31/functions/{name}/invocations", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_no_container_is_left_after_shutdown_nor_after_the_emulator_is_killed_and_restarted(
    tmp_path: Path, docker_client: Any
) -> None:
    template = _write_app(tmp_path)
    args = ("--execution", "container", "--runtime-image", f"python3.11={runtime_image()}")
    killed, url = _start_cli(template, *args)
    try:
        assert _invoke(url, "Fn")["task_root"] == "/var/task"
        owner = {OWNER_LABEL: next(iter(our_containers(docker_client)), None).labels[OWNER_LABEL]}  # type: ignore[union-attr]
        assert len(our_containers(docker_client, **owner)) == 2  # the running one and the pre-created one
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # no chance to clean up
        killed.wait()
    assert our_containers(docker_client, **owner), "the killed emulator's containers are still there until a restart"
    restarted, url = _start_cli(template, *args)
    try:
        assert wait_until(lambda: not our_containers(docker_client, **owner)), "the restart did not sweep them"
        assert _invoke(url, "Fn")["task_root"] == "/var/task"
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.wait(60)
        for process in (killed, restarted):
            process.stdout.close()  # type: ignore[union-attr]
    owners = {str(killed.pid), str(restarted.pid)}
    left = [c for c in our_containers(docker_client) if c.labels[OWNER_LABEL].split(":")[1] in owners]
    assert left == []


def test_a_reaped_or_shut_down_container_logs_no_runtime_crash(tmp_path: Path, docker_client: Any) -> None:
    # A container's kill is a request its engine carries out a little later; the Runtime API
    # used to close at once, and awslambdaric, parked on /next, logged "Failed to get next"
    # and a traceback into the function's log at every idle reap and at shutdown.
    template = _write_app(tmp_path)
    output = tmp_path / "emulator.log"
    with open(output, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "up", "--port", "0", "--backend", "none", "--template", str(template),
             "--execution", "container", "--runtime-image", f"python3.11={runtime_image()}", "--container-pool", "0",
             "--keep-alive", "1"],
            stdout=subprocess.PIPE, stderr=sink, text=True, start_new_session=True,
        )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert _invoke(url, "Fn")["task_root"] == "/var/task"
        owner = {OWNER_LABEL: our_containers(docker_client)[0].labels[OWNER_LABEL]}
        assert wait_until(lambda: not our_containers(docker_client, **owner), 30), "the idle container was not reaped"
        assert _invoke(url, "Fn")["task_root"] == "/var/task"  # a new one, then shutdown with it running
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
        process.stdout.close()  # type: ignore[union-attr]
    log = output.read_text()
    assert log.count("START RequestId") == 2, log
    assert "Failed to get next" not in log and "Traceback" not in log, log
