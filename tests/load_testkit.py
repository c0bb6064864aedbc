"""Helpers for the scenario tests of `emulator load` runs against a running emulator: a
function they load, and a run whose exact counts are held with a gate the test opens.

Imported by tests/scenario (pytest puts this folder on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from core_testkit import Gate, wait_until
from emulator.load import runner

RUN_TIMEOUT_S = 120
ECHO = "def handler(event, context):\n    return event\n"


def gated_throttled_run(emulator: Any, gate: Gate, scenario: Any, out_dir: Path) -> runner.LoadResult:
    """The load run of `scenario` (20 requests to the function "gated", whose reserved
    concurrency is 2) on a thread: two run and wait at `gate`, so exactly 18 are throttled;
    then the gate opens and the two succeed. The run's result once it has ended."""
    results: list[runner.LoadResult] = []
    worker = threading.Thread(target=lambda: results.append(
        runner.run(scenario, out_dir=out_dir, endpoint=emulator.url, display=False)))
    worker.start()
    try:
        assert wait_until(lambda: gate.arrived() == 2 and
                          emulator.metrics()["functions"].get("gated", {}).get("Throttles") == 18, timeout_s=60)
    finally:
        gate.open()
        worker.join(RUN_TIMEOUT_S)
    [result] = results
    return result
