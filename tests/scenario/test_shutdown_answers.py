"""Shutdown answers everyone: `emulator up` as a user runs it, stopped with SIGINT while
invocations are held by a barrier the test releases (a file the handler waits for).

An invocation that finishes before --shutdown-timeout answers normally; one still running at
the deadline is answered ServiceException (500) before its connection closes. Both HTTP
paths: a Content-Length request (fast path) and a chunked one (aiohttp's).
"""

from __future__ import annotations

import json
import signal
import socket
import textwrap
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest

from test_cli_processes import EXIT_WAIT_S, emulator_up

pytestmark = pytest.mark.scenario

GATED = """
import os, time
def handler(event, context):
    while not os.path.exists(event["gate"]):
        time.sleep(0.005)
    return {"released": True}
"""


def write_gated_app(folder: Path) -> None:
    (folder / "src").mkdir()
    (folder / "src" / "app.py").write_text(GATED)
    (folder / "template.yaml").write_text(textwrap.dedent("""\
        Resources:
          Gated:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: gated
              CodeUri: src/
              Handler: app.handler
              Runtime: python3.11
              Timeout: 120
        """))


def send_held_invoke(url: str, gate: Path, path: str) -> socket.socket:
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=60)
    body = json.dumps({"gate": str(gate)}).encode()
    head = "POST /2015-03-31/functions/gated/invocations HTTP/1.1\r\nHost: x\r\n"
    if path == "fast":
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    else:  # chunked: served by aiohttp
        sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    return sock


def wait_in_flight(url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(url + "/_emulator/metrics", timeout=10) as response:
            if json.loads(response.read())["functions"].get("gated", {}).get("ConcurrentExecutions", 0) >= count:
                return
        assert time.monotonic() < deadline, "the invocation never started"
        time.sleep(0.01)


def wait_for_text(path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path.read_text()}"
        time.sleep(0.01)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The one response on `sock`, read until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    assert data, "the connection closed without an answer"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["fast", "general"])
def test_an_invocation_finishing_before_the_deadline_answers_normally(tmp_path: Path, path: str) -> None:
    write_gated_app(tmp_path)
    gate = tmp_path / "gate"
    with emulator_up(tmp_path, "--port", "0", "--shutdown-timeout", "60") as (proc, url, stderr):
        with send_held_invoke(url, gate, path) as sock:
            wait_in_flight(url, 1)
            proc.send_signal(signal.SIGINT)
            wait_for_text(stderr, "Shutting down")
            gate.touch()
            status, headers, body = read_answer(sock)
        assert (status, json.loads(body)) == (200, {"released": True})
        assert proc.wait(EXIT_WAIT_S) == 0


@pytest.mark.parametrize("path", ["fast", "general"])
def test_an_invocation_still_running_at_the_deadline_gets_a_service_exception(tmp_path: Path, path: str) -> None:
    write_gated_app(tmp_path)
    gate = tmp_path / "gate"  # never released
    with emulator_up(tmp_path, "--port", "0", "--shutdown-timeout", "1") as (proc, url, stderr):
        with send_held_invoke(url, gate, path) as sock:
            wait_in_flight(url, 1)
            proc.send_signal(signal.SIGINT)
            status, headers, body = read_answer(sock)
        assert (status, headers["x-amzn-errortype"]) == (500, "ServiceException"), body
        assert "shut down" in json.loads(body)["message"]
        assert proc.wait(EXIT_WAIT_S) == 0
    assert "Traceback" not in stderr.read_text()


DRAINING = """
import os, time
def handler(event, context):
    open(os.environ["ARRIVED"], "w").close()
    deadline = time.monotonic() + 120  # bounded; the test never opens the gate
    while not os.path.exists(os.environ["GATE"]) and time.monotonic() < deadline:
        time.sleep(0.005)
"""


def test_open_requests_are_answered_at_the_deadline_while_a_mappings_batch_is_still_held(tmp_path: Path) -> None:
    """The deadline starts at the signal, not once the pollers have stopped: a mapping whose
    batch is held (the pollers wait STOP_DRAIN_S for it) must not delay the answers."""
    write_gated_app(tmp_path)
    (tmp_path / "drain").mkdir()
    (tmp_path / "drain" / "app.py").write_text(DRAINING)
    arrived, gate = tmp_path / "arrived", tmp_path / "gate"  # neither gate is ever opened
    with open(tmp_path / "template.yaml", "a") as template:
        template.write(textwrap.indent(textwrap.dedent(f"""\
            Held:
              Type: AWS::SQS::Queue
              Properties:
                QueueName: held-q
                VisibilityTimeout: 720  # at least the function timeout: Lambda refuses the mapping otherwise
            Drain:
              Type: AWS::Serverless::Function
              Properties:
                FunctionName: drain
                CodeUri: drain/
                Handler: app.handler
                Runtime: python3.11
                Timeout: 120
                Environment:
                  Variables:
                    ARRIVED: {arrived}
                    GATE: {gate}
                Events:
                  Feed:
                    Type: SQS
                    Properties:
                      Queue: arn:aws:sqs:us-east-1:123456789012:held-q
            """), "  "))
    with emulator_up(tmp_path, "--port", "0", "--shutdown-timeout", "1", "--backend", "moto") as (proc, url, stderr):
        sqs = boto3.client("sqs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="held-q")["QueueUrl"], MessageBody="held")
        deadline = time.monotonic() + 60
        while not arrived.exists():
            assert time.monotonic() < deadline, "the mapping's batch never arrived"
            time.sleep(0.01)
        [poller] = [pid for pid in children(proc.pid) if b"emulator.sources.poller_host" in cmdline(pid)]
        with send_held_invoke(url, gate, "fast") as sock:
            wait_in_flight(url, 1)
            proc.send_signal(signal.SIGINT)
            status, headers, body = read_answer(sock)
            # Answered while the pollers still wait for their held batch (STOP_DRAIN_S, 5 s,
            # against a 1 s deadline): before, the drain began only after they had stopped.
            assert Path(f"/proc/{poller}").exists() and b"poller_host" in cmdline(poller)
        assert (status, headers["x-amzn-errortype"]) == (500, "ServiceException"), body
        assert proc.wait(EXIT_WAIT_S) == 0
    assert "Traceback" not in stderr.read_text()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
