"""`emulator tune`: Power Tuning's output from a real emulator running the example's
CPU-bound handler (examples/power-tuning)."""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from pathlib import Path

import pytest

from emulator.advice import tuning
from emulator.advice.cost import load_prices
from emulator.load.tune import tune

pytestmark = pytest.mark.scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "power-tuning" / "template.yaml"
NUM = 3


def test_tune_writes_power_tunings_output_and_the_report(tmp_path: Path) -> None:
    parsed = tuning.parse_input({"powerValues": [1769, 128], "num": NUM, "payload": {"rounds": 20000},
                                 "strategy": "speed", "discardTopBottom": 0})
    table, where = load_prices()
    results = tune("crunch", parsed, endpoint=None, template=EXAMPLE, out_dir=tmp_path, prices=(table, where))

    report = json.loads((tmp_path / "report.json").read_text())
    assert json.loads((tmp_path / "tuning.json").read_text()) == {"results": results}
    details = report["tuning"]
    assert details["function"] == "crunch" and details["architecture"] == "x86_64"
    billed = {int(k): v for k, v in details["billed_durations_ms"].items()}
    assert sorted(billed) == [128, 1769] and all(len(v) == NUM for v in billed.values())
    assert all(d >= 1 and d == int(d) for v in billed.values() for d in v)  # whole milliseconds, as REPORT bills

    # The tool's figures, recomputed from the billed durations
    min_cost = tuning.cost_per_ms(table["regions"]["us-east-1"]["lambda"]["gb_second"]["x86_64"], 128)
    by_power = {s["value"]: s for s in results["stats"]}
    for power, durations in billed.items():
        average = sum(durations) / NUM
        assert by_power[power]["averageDuration"] == pytest.approx(average)
        assert by_power[power]["averagePrice"] == pytest.approx(math.ceil(average) * min_cost * power / 128)
    assert results["stateMachine"]["lambdaCost"] == pytest.approx(
        sum(math.ceil(d) * min_cost * p / 128 for p, ds in billed.items() for d in ds))
    fastest = min(by_power.values(), key=lambda s: s["averageDuration"])
    assert results["power"] == fastest["value"] and results["duration"] == fastest["averageDuration"]

    hash_part = results["stateMachine"]["visualization"].split("#", 1)[1]
    sizes, times, costs = (base64.b64decode(part) for part in hash_part.split(";"))
    assert struct.unpack("<2h", sizes) == (128, 1769)
    assert struct.unpack("<2f", times) == pytest.approx([by_power[128]["averageDuration"], by_power[1769]["averageDuration"]], rel=1e-6)
    assert struct.unpack("<2f", costs) == pytest.approx([by_power[128]["averagePrice"], by_power[1769]["averagePrice"]], rel=1e-6)

    if os.geteuid() == 0 and os.access("/sys/fs/cgroup/cpu", os.W_OK):
        # CPU follows memory: 128 MB (0.07 vCPU) is clearly slower than 1,769 MB (1 vCPU)
        assert by_power[128]["averageDuration"] > 2 * by_power[1769]["averageDuration"], by_power
