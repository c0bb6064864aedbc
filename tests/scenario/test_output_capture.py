"""Output written below sys.stdout (os.write, subprocesses) reaches the function's log."""

from __future__ import annotations

import time

import pytest

from emulator.pytest_plugin import inline_function

pytestmark = pytest.mark.scenario

RAW_WRITER = """
import os, subprocess
def handler(event, context):
    os.write(1, b"raw line on fd 1\\n")
    subprocess.run(["sh", "-c", "echo from a subprocess; echo to stderr >&2"], check=True)
    return "done"
"""


def test_fd_level_output_is_logged_under_the_functions_name(lambda_emulator_factory) -> None:
    emu = lambda_emulator_factory({"raw": inline_function(RAW_WRITER)}, backend="none")
    seen: list[tuple[str, str]] = []
    emu.server.logs.listeners.append(lambda function, text: seen.append((function, text)))
    assert emu.invoke("raw") == "done"
    deadline = time.monotonic() + 10
    wanted = {"raw line on fd 1", "from a subprocess", "to stderr"}
    while True:
        logged = "".join(text for function, text in seen if function == "raw")
        if all(line in logged for line in wanted):
            break
        assert time.monotonic() < deadline, f"missing from the function's log: {wanted} in {logged!r}"
        time.sleep(0.01)
