"""Which backend runs a function, and with what command: pure choices, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.config import from_sources
from emulator.execution.backends import (
    CONTAINER, FORK, PROCESS_RUNTIME_API, ExecutionBackends, UnsupportedExecution, check_runnable, choose_execution,
)
from emulator.execution.process_backend import RuntimeCommandError, runtime_command
from emulator.functions.registry import FunctionVersion
from emulator.template.specs import FunctionSpec, ImageSpec


def version(**fields: object) -> FunctionVersion:
    spec = FunctionSpec(**{"name": "fn", "code_dir": Path("/code"), "handler": "app.handler", **fields})  # type: ignore[arg-type]
    return FunctionVersion(spec, "$LATEST", "us-east-1", "123456789012", 0.0)


def test_image_functions_always_run_in_containers_and_the_rest_where_execution_says() -> None:
    image = version(package_type="Image", image=ImageSpec(uri="repo:1"), handler="", runtime="")
    assert choose_execution(image, FORK) == CONTAINER
    assert choose_execution(version(), FORK) == FORK
    assert choose_execution(version(runtime="nodejs20.x"), PROCESS_RUNTIME_API) == PROCESS_RUNTIME_API


def test_a_runtime_that_cannot_be_forked_fails_start_up_with_the_fix() -> None:
    class Fork:
        max_environments = None

    backends = ExecutionBackends(Fork(), {}, lambda v: FORK)
    check_runnable(backends, version())  # Python forks
    with pytest.raises(UnsupportedExecution, match="nodejs20.x cannot be forked.*--execution process-runtime-api"):
        check_runnable(backends, version(runtime="nodejs20.x"))


def test_runtime_commands_follow_aws_clients_and_overrides(tmp_path: Path) -> None:
    python = "/usr/bin/python3.11"
    assert runtime_command(version().spec, python, {}) == [python, "-m", "awslambdaric", "app.handler"]
    node = version(runtime="nodejs20.x", code_dir=tmp_path).spec
    assert runtime_command(node, python, {}, which=lambda name: f"/opt/bin/{name}") == ["/opt/bin/aws-lambda-ric", "app.handler"]
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "aws-lambda-ric").write_text("")
    assert runtime_command(node, python, {}, which=lambda name: None) == [str(tmp_path / "node_modules/.bin/aws-lambda-ric"), "app.handler"]
    assert runtime_command(node, python, {"nodejs20.x": ("node", "/ric.mjs")}) == ["node", "/ric.mjs", "app.handler"]
    custom = version(runtime="provided.al2023", code_dir=tmp_path).spec
    with pytest.raises(RuntimeCommandError, match="needs an executable 'bootstrap'"):
        runtime_command(custom, python, {})
    (tmp_path / "bootstrap").write_text("#!/bin/sh\n")
    assert runtime_command(custom, python, {}) == [str(tmp_path / "bootstrap")]
    with pytest.raises(RuntimeCommandError, match="--runtime-command ruby3.3="):
        runtime_command(version(runtime="ruby3.3").spec, python, {})
    with pytest.raises(RuntimeCommandError, match="npm install aws-lambda-ric"):
        runtime_command(version(runtime="nodejs22.x", code_dir=Path("/nowhere")).spec, python, {}, which=lambda name: None)


def test_runtime_pairs_options_parse_and_refuse_what_they_cannot_read() -> None:
    config = from_sources({"runtime_image": "python3.12=img:1, nodejs20.x=node:2", "execution": "container"})
    assert config.runtime_image == (("python3.12", "img:1"), ("nodejs20.x", "node:2"))
    assert from_sources(environ={"EMULATOR_RUNTIME_COMMAND": "nodejs20.x=node /x/index.mjs"}).runtime_command == (
        ("nodejs20.x", "node /x/index.mjs"),)
    with pytest.raises(ValueError, match="--runtime-image: expected RUNTIME=VALUE"):
        from_sources({"runtime_image": "python3.12"})
    with pytest.raises(ValueError, match="--execution: expected one of fork, process-runtime-api, container"):
        from_sources({"execution": "vm"})


class _Engine:
    """What the container backend asks an engine about its bridge (a stand-in for Docker)."""

    where = "tcp://engine:2375"

    def __init__(self, gateway: str | None) -> None:
        self.gateway = gateway

    def bridge_gateway(self) -> str | None:
        return self.gateway


def test_a_bridge_network_reaches_the_host_at_a_local_gateway_or_at_the_address_given() -> None:
    from emulator.execution.container_backend import ContainerBackend, ContainerSettings

    def backend(**settings: object) -> ContainerBackend:
        return ContainerBackend(None, None, ContainerSettings(network="bridge", **settings))  # type: ignore[arg-type]

    local = backend()
    assert local._bridge_host(_Engine("127.0.0.2")) == "127.0.0.2"  # an address of this machine: listened on
    local.reach_host = "127.0.0.2"
    assert local.endpoint_hosts() == ("127.0.0.2",)
    assert local._endpoint_for_containers("http://127.0.0.1:4566") == "http://host.docker.internal:4566"
    for engine, why in ((_Engine(None), "it has no bridge network"), (_Engine("192.0.2.1"), "192.0.2.1 is not an address of this machine")):
        with pytest.raises(UnsupportedExecution, match=f"{why}.*--runtime-api-host ADDRESS"):
            backend()._bridge_host(engine)  # type: ignore[arg-type]
    given = backend(runtime_api_host="192.0.2.7")  # a remote engine's containers reach us there
    assert given._bridge_host(_Engine(None)) == "192.0.2.7"  # type: ignore[arg-type]
    given.reach_host = "192.0.2.7"
    assert given.endpoint_hosts() == ()  # the user listens there (--host)
    assert given._endpoint_for_containers("http://0.0.0.0:4566") == "http://192.0.2.7:4566"
