"""The overpull example as a test: the bug puts valid messages in the DLQ, the fix does not.

Runs the example's own template and driver (drive.py) against an emulator started by the
`lambda_emulator_factory` fixture.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
MESSAGES = 60

pytestmark = pytest.mark.scenario


def load_driver():
    spec = importlib.util.spec_from_file_location("sqs_overpull_drive", HERE / "drive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settled_metrics(emu: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    """/_emulator/metrics once no mapping holds a batch: the queues are empty, so a batch still
    running can only be one whose messages were moved while it ran; its delete ends its count."""
    deadline = time.monotonic() + timeout_s
    while True:
        snapshot = emu.metrics()
        held = sum(m["BatchesInFlight"] for m in snapshot["event_source_mappings"].values())
        if not held or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.05)


def test_maximum_concurrency_keeps_valid_messages_out_of_the_dlq(lambda_emulator_factory):
    drive = load_driver()
    emu = lambda_emulator_factory(HERE / "template.yaml")
    result = drive.drive(emu.client("sqs"), messages=MESSAGES, timeout_s=60)
    snapshot = settled_metrics(emu)
    print(drive.report(result, snapshot))
    functions = snapshot["functions"]
    mappings = {m["FunctionArn"].rsplit(":", 1)[1]: m for m in snapshot["event_source_mappings"].values()}
    # the bug: the handler never failed, yet messages were dead-lettered after throttles
    assert result["bug"]["dead_lettered"] > 0
    assert functions["overpull-bug-consumer"]["Errors"] == 0
    assert mappings["overpull-bug-consumer"]["BatchesThrottled"] > 0
    # every message in the DLQ has its cause, both of the throttle wave: throttled until the
    # visibility timeout ran out, or started too late after its throttle retries and ran past
    # it; how they split follows the machine's timing (a loaded one can give all of one kind)
    causes = mappings["overpull-bug-consumer"]["DeadLetterBoundByCause"]
    assert sum(causes.values()) == result["bug"]["dead_lettered"], causes
    assert set(causes) <= {"Throttled", "VisibilityTimeoutExpired"}, causes
    # the fix: everything processed, nothing throttled
    assert result["fix"] == {"sent": MESSAGES, "dead_lettered": 0}
    assert mappings["overpull-fix-consumer"]["MessagesDeleted"] == MESSAGES
    assert mappings["overpull-fix-consumer"]["BatchesThrottled"] == 0
    assert functions["overpull-fix-consumer"]["Errors"] == 0
