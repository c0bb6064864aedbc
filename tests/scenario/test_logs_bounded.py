"""Logs are bounded in time and memory.

They never block: with the emulator's stderr a pipe nobody reads (a paused terminal,
`Popen(stderr=PIPE)` never read), a chatty handler still gets every invocation answered,
the health check answers, and what could not be written is counted and dropped. And
`LogType: Tail` keeps only the tail while collecting: a handler printing 100 MB does not
cost the control plane 100 MB.
"""

from __future__ import annotations

import base64
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


LOUD = """
import sys
def handler(event, context):
    block = ("y" * 1023 + "\\n") * 1024  # 1 MiB
    for _ in range(event["mib"]):
        sys.stdout.write(block)
    print("the last line")
    return {"ok": True}
"""
LOUD_MIB = 100
# The control plane may grow by this much while a 100 MiB log streams through it (frames
# are decoded one at a time); collecting the whole log would need 100 MiB and more.
TAIL_MEMORY_BOUND_MIB = 40


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_log_tail_of_a_100_mib_log_is_collected_in_bounded_memory(tmp_path: Path) -> None:
    template = write_function(tmp_path, LOUD)
    with emulator_process(tmp_path, template, "--backend", "none", "--log-invocations", "false") as emulator:
        invoke_url = emulator.url + "/2015-03-31/functions/fn/invocations"
        warm = urllib.request.Request(invoke_url, data=json.dumps({"mib": 0}).encode(), method="POST")
        urllib.request.urlopen(warm, timeout=60).read()
        before = _peak_rss_mib(emulator.proc.pid)
        request = urllib.request.Request(
            invoke_url, data=json.dumps({"mib": LOUD_MIB}).encode(), method="POST", headers={"X-Amz-Log-Type": "Tail"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            assert json.loads(response.read()) == {"ok": True}
            tail = base64.b64decode(response.headers["X-Amz-Log-Result"])
        grown = _peak_rss_mib(emulator.proc.pid) - before
        assert len(tail) == 4096
        assert b"the last line\n" in tail and tail.rstrip().split(b"\n")[-1].startswith(b"REPORT RequestId:")
        assert grown < TAIL_MEMORY_BOUND_MIB, f"the control plane grew by {grown:.0f} MiB"
