"""Code folders as users have them: symbolic-link loops and links pointing outside do not
stop the emulator (each is skipped with one warning), and watching a big folder for edits
costs an idle emulator (almost) no CPU: changes are notified, not found by walking.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from core_testkit import call
from host_testkit import emulator_process, process_cpu_s, write_function

pytestmark = pytest.mark.scenario

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def test_symlink_loops_and_outside_links_are_skipped_with_one_warning_each(
    lambda_emulator_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text(HANDLER)
    os.symlink(".", code / "self")
    os.symlink("b", code / "a")
    os.symlink("a", code / "b")
    os.symlink("/etc", code / "etc")
    props = {"CodeUri": str(code), "Handler": "index.handler", "Runtime": "python3.11", "AutoPublishAlias": "live"}
    with caplog.at_level(logging.WARNING, logger="emulator.functions.registry"):
        emu = lambda_emulator_factory({"Linked": {"Type": "AWS::Serverless::Function", "Properties": props}}, backend="none")
        lam = emu.lambda_client
        assert call(lam, "Linked").payload == {"ok": True}
        assert call(lam, "Linked", Qualifier="live").payload == {"ok": True}  # version 1: the copied folder
        version = lam.publish_version(FunctionName="Linked")  # same code: AWS returns version 1 again
        assert version["Version"] == "1"
    warnings = [record.getMessage() for record in caplog.records if "skipping the link" in record.getMessage()]
    assert sorted(message.split()[4] for message in warnings) == ["a", "b", "etc"]  # once each, not per walk


IDLE_WINDOW_S = 3.0
SETTLE_LIMIT_S = 60.0
# Walking /usr once a second (the former watcher) took ~0.5 CPU-s per second here; a
# watcher that only waits for notices takes a few milliseconds in the same window.
IDLE_CPU_BOUND_S = 0.3


def test_an_idle_emulator_watching_a_big_folder_uses_almost_no_cpu(tmp_path: Path) -> None:
    big = Path("/usr")
    if sum(1 for _ in zip(range(2000), big.rglob("*"))) < 2000:
        pytest.skip("/usr is too small here to make the point")
    template = write_function(tmp_path, HANDLER)
    text = template.read_text().replace(f"CodeUri: {tmp_path / 'src'}", f"CodeUri: {big}")
    template.write_text(text)
    with emulator_process(tmp_path, template, "--backend", "none") as emulator:
        # Start-up walks the folder once (its hash) and so does setting up the watches:
        # wait until that is over, bounded.
        deadline = time.monotonic() + SETTLE_LIMIT_S
        previous = process_cpu_s(emulator.proc.pid)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = process_cpu_s(emulator.proc.pid)
            settled, previous = now - previous < 0.05, now
            if settled:
                break
        before = process_cpu_s(emulator.proc.pid)
        time.sleep(IDLE_WINDOW_S)
        used = process_cpu_s(emulator.proc.pid) - before
        assert used < IDLE_CPU_BOUND_S, f"an idle emulator used {used:.2f} CPU-s in {IDLE_WINDOW_S:.0f} s watching {big}"
        assert emulator.get_json("/_emulator/health")["status"] == "ready"


def test_version_snapshots_are_removed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset and a stop remove the published versions' code copies (which may hold whole
    virtualenvs) in a worker thread: the event loop keeps serving meanwhile."""
    import asyncio
    import shutil

    from emulator.pytest_plugin import inline_function, running_emulator

    on_loop: list[bool] = []
    real_rmtree = shutil.rmtree

    def watched_rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if "lambda-emulator-versions-" in str(path):
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", watched_rmtree)
    with running_emulator({"fn": inline_function(HANDLER, FunctionName="fn")}, backend="none") as emu:
        emu.lambda_client.publish_version(FunctionName="fn")
        emu.reset()
    assert on_loop == [False, False]  # at the reset, then at the stop
