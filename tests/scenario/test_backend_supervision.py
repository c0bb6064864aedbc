"""The moto backend dies under a running emulator: health says so, calls for it answer 503
ServiceUnavailable, it is restarted, and the template's resources exist again.

The test kills the moto child by its PID, then holds the child's port so the restart cannot
succeed until the test lets it: the outage lasts exactly as long as the test needs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import urllib.error
import urllib.request
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

WAIT_S = 30.0  # bound for a restart of moto on a loaded machine
HELLO = "def handler(event, context):\n    return {'ok': True}\n"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Hello": inline_function(HELLO, FunctionName="hello"),
        "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders"}},
    }
    with running_emulator(template) as handle:
        yield handle


def health(emu: EmulatorHandle) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(emu.url + "/_emulator/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def hold_port(url: str) -> socket.socket:
    """Listen on the dead child's port (once the kernel has released it)."""
    parts = urlsplit(url)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def bound() -> bool:
        try:
            holder.bind((parts.hostname, parts.port))
        except OSError:
            return False
        return True

    assert wait_until(bound, WAIT_S), "the killed moto child's port was not released"
    holder.listen()
    return holder


def test_a_killed_backend_is_reported_answered_503_and_restarted_with_the_template(
    emu: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator.moto")
    status, before = health(emu)
    assert status == 200 and before["backend"]["state"] == "running"
    sqs = emu.client("sqs")
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"]

    os.kill(before["backend"]["pid"], signal.SIGKILL)
    holder = hold_port(before["backend"]["url"])
    try:
        def reported() -> dict[str, Any] | None:
            status, body = health(emu)
            return body if status == 503 and body["backend"]["state"] == "restarting" else None

        body = wait_until(reported, WAIT_S)
        assert body, health(emu)
        assert body["status"] == "backend unavailable" and body["backend"]["pid"] is None
        assert body["backend"]["last_exit"] == "killed by signal 9 (SIGKILL)"
        assert body["functions"] == ["hello"]

        with pytest.raises(ClientError) as json_error:  # SQS: the JSON protocol
            sqs.get_queue_url(QueueName="orders")
        assert json_error.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert json_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "exited unexpectedly (killed by signal 9 (SIGKILL))" in json_error.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as xml_error:  # SNS: the query protocol (XML)
            emu.client("sns").list_topics()
        assert xml_error.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert emu.invoke("hello") == {"ok": True}  # Lambda itself keeps serving
    finally:
        holder.close()  # the next restart attempt can bind

    def back() -> dict[str, Any] | None:
        status, body = health(emu)
        return body if status == 200 else None

    after = wait_until(back, WAIT_S)
    assert after, health(emu)
    assert after["status"] == "ready" and after["backend"]["restarts"] == 1
    assert after["backend"]["pid"] not in (None, before["backend"]["pid"])
    assert wait_until(lambda: _queue_exists(sqs, "orders"), WAIT_S)  # the template's queue, re-created
    deaths = [r for r in caplog.records if r.name == "emulator.moto" and r.levelno == logging.ERROR]
    assert len(deaths) == 1 and "SIGKILL" in deaths[0].getMessage()  # logged once


def _queue_exists(sqs: Any, name: str) -> bool:
    try:
        return bool(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError:
        return False
