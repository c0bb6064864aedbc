"""Fixtures the scenario tests share. Each module brings its own `emu` (the emulator running
its template); these build on it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from apigw_testkit import Reply, fresh_gateway
from emulator.pytest_plugin import EmulatorHandle


@pytest.fixture(scope="module")
def out_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the test module's own, for the files its functions write (read back by the test)."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def gw(emu: EmulatorHandle) -> Callable[..., Reply]:
    """Raw HTTP to the module's emulator's API Gateway endpoint, the emulator reset first."""
    return fresh_gateway(emu)
