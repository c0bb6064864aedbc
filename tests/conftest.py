"""Shared pytest settings. Fixtures for the emulator come from its plugin (emulator.pytest_plugin)."""

from __future__ import annotations

import asyncio
import sys

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    return f"emulator tests on Python {sys.version.split()[0]}"


def pytest_configure(config: pytest.Config) -> None:
    # The looptime plugin asks pytest-asyncio's policy for the main thread's event loop
    # before every test, sync ones too; on Python 3.11, with no loop set, that *creates* one
    # that nobody closes, and its ResourceWarning fails whichever async test runs when it is
    # collected. Saying "no loop" explicitly makes the policy answer so instead; async tests
    # get their loops from pytest-asyncio as before.
    asyncio.get_event_loop_policy().set_event_loop(None)
