"""Fixtures of the component tests (real fork servers and environments)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest_asyncio

from environment_kit import Runtime, close_runtime, make_runtime


@pytest_asyncio.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await make_runtime(tmp_path)
    yield runtime
    await close_runtime(runtime)
