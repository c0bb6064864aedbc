"""REPORT lines of environments that died: the peak memory is still reported (from the
memory cgroup, where the emulator may create one)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from emulator.pytest_plugin import inline_function

pytestmark = pytest.mark.scenario

HOG = """
import os, time
def handler(event, context):
    blob = bytearray(40 * 1024 * 1024)
    if event.get("crash"):
        os._exit(3)
    time.sleep(5)
"""


@pytest.mark.parametrize("event, status", [({"crash": True}, "Status: error"), ({}, "Status: timeout")])
def test_a_dead_environment_still_reports_its_peak_memory(lambda_emulator_factory, event, status) -> None:
    emu = lambda_emulator_factory({"hog": inline_function(HOG, Timeout=1)}, backend="none")
    response = emu.lambda_client.invoke(FunctionName="hog", Payload=json.dumps(event), LogType="Tail")
    if not emu.server.factory.cgroups:  # known once the runtime template has started
        pytest.skip("no memory cgroups here (needs the cgroup v1 memory controller and root)")
    report = next(line for line in base64.b64decode(response["LogResult"]).decode().splitlines() if line.startswith("REPORT"))
    assert status in report
    assert int(re.search(r"Max Memory Used: (\d+) MB", report).group(1)) >= 40
