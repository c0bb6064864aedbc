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
