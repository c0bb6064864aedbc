"""The project's pytest settings (pyproject.toml) survive an earlier run's folder that pytest
cannot remove.

pytest keeps the tmp_path folders of the last 3 runs and removes older ones when a session
ends. A folder it cannot remove (here a mount inside it, as a killed Docker engine can leave)
makes it warn; with every warning an error, that warning used to abandon pytest's directory
listing half way and the whole run failed with "unclosed scandir iterator" after every test
had passed (CI, stop 14). Runs a real pytest session in a private TMPDIR.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings() -> str:
    """The project's warning filters, in a pyproject.toml of their own (JSON strings are TOML
    basic strings)."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return (f"[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = {json.dumps(options['asyncio_default_fixture_loop_scope'])}\n"
            f"filterwarnings = {json.dumps(options['filterwarnings'])}\n")  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs inside an old tmp_path folder needs root")
def test_an_earlier_runs_folder_that_cannot_be_removed_does_not_fail_the_run(tmp_path: Path) -> None:
    project, temp = tmp_path / "project", tmp_path / "tmp"
    project.mkdir()
    (project / "pyproject.toml").write_text(_settings())
    (project / "test_one.py").write_text("def test_one(tmp_path):\n    assert tmp_path.is_dir()\n")
    runs = temp / f"pytest-of-{getpass.getuser()}"
    for number in range(5):  # pytest-0 is past the 3 kept when this session is pytest-5
        (runs / f"pytest-{number}" / "busy").mkdir(parents=True)
    runs.chmod(0o700)
    busy = runs / "pytest-0" / "busy"
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(busy)], capture_output=True).returncode != 0:
        pytest.skip("this machine does not let root mount a tmpfs")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:lambda_emulator", "test_one.py"],
            cwd=project, env={**os.environ, "TMPDIR": str(temp)}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        for mounted in runs.glob("*/busy"):  # pytest renamed the folder to garbage-… before failing
            subprocess.run(["umount", str(mounted)], capture_output=True)
    output = run.stdout + run.stderr
    assert "ScandirIterator" not in output, output
    assert run.returncode == 0, output
    assert "1 passed" in output
    assert "(rm_rf) error removing" in output  # reported, not hidden
