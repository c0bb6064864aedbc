"""The example's tuning run, smaller: two sizes, three runs each (tests/scenario/test_tune.py
checks every figure)."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.advice import tuning
from emulator.advice.cost import load_prices
from emulator.load.tune import tune

HERE = Path(__file__).parent


def test_the_example_tunes(tmp_path: Path) -> None:
    raw = {**json.loads((HERE / "tune.json").read_text()), "powerValues": [128, 1769], "num": 3}
    results = tune("crunch", tuning.parse_input(raw), endpoint=None, template=HERE / "template.yaml",
                   out_dir=tmp_path, prices=load_prices())
    assert [s["value"] for s in results["stats"]] == [128, 1769]
    assert results["power"] in (128, 1769)
    assert json.loads((tmp_path / "report.json").read_text())["tuning"]["function"] == "crunch"
