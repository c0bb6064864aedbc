"""Containers on a bridge network (`--container-network bridge`) reach the emulator through
the engine's bridge gateway, which Docker's `host-gateway` (`host.docker.internal`) names:
the Runtime API listens there, and so does the emulator's endpoint (AWS_ENDPOINT_URL), while
--host stays loopback. The engine is a second dockerd this test starts with a bridge of its
own (the machine's engine may run without one: dockerd --bridge=none), on its own socket and
data folder (kept between runs: its image cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import call
from execution_testkit import CONTAINER, PYTHON_RUNTIME, host_bridge, runtime_image, second_engine, settings
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ENGINE_DATA = Path("/var/lib/lambda-emulator-test-bridge-engine")
APP = """
import json, os, time, urllib.request

def handler(event, context):
    if event.get("action") == "sleep":
        time.sleep(10)
    with urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + "/2015-03-31/functions/Echo/invocations",
                                data=b'{"from": "inside"}', timeout=10) as response:
        echoed = json.loads(response.read())
    return {"endpoint": os.environ["AWS_ENDPOINT_URL"], "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"], "echoed": echoed}
"""
ECHO = """
def handler(event, context):
    return event
"""


@pytest.fixture(scope="module")
def bridge_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(engine URL, gateway address): a bridge of this test's own (name and /24 unique to
    this process, in 198.18.0.0/15, the range set aside for benchmarking networks: RFC 2544,
    so no real network of the machine is shadowed), and an engine whose containers use it."""
    index = os.getpid() % 250
    name, gateway = f"lemubr{os.getpid() % 100000}", f"198.18.{index}.1"
    with host_bridge(name, f"{gateway}/24"):
        with second_engine(tmp_path_factory.mktemp("bridge-engine"), ENGINE_DATA, bridge=name) as url:
            yield url, gateway


@pytest.fixture(scope="module")
def emu(bridge_engine: tuple[str, str]) -> Iterator[EmulatorHandle]:
    url, _ = bridge_engine
    config: dict[str, Any] = {**settings(CONTAINER), "runtime_image": ((PYTHON_RUNTIME, runtime_image(url)),),
                              "docker_host": url, "container_network": "bridge"}
    template = {"Caller": inline_function(APP, MemorySize=1024, Timeout=3),
                "Echo": inline_function(ECHO, MemorySize=1024)}
    with running_emulator(template, backend="none", **config) as handle:
        yield handle


def test_a_container_on_a_bridge_reaches_its_runtime_api_and_the_endpoint_through_the_gateway(
    emu: EmulatorHandle, bridge_engine: tuple[str, str]
) -> None:
    _, gateway = bridge_engine
    result = call(emu.lambda_client, "Caller", {})
    assert result.function_error is None, result.payload
    assert result.payload["runtime_api"].split(":")[0] == gateway
    assert result.payload["endpoint"] == f"http://host.docker.internal:{emu.url.rsplit(':', 1)[1]}"
    assert result.payload["echoed"] == {"from": "inside"}  # a call to the endpoint, from inside a container
    assert emu.url.startswith("http://127.0.0.1:")  # --host stays loopback
    assert result.cold and not call(emu.lambda_client, "Caller", {}).cold


def test_a_timeout_on_a_bridge_replaces_the_container(emu: EmulatorHandle) -> None:
    timed_out = call(emu.lambda_client, "Caller", {"action": "sleep"})
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    again = call(emu.lambda_client, "Caller", {})
    assert again.function_error is None and again.cold
