"""Scenario files of `emulator load` (emulator/load/scenario.py): the bundled ones load, and
mistakes are named before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.load.scenario import ScenarioError, build, from_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(ROOT.glob("examples/*/load.yaml")), ids=lambda p: p.parent.name)
def test_bundled_scenarios_load(path: Path) -> None:
    scenario = from_file(path)
    assert scenario.emulator.template is not None and scenario.emulator.template.is_file()
    assert scenario.schedule.expected() > 0 and scenario.thresholds


def test_flags_override_the_file() -> None:
    scenario = from_file(ROOT / "examples/sqs-overpull/load.yaml", {"target": {"queue": "overpull-fix"}, "workers": 2})
    assert scenario.target["queue"] == "overpull-fix" and scenario.target["batch"] == 10 and scenario.workers == 2


@pytest.mark.parametrize(("raw", "message"), [
    ({"phases": [{"rate": 1, "duration": 1}]}, "'target' is required"),
    ({"target": {"function": "f"}}, "'phases' is required"),
    ({"target": {"function": "f"}, "phases": [{"rate": 1, "duration": 1}], "rps": 3}, "unknown key"),
    ({"target": {"function": "f", "body": 1}, "phases": [{"rate": 1, "duration": 1}]}, "unknown key"),
    ({"target": {"function": "f"}, "phases": [{"rate": 1, "duration": 1}], "arrivals": "bursty"}, "arrivals"),
    ({"target": {"function": "f"}, "phases": [{"rate": 1, "duration": 1}], "thresholds": ["p99 < 3"]}, "cannot read"),
    ({"target": {"function": "f"}, "phases": [{"rate": 1, "duration": 1}], "workers": 0}, "workers"),
    ({"target": {"function": "f"}, "phases": [{"rate": 1, "duration": 1}], "emulator": {"tmpl": "x"}}, "emulator"),
])
def test_mistakes_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        build(raw, Path("."))
