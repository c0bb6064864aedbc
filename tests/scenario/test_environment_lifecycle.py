"""Execution environments over time, through boto3: code reload without a restart, the
keep-alive reaper, and choosing the interpreter from the function's Runtime.
"""

from __future__ import annotations

import logging
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from core_testkit import ProcessId, call, function_metrics, running, running_children, wait_until, working_python

pytestmark = pytest.mark.scenario

# The code watcher polls every second (server.CODE_WATCH_INTERVAL_S); ten polls is plenty.
CODE_RELOAD_WAIT_S = 10.0

VERSIONED = """
import os
def handler(event, context):
    return {"version": "v1", "pid": os.getpid()}
"""

PIDS = """
import os, sys
def handler(event, context):
    return {"pid": os.getpid(), "ppid": os.getppid(), "version": sys.version, "execution_env": os.environ["AWS_EXECUTION_ENV"]}
"""


def function(code_dir: Path, **properties: Any) -> dict[str, Any]:
    props = {"CodeUri": str(code_dir), "Handler": "index.handler", "Runtime": "python3.11", **properties}
    return {"Type": "AWS::Serverless::Function", "Properties": props}


def test_edited_code_is_served_by_new_environments_without_a_restart(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text(VERSIONED)
    emu = lambda_emulator_factory({"reloading": function(tmp_path)}, backend="none")
    lam = emu.lambda_client
    first = call(lam, "reloading").payload
    assert first["version"] == "v1"
    # Same length, written right after the first import: a same-second, same-size edit.
    (tmp_path / "index.py").write_text(VERSIONED.replace('"v1"', '"v2"'))
    seen = wait_until(lambda: call(lam, "reloading").payload["version"] == "v2", timeout_s=CODE_RELOAD_WAIT_S, interval_s=0.1)
    assert seen, "the edited code was never served"
    latest = call(lam, "reloading")
    assert latest.payload["version"] == "v2" and latest.payload["pid"] != first["pid"]
    with urllib.request.urlopen(emu.url + "/_emulator/health", timeout=10) as response:
        assert response.status == 200  # the same emulator, still serving
    config = lam.get_function_configuration(FunctionName="reloading")
    assert config["CodeSize"] > 0


def test_idle_environment_is_stopped_after_keep_alive_and_the_next_call_is_cold(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text(PIDS)
    emu = lambda_emulator_factory({"idler": function(tmp_path)}, backend="none", keep_alive=0.5)
    lam = emu.lambda_client
    first = call(lam, "idler")
    env = ProcessId.of(first.payload["pid"])
    template = first.payload["ppid"]
    assert first.cold
    assert wait_until(lambda: not env.alive), "the idle environment outlived its keep-alive"
    assert wait_until(lambda: running_children(template) == []), "the template still has environments"
    assert running(template) is not None
    second = call(lam, "idler")
    assert second.cold and second.payload["pid"] != env.pid
    assert function_metrics(emu, "idler")["ColdStarts"] == 2


def test_python312_function_runs_on_a_python312_interpreter(lambda_emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = working_python(12)
    if found is None:
        pytest.skip("no working python3.12 on PATH (shutil.which('python3.12') is None or does not run 3.12)")
    _, overrides = found
    for key, value in overrides.items():
        monkeypatch.setenv(key, value)  # e.g. PYENV_VERSION for a pyenv shim
    (tmp_path / "index.py").write_text(PIDS)
    emu = lambda_emulator_factory(
        {"modern": function(tmp_path, Runtime="python3.12"), "current": function(tmp_path)}, backend="none"
    )
    modern = call(emu.lambda_client, "modern").payload
    current = call(emu.lambda_client, "current").payload
    assert modern["version"].startswith("3.12.")
    assert modern["execution_env"] == "AWS_Lambda_python3.12"
    assert current["version"].split()[0] == sys.version.split()[0]
    assert modern["ppid"] != current["ppid"]  # one template per interpreter


def test_unknown_python_runtime_runs_on_our_interpreter_with_a_warning(
    lambda_emulator_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.execution.pool")
    (tmp_path / "index.py").write_text(PIDS)
    emu = lambda_emulator_factory({"future": function(tmp_path, Runtime="python3.99")}, backend="none")
    result = call(emu.lambda_client, "future")
    assert result.function_error is None
    assert result.payload["version"].split()[0] == sys.version.split()[0]
    assert result.payload["execution_env"] == "AWS_Lambda_python3.99"
    assert any("python3.99" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


def test_handlers_own_modules_named_like_ours_are_theirs(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    """Our runtime lives under a private name in the handler process: a function may have
    modules called `runtimes`, `sources` or `emulator`, and the runtime's folder is not on
    its sys.path."""
    (tmp_path / "runtimes.py").write_text("OWNER = 'user runtimes'\n")
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "__init__.py").write_text("OWNER = 'user sources'\n")
    (tmp_path / "emulator.py").write_text("OWNER = 'user emulator'\n")
    (tmp_path / "index.py").write_text(
        "import sys, runtimes, sources, emulator\n"
        "def handler(event, context):\n"
        "    ours = sorted({name.split('.')[0] for name in sys.modules if 'lambda_emulator' in name})\n"
        "    leaked = [p for p in sys.path if 'lambda-emulator-rt-' in p]\n"
        "    return [runtimes.OWNER, sources.OWNER, emulator.OWNER, ours, leaked]\n"
    )
    emu = lambda_emulator_factory({"shadowing": function(tmp_path)}, backend="none")
    assert call(emu.lambda_client, "shadowing").payload == [
        "user runtimes", "user sources", "user emulator", ["_lambda_emulator_runtime"], []
    ]
