"""The example's ramp, shorter (2 -> 20 requests/s over 12 s), run for real, and the committed
sample report of the full ramp: the throttles begin where Little's law puts the function's
limit, reserved concurrency / duration
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html), and concurrency
reaches the reservation exactly, never more.

The knee is taken from the run's own figures (the handler's measured average Duration), so
a slow machine moves it and the test with it. The tolerance comes from the ramp's slope: the
first throttled second is placed to within one second (answers are counted in the second they
arrive), and whether N + 1 requests overlap depends on the rate over one duration."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from emulator.pytest_plugin import run_load

HERE = Path(__file__).resolve().parent
RESERVED = 5  # template.yaml: ReservedConcurrentExecutions
SHORT_RAMP = {"name": "ramp", "kind": "ramp", "from": 2, "to": 20, "duration": "12s"}
THROTTLE_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"

_spec = importlib.util.spec_from_file_location("sample_reports", HERE.parent / "sample_reports.py")
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)


def assert_the_knee(report: dict[str, Any]) -> None:
    (phase,) = report["scenario"]["phases"]
    (ramp,) = phase["segments"]
    slope = (ramp["rate_to"] - ramp["rate_from"]) / ramp["duration_s"]  # requests/s gained per second

    def planned_rate(second: float) -> float:
        return ramp["rate_from"] + slope * second

    totals = report["client"]["totals"]
    assert totals["sent"] == totals["expected_requests"]
    assert totals["errors"] == totals["dropped"] == 0
    assert totals["throttled"] > 0 and set(totals["throttles_by_reason"]) == {THROTTLE_REASON}
    # Concurrency reaches the reservation, exactly.
    assert samples.peak(report, "ConcurrentExecutions", FunctionName="limited") == RESERVED
    assert samples.peak(report, "ConcurrencyLimit", FunctionName="limited") == RESERVED
    # The knee: Little's law with the measured duration.
    duration_s = samples.series(report, "Duration", FunctionName="limited")["summary"]["avg"] / 1000
    knee = RESERVED / duration_s
    series = report["client"]["series"]
    throttled = dict(zip(series["second"], series["throttled"]))
    first = min(second for second, count in throttled.items() if count)
    # Not before the offered rate passed the knee ...
    assert planned_rate(first + 1) >= knee - slope * duration_s, (first, knee, throttled)
    # ... and at once after it: every second wholly above it throttles.
    tolerance = slope * (1 + duration_s)
    assert planned_rate(first) <= knee + tolerance, (first, knee, throttled)
    above = [s for s in throttled if planned_rate(s) > knee + tolerance and s + 1 <= ramp["duration_s"]]
    assert above and all(throttled[s] > 0 for s in above), (knee, throttled)


@pytest.mark.scenario
def test_a_ramp_finds_the_concurrency_limit(tmp_path: Path) -> None:
    result = run_load(HERE / "load.yaml", out_dir=tmp_path, phases=[SHORT_RAMP])  # its thresholds must pass
    samples.validate(result.report)
    assert result.report["client"]["totals"]["expected_requests"] == 132  # (2 + 20) / 2 x 12 s
    assert_the_knee(result.report)


def test_the_sample_report_shows_the_knee() -> None:
    report = samples.checked_report(HERE / "sample-report")
    assert report["verdict"] == "pass"
    assert report["client"]["totals"]["expected_requests"] == 420  # (1 + 20) / 2 x 40 s
    assert_the_knee(report)
