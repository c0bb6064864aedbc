"""`bench/run.py --emulator-src DIR` runs DIR's emulator, all of it, in either layout.

A checkout is not importable as it stands: pyproject.toml maps the top-level runtimes/ and
sources/ folders to emulator.runtimes and emulator.sources. Put on PYTHONPATH as it is, a
checkout supplies `emulator` while the editable install of the tree under test supplies
emulator.sources and emulator.runtimes: an A/B run would measure a mix of two commits.
The bench builds the checkout as it installs (bench/harness.stage_installed_tree) and
puts that first instead; these tests check the result for the current layout and for the
flat one of older commits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402

MODULES = ("emulator.cli", "emulator.runtimes.protocol", "emulator.sources.manager", "runtimes", "sources")


def origins(pythonpath: Path, cwd: Path) -> dict[str, str | None]:
    """Where each of MODULES comes from for a process started with this PYTHONPATH."""
    code = textwrap.dedent(f"""
        import importlib.util, json
        def origin(name):
            try:
                spec = importlib.util.find_spec(name)
            except ModuleNotFoundError:
                return None
            return spec.origin if spec else None
        print(json.dumps({{name: origin(name) for name in {MODULES!r}}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**os.environ, "PYTHONPATH": str(pythonpath)},
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def inside(path: str | None, folder: Path) -> bool:
    return path is not None and Path(path).is_relative_to(folder)


@pytest.fixture
def current_checkout(tmp_path: Path) -> Path:
    """A copy of this tree's package folders and metadata: another commit, as far as Python knows."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("emulator", "runtimes", "sources"):
        shutil.copytree(ROOT / folder, checkout / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, checkout / name)
    return checkout


def test_current_layout_runs_wholly_from_the_checkout(current_checkout: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # The defect: the checkout as it stands gives its own `emulator` but another tree's
    # emulator.sources and emulator.runtimes (or none).
    as_is = origins(current_checkout, scratch)
    assert inside(as_is["emulator.cli"], current_checkout)
    assert not inside(as_is["emulator.sources.manager"], current_checkout)
    assert not inside(as_is["emulator.runtimes.protocol"], current_checkout)

    lib = harness.stage_installed_tree(current_checkout, scratch)
    staged = origins(lib, scratch)
    for name in ("emulator.cli", "emulator.runtimes.protocol", "emulator.sources.manager"):
        assert inside(staged[name], lib), (name, staged[name])
    assert staged["runtimes"] is None and staged["sources"] is None
    assert sorted(os.listdir(lib)) == ["emulator"]
    # Nothing written into the checkout (egg-info and build folders go to the scratch folder).
    assert sorted(p.name for p in current_checkout.iterdir()) == ["README.md", "emulator", "pyproject.toml", "runtimes", "sources"]


def test_flat_layout_of_older_commits_runs_from_the_checkout(tmp_path: Path) -> None:
    """Before the restructure runtimes/ and sources/ were top-level packages of their own."""
    checkout = tmp_path / "old"
    for package in ("emulator", "runtimes", "sources"):
        (checkout / package).mkdir(parents=True)
        (checkout / package / "__init__.py").write_text("")
    (checkout / "emulator" / "cli.py").write_text("import runtimes, sources\n")
    (checkout / "sources" / "manager.py").write_text("")
    (checkout / "README.md").write_text("old\n")
    (checkout / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "lambda-scale-emulator"
        version = "0.1.0"
        readme = "README.md"

        [tool.setuptools.packages.find]
        include = ["emulator*", "runtimes*", "sources*"]
    """))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    lib = harness.stage_installed_tree(checkout, scratch)
    assert sorted(os.listdir(lib)) == ["emulator", "runtimes", "sources"]
    staged = origins(lib, scratch)
    for name in ("emulator.cli", "runtimes", "sources"):
        assert inside(staged[name], lib), (name, staged[name])


def test_a_tree_that_does_not_build_is_a_clear_error(tmp_path: Path) -> None:
    checkout = tmp_path / "broken"
    (checkout / "emulator").mkdir(parents=True)
    (checkout / "emulator" / "__init__.py").write_text("")
    (checkout / "pyproject.toml").write_text("[project\n")
    with pytest.raises(RuntimeError, match="could not build the package tree"):
        harness.stage_installed_tree(checkout, tmp_path)
