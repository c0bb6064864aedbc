"""Shared test helpers. Scenario tests start real emulators through the plugin's factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def hello_template() -> Path:
    return EXAMPLES / "hello" / "template.yaml"


def pytest_report_header(config: pytest.Config) -> str:
    return f"emulator tests on Python {sys.version.split()[0]}"
