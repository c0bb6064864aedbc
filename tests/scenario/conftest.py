"""Fixtures the scenario tests share. Each module brings its own `emu` (the emulator running
its template); these build on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.config import Config as BotoConfig

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


@pytest.fixture
def lam(emu: EmulatorHandle) -> Any:
    """The module's emulator's boto3 Lambda client."""
    return emu.lambda_client


@pytest.fixture(scope="module")
def unchecked(emu: EmulatorHandle) -> Any:
    """A Lambda client that sends what it is given (botocore's own checks off, one attempt),
    as a tool in another language might: the emulator's answers are then what is tested."""
    return emu.client("lambda", config=BotoConfig(parameter_validation=False, retries={"total_max_attempts": 1}))
