"""The pollers run in a process of their own (sources/poller_process.py): supervised, reaped,
and replaced when it dies, while the control plane keeps every invocation's admission.

The emulator runs in this test process (on a thread), so its poller process is a child of
this process; it is told apart from other children by its command line.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from core_testkit import ProcessId, cmdline, descendants, wait_until
from emulator.policy.restarts import RestartPolicy
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


def deleted_by_the_poller(emu: EmulatorHandle) -> int:
    """Messages the current poller deleted: a kill after this loses no delete (killed between
    the invocation and its DeleteMessageBatch, the message would be delivered again)."""
    [stats] = emu.metrics()["event_source_mappings"].values()
    return int(stats.get("MessagesDeleted", 0))


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
        assert wait_until(lambda: received(out) == ["before"] and deleted_by_the_poller(emu) == 1, WAIT_S)
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


def test_a_poller_process_that_keeps_dying_is_restarted_ever_later_then_given_up_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As the moto backend is (emulator/policy/restarts.py): not restarted at once, forever."""
    out = tmp_path / "received.txt"
    before = poller_processes()
    emu = start_emulator(template(out))
    try:
        send(emu, "before")
        assert wait_until(lambda: received(out) == ["before"], WAIT_S)
        assert emu.server is not None and emu.server.sources.pollers is not None
        pollers = emu.server.sources.pollers
        pollers.policy = RestartPolicy(max_restarts=2, first_delay_s=0.2, stable_after_s=3_600)
        caplog.set_level(logging.ERROR, logger="emulator.sources.process")
        seen: set[ProcessId] = set()
        for _ in range(2):
            [current] = poller_processes() - before - seen
            seen.add(current)
            os.kill(current.pid, signal.SIGKILL)
            assert wait_until(lambda: len(poller_processes() - before - seen) == 1, WAIT_S)  # restarted
        [last] = poller_processes() - before - seen
        seen.add(last)
        os.kill(last.pid, signal.SIGKILL)
        assert wait_until(lambda: pollers.state.value == "failed" and not last.alive, WAIT_S)
        assert wait_until(lambda: "not started again" in caplog.text, WAIT_S)
        restarts = [r.getMessage() for r in caplog.records if "start again in a new one in" in r.getMessage()]
        assert [m.split(" in a new one in ")[1].split(" s ")[0] for m in restarts] == ["0.2", "0.4"]
        assert poller_processes() - before - seen == set()  # no fourth process
        assert [type(error).__name__ for error in emu.server.errors] == [
            "PollerProcessDied", "PollerProcessDied", "PollerProcessFailed"]
        emu.server.errors.clear()
    finally:
        emu.stop()
    assert poller_processes() == before


# -- stream checkpoints outlive the poller process -------------------------------------------------
KINESIS_RECORDER = """
import base64, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            out.write(base64.b64decode(record["kinesis"]["data"]).decode() + "\\n")
"""
STREAM = "checkpoint-stream"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}"
# Fast Kinesis cadence (1 s polls take 1/30 s), and a clock the poller process must share.
KINESIS_TIME_SCALE = 30.0


def kinesis_template(out: Path, starting_position: str) -> dict[str, Any]:
    events = {"Feed": {"Type": "Kinesis", "Properties": {"Stream": STREAM_ARN, "StartingPosition": starting_position,
                                                         "BatchSize": 10}}}
    return {
        "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": STREAM, "ShardCount": 1}},
        "Consumer": inline_function(KINESIS_RECORDER, FunctionName="consumer",
                                    Environment={"Variables": {"OUT": str(out)}}, Events=events),
    }


def put(emu: EmulatorHandle, *datas: str) -> None:
    kinesis = emu.client("kinesis")
    for data in datas:
        kinesis.put_record(StreamName=STREAM, Data=data.encode(), PartitionKey="key")


def in_order(out: Path) -> list[str]:
    return out.read_text().split() if out.exists() else []


def processed_by_the_poller(emu: EmulatorHandle) -> int:
    [stats] = emu.metrics()["event_source_mappings"].values()
    return int(stats.get("RecordsProcessed", 0))


@pytest.mark.parametrize("starting_position", ["TRIM_HORIZON", "LATEST"])
def test_a_kinesis_mapping_resumes_at_its_checkpoint_in_a_new_poller_process(tmp_path: Path, starting_position: str) -> None:
    """A TRIM_HORIZON mapping does not process its stream again, a LATEST one does not skip
    what arrived while its poller process was dead: the control plane kept the checkpoint."""
    out = tmp_path / "received.txt"
    before = poller_processes()
    emu = start_emulator(kinesis_template(out, starting_position), time_scale=KINESIS_TIME_SCALE)
    try:
        [mapping] = emu.lambda_client.list_event_source_mappings()["EventSourceMappings"]
        assert wait_until(lambda: emu.lambda_client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled",
                          WAIT_S)
        put(emu, "a1", "a2")
        assert wait_until(lambda: in_order(out) == ["a1", "a2"], WAIT_S)
        # Its counters come over the same channel after the checkpoint's note: the control plane has it.
        assert wait_until(lambda: processed_by_the_poller(emu) == 2, WAIT_S)
        [first] = poller_processes() - before
        os.kill(first.pid, signal.SIGSTOP)  # it reads nothing more: b1 arrives while it is gone
        put(emu, "b1")
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: not first.alive, WAIT_S)
        assert wait_until(lambda: len(poller_processes() - before - {first}) == 1, WAIT_S)
        put(emu, "c1")
        assert wait_until(lambda: "c1" in in_order(out), WAIT_S)
        assert in_order(out) == ["a1", "a2", "b1", "c1"]  # nothing twice, nothing skipped
        assert emu.server is not None
        assert [type(error).__name__ for error in emu.server.errors] == ["PollerProcessDied"]
        emu.server.errors.clear()
    finally:
        emu.stop()
    assert poller_processes() == before
