"""REPORT lines of environments that died: the peak memory is still reported, from the
memory cgroup where the emulator may create one, else from the watchdog's samples and the
process's own peak (README, "Memory, crashes and processes")."""

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


@pytest.mark.parametrize("memory_limits", ["auto", "watchdog"])
@pytest.mark.parametrize("event, status", [({"crash": True}, "Status: error"), ({}, "Status: timeout")])
def test_a_dead_environment_still_reports_its_peak_memory(lambda_emulator_factory, event, status, memory_limits) -> None:
    emu = lambda_emulator_factory({"hog": inline_function(HOG, Timeout=1)}, backend="none", memory_limits=memory_limits)
    response = emu.lambda_client.invoke(FunctionName="hog", Payload=json.dumps(event), LogType="Tail")
    report = next(line for line in base64.b64decode(response["LogResult"]).decode().splitlines() if line.startswith("REPORT"))
    assert status in report
    assert int(re.search(r"Max Memory Used: (\d+) MB", report).group(1)) >= 40
