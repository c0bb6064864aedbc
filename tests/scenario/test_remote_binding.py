"""Safe by default: a non-loopback --host serves every API unauthenticated to the network, so
`emulator up` refuses it unless --allow-remote (EMULATOR_ALLOW_REMOTE) says so, and then
warns loudly at start-up."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from emulator.pytest_plugin import inline_function, running_emulator
from emulator.server import StartupError
from test_cli_processes import EXIT_WAIT_S, emulator_up, run_cli, write_app

pytestmark = pytest.mark.scenario


@pytest.mark.parametrize(
    "args, env",
    [(["--host", "0.0.0.0"], {}), (["--host", "::"], {}), ([], {"EMULATOR_HOST": "0.0.0.0"}),
     (["--host", "0.0.0.0", "--allow-remote", "false"], {})],
    ids=["flag", "ipv6-wildcard", "environment", "explicitly-false"],
)
def test_a_non_loopback_host_is_refused_without_allow_remote(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    write_app(tmp_path)
    result = run_cli("up", "--port", "0", "--backend", "none", *args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "--allow-remote" in result.stderr and "not a loopback address" in result.stderr
    assert result.stdout == ""  # no URL: it never started


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_allow_remote_binds_and_warns_loudly(tmp_path: Path, how: str) -> None:
    write_app(tmp_path)
    args, env = (["--allow-remote"], {}) if how == "flag" else ([], {"EMULATOR_ALLOW_REMOTE": "true"})
    with emulator_up(tmp_path, "--host", "0.0.0.0", "--port", "0", *args, env=env) as (proc, url, stderr):
        with urllib.request.urlopen(url + "/_emulator/health", timeout=10) as response:  # over loopback only
            assert json.loads(response.read())["status"] == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(EXIT_WAIT_S) == 0
    text = stderr.read_text()
    assert text.count("WARNING: listening on 0.0.0.0") == 1 and "without credentials" in text  # once, loud


def test_the_pytest_plugin_refuses_a_non_loopback_host_too() -> None:
    with pytest.raises(StartupError, match="--allow-remote"):
        with running_emulator({"echo": inline_function("def handler(e, c):\n    return e\n")}, backend="none", host="0.0.0.0"):
            pass
