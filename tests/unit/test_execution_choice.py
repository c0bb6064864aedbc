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
