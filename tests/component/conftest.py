"""Fixtures of the component tests (real fork servers and environments, real moto servers)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from backend_testkit import fast_and_plain_moto
from emulator.backend.moto_process import MotoServer
from environment_kit import Runtime, close_runtime, make_runtime


@pytest_asyncio.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await make_runtime(tmp_path)
    yield runtime
    await close_runtime(runtime)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, MotoServer]]:
    """The module's moto pair, "fast" (as the emulator starts it) and "plain" (moto as it is)."""
    with fast_and_plain_moto() as started:
        yield started
