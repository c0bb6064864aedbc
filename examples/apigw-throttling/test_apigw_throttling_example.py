"""The apigw-throttling example as a test: its own template and driver (drive.py) against an
emulator started by the `lambda_emulator_factory` fixture. The layers that throttled, the
cache's hits and the functions' invocations are read from the gateway's metrics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.scenario


def load_driver():
    spec = importlib.util.spec_from_file_location("apigw_throttling_drive", HERE / "drive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_layer_throttles_and_the_cache_takes_load_off_the_function(lambda_emulator_factory):
    drive = load_driver()
    emu = lambda_emulator_factory(HERE / "template.yaml")
    result = drive.drive(emu.api_url)
    snapshot = emu.metrics()
    print(drive.report(result, snapshot))
    phases = list(result.values())
    stage = next(api for api in snapshot["api_gateway"]["apis"].values() if api["Name"] == "ShopApi")["Stages"]["prod"]
    routes = stage["Routes"]
    functions = snapshot["functions"]
    # 1. the cache: 50 answers, one invocation
    assert phases[0] == {200: 50}
    assert functions["shop-products"]["Invocations"] == 2  # tea once, pots once (phase 2)
    # misses: tea and pots, once each; hits: tea 49 times, pots for every admitted request but the first
    assert (stage["CacheMissCount"], stage["CacheHitCount"]) == (2, 49 + phases[1][200] - 1)
    # 2. the free plan's burst of 5 (refilled at 0.5/s while the loop runs: at most one more)
    assert 5 <= phases[1][200] <= 6 and phases[1][200] + phases[1][429] == 20
    assert routes["GET /products"]["ThrottlesByLayer"] == {"usage-plan": phases[1][429]}
    # 3. POST /orders' own limit: burst 10, 1 per second
    assert 10 <= phases[2][201] <= 12 and phases[2][201] + phases[2][429] == 30
    assert routes["POST /orders"]["ThrottlesByLayer"] == {"method": phases[2][429]}
    assert functions["shop-orders"]["Invocations"] == phases[2][201]
    # 4. the authorizer: 401 without invoking; invoked once per token (results cached 300 s)
    assert phases[3] == {401: 3} and phases[4] == {401: 3}
    assert functions["shop-authorizer"]["Invocations"] == 2  # "Bearer ada" and "Bearer bob"
