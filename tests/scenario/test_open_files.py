"""Open files: at the common default soft limit of 1,024 a burst of hundreds of concurrent
invocations works (the emulator raises its soft limit to the hard one), and when the hard
limit itself is too low the emulator says so at start-up and throttles new environments
with an AWS-shaped 429, never a `500 Too many open files`.
"""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import pytest

from core_testkit import wait_until
from host_testkit import BARRIER_HANDLER, emulator_process, in_flight, invoke_many, write_function

pytestmark = pytest.mark.scenario

BURST = 300
FILL_WAIT_S = 150.0


def _prlimit(soft: int, hard: int) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    return [prlimit, f"--nofile={soft}:{hard}", "--"]


def test_a_burst_of_300_concurrent_invocations_works_under_a_soft_limit_of_1024(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4 * BURST + 1024:
        pytest.skip(f"the hard open-files limit here ({hard}) is too low for this test")
    flag = tmp_path / "release"
    template = write_function(tmp_path, BARRIER_HANDLER, timeout=300)
    with emulator_process(tmp_path, template, "--backend", "none", "--log-invocations", "false",
                          prefix=_prlimit(1024, min(hard, 1 << 20))) as emulator:
        burst = invoke_many(emulator.url, "fn", [{"flag": str(flag)}] * BURST)
        # Hold every invocation in its handler until all of them are in flight (or some
        # answered early: that is the failure this test is about).
        wait_until(lambda: in_flight(emulator, "fn") >= BURST or burst.done, FILL_WAIT_S)
        flag.touch()
        results = burst.results()
        statuses = sorted({status for status, _ in results})
        assert statuses == [200], f"statuses {statuses}; first failure: {next(b for s, b in results if s != 200)!r}"
        bodies = [json.loads(body) for _, body in results]
        assert len({body["pid"] for body in bodies}) == BURST  # one environment each
        # Handlers keep Lambda's per-environment quota, not the control plane's raised limit.
        assert {tuple(body["nofile"]) for body in bodies} == {(1024, 1024)}
        host = emulator.get_json("/_emulator/metrics")["host"]
        assert host["open_files_limit"] > 1024  # raised to the hard limit
        assert "Too many open files" not in emulator.log


def test_a_hard_limit_too_low_is_reported_at_start_and_throttles_cleanly(tmp_path: Path) -> None:
    flag = tmp_path / "release"
    template = write_function(tmp_path, BARRIER_HANDLER, timeout=300)
    with emulator_process(tmp_path, template, "--backend", "none", "--log-invocations", "false",
                          prefix=_prlimit(256, 256)) as emulator:
        host = emulator.get_json("/_emulator/metrics")["host"]
        capacity = host["environment_limit"]
        assert 0 < capacity < 1000
        assert "open-files limit" in emulator.log and "the account concurrency (1000)" in emulator.log
        calls = capacity + 20
        burst = invoke_many(emulator.url, "fn", [{"flag": str(flag)}] * calls)
        wait_until(lambda: in_flight(emulator, "fn") >= capacity and emulator.get_json("/_emulator/metrics")["functions"]["fn"]["Throttles"] >= 20, FILL_WAIT_S)
        flag.touch()
        results = burst.results()
        statuses = [status for status, _ in results]
        assert statuses.count(200) == capacity, sorted(set(statuses))
        assert statuses.count(429) == calls - capacity, sorted(set(statuses))
        throttled = next(json.loads(body) for status, body in results if status == 429)
        assert throttled["Reason"] == "ConcurrentInvocationLimitExceeded"
        log = emulator.log
        assert "Too many open files" not in log and "Traceback" not in log
        assert "no open files left for another environment" in log
