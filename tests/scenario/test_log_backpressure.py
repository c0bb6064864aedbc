"""Logs never block: with the emulator's stderr a pipe nobody reads (a paused terminal,
`Popen(stderr=PIPE)` never read), a chatty handler still gets every invocation answered,
the health check answers, and what could not be written is counted and dropped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from host_testkit import EXIT_WAIT_S, emulator_process, write_function

pytestmark = pytest.mark.scenario

CHATTY = """
def handler(event, context):
    for i in range(event["lines"]):
        print("chatty line", i, "x" * 200)
    return {"ok": True}
"""
INVOCATIONS = 60
LINES_PER_INVOCATION = 500  # ~100 KB each: the pipe (64 KB) is full after the first
ANSWER_WITHIN_S = 20.0


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=ANSWER_WITHIN_S) as response:
        return json.loads(response.read())


def test_a_stderr_nobody_reads_blocks_neither_invocations_nor_the_health_check(tmp_path: Path) -> None:
    template = write_function(tmp_path, CHATTY)
    with emulator_process(tmp_path, template, "--backend", "none", stderr=subprocess.PIPE) as emulator:
        invoke_url = emulator.url + "/2015-03-31/functions/fn/invocations"
        for _ in range(INVOCATIONS):
            assert _post(invoke_url, {"lines": LINES_PER_INVOCATION}) == {"ok": True}
            assert emulator.get_json("/_emulator/health", timeout=ANSWER_WITHIN_S)["status"] == "ready"
        logs = emulator.get_json("/_emulator/metrics", timeout=ANSWER_WITHIN_S)["logs"]
        assert logs["dropped_lines"] > 0 and logs["dropped_chars"] > 0
        emulator.proc.send_signal(signal.SIGTERM)  # and it still shuts down
        assert emulator.proc.wait(EXIT_WAIT_S) == 0
