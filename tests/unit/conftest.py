"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """`src/` in the test's folder, holding app.py with an echo handler: the CodeUri the
    template tests' functions name."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    return folder
