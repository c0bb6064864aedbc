"""The pollers run in a process of their own (sources/poller_process.py): supervised, reaped,
and replaced when it dies, while the control plane keeps every invocation's admission.

The emulator runs in this test process (on a thread), so its poller process is a child of
this process; it is told apart from other children by its command line.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from core_testkit import ProcessId, cmdline, descendants, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator, start_emulator

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
WAIT_S = 20.0

RECORDER = """
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            out.write(record["body"] + "\\n")
"""


def template(out: Path) -> dict[str, Any]:
    events = {"Feed": {"Type": "SQS", "Properties": {"Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:feed-q"}}}
    return {
        "Feed": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "feed-q", "VisibilityTimeout": 2}},
        "Consumer": inline_function(RECORDER, FunctionName="consumer", Environment={"Variables": {"OUT": str(out)}},
                                    Events=events, Timeout=2),  # no longer than the queue's visibility timeout
    }


def poller_processes() -> set[ProcessId]:
    return {p for p in descendants(os.getpid()) if "emulator.sources.poller_host" in cmdline(p.pid)}


def send(emu: EmulatorHandle, *bodies: str) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="feed-q")["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def received(out: Path) -> list[str]:
    return sorted(out.read_text().split()) if out.exists() else []


def pollers_of(emu: EmulatorHandle) -> int:
    [stats] = emu.metrics()["event_source_mappings"].values()
    return int(stats["Pollers"])


def test_the_pollers_run_in_a_child_process_that_ends_with_the_emulator(tmp_path: Path) -> None:
    out = tmp_path / "received.txt"
    before = poller_processes()
    with running_emulator(template(out)) as emu:
        send(emu, "one")
        assert wait_until(lambda: received(out) == ["one"], WAIT_S)
        started = poller_processes() - before
        assert len(started) == 1
        [process] = started
        assert process.pid != os.getpid()
        metrics = emu.metrics()
        assert metrics["functions"]["consumer"]["Invocations"] == 1  # admitted by the control plane
    assert not process.alive  # exited and reaped with the emulator
    assert poller_processes() == before


def test_a_poller_process_that_dies_is_reported_and_its_pollers_start_again_in_a_new_one(tmp_path: Path) -> None:
    out = tmp_path / "received.txt"
    before = poller_processes()
    emu = start_emulator(template(out))
    try:
        send(emu, "before")
        assert wait_until(lambda: received(out) == ["before"], WAIT_S)
        [first] = poller_processes() - before
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: not first.alive, WAIT_S)  # reaped, not left a zombie
        assert wait_until(lambda: len(poller_processes() - before - {first}) == 1 and pollers_of(emu) >= 2, WAIT_S)
        send(emu, "after")
        assert wait_until(lambda: received(out) == ["after", "before"], WAIT_S)
        assert emu.lambda_client.list_event_source_mappings()["EventSourceMappings"][0]["State"] == "Enabled"
        assert emu.server is not None
        assert [type(error).__name__ for error in emu.server.errors] == ["PollerProcessDied"]
        emu.server.errors.clear()
    finally:
        emu.stop()
    assert poller_processes() == before
