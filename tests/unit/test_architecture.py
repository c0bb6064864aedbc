"""The house: one installed import namespace, and the layers written down as import contracts.

The contracts live in pyproject.toml ([tool.importlinter]); they are checked here against
the package exactly as it installs (runtimes/ and sources/ become emulator.runtimes and
emulator.sources), built with setuptools' build_py into a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = {"emulator": ROOT / "emulator", "emulator.runtimes": ROOT / "runtimes", "emulator.sources": ROOT / "sources"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package tree as `pip install` lays it out in site-packages."""
    target = tmp_path_factory.mktemp("site-packages")
    build_temp = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import setuptools; setuptools.setup()", "-q",
         "build", f"--build-base={build_temp}", "build_py", f"--build-lib={target}"],
        cwd=ROOT, check=True, capture_output=True,
    )
    return target


def test_one_top_level_package(installed: Path) -> None:
    assert sorted(os.listdir(installed)) == ["emulator"]


def test_every_package_folder_is_installed(installed: Path) -> None:
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in SOURCE_FOLDERS.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder)
            found.add(".".join([package, *relative.parts]))
    assert found == declared
    for package in declared:
        assert (installed / package.replace(".", "/") / "__init__.py").is_file(), package


def test_import_contracts_hold(installed: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
         "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=installed, env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout
    assert "Contracts: 6 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("generic", ["runtimes", "sources"])
def test_no_generic_top_level_names_in_the_users_environment(generic: str, tmp_path: Path) -> None:
    """A user package called `sources` or `runtimes` is theirs, not ours."""
    result = subprocess.run(
        [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({generic!r}) is None)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == "True"
