"""Shared pytest settings. Fixtures for the emulator come from its plugin (emulator.pytest_plugin)."""

from __future__ import annotations

import sys

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    return f"emulator tests on Python {sys.version.split()[0]}"
