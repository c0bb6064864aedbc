"""The lean HTTP/1.1 invoke path (emulator/api/fast_invoke.py), driven with raw sockets.

Everything it does not handle itself must reach aiohttp unchanged, on the same
connection, with the bytes already read.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Iterator

import pytest

from core_testkit import GATED_HANDLER_SOURCE, Gate, wait_until
from wire_testkit import connect, read_response
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ECHO = "def handler(event, context):\n    return event\n"
HELD = GATED_HANDLER_SOURCE + "def handler(event, context):\n    wait_at_gate(event, context)\n    return {'held': 'gate' in event}\n"
INVOKE = "/2015-03-31/functions/echo/invocations"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator({"echo": inline_function(ECHO), "held": inline_function(HELD)}, backend="none", log_invocations=False) as handle:
        yield handle


def request(path: str, body: bytes = b"{}", method: str = "POST", extra: str = "", version: str = "HTTP/1.1") -> bytes:
    head = f"{method} {path} {version}\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def test_keep_alive_invokes_then_another_api_on_the_same_connection(emu: EmulatorHandle) -> None:
    with connect(emu) as sock:
        buffer = bytearray()
        for n in range(3):
            sock.sendall(request(INVOKE, json.dumps({"n": n}).encode()))
            status, headers, body = read_response(sock, buffer)
            assert (status, json.loads(body)) == (200, {"n": n})
            assert headers["x-amz-executed-version"] == "$LATEST"
        sock.sendall(b"GET /2015-03-31/functions/echo HTTP/1.1\r\nHost: x\r\n\r\n")  # handed to aiohttp
        status, _, body = read_response(sock, buffer)
        assert status == 200 and json.loads(body)["Configuration"]["FunctionName"] == "echo"
        sock.sendall(request(INVOKE, b'{"after": true}'))  # aiohttp serves the rest of the connection
        status, _, body = read_response(sock, buffer)
        assert (status, json.loads(body)) == (200, {"after": True})


def test_pipelined_requests_are_answered_in_order(emu: EmulatorHandle) -> None:
    with connect(emu) as sock:
        sock.sendall(b"".join(request(INVOKE, json.dumps({"n": n}).encode()) for n in range(5)))
        buffer = bytearray()
        assert [json.loads(read_response(sock, buffer)[2])["n"] for _ in range(5)] == list(range(5))


def test_pipelined_invokes_then_another_api_then_an_invoke(emu: EmulatorHandle) -> None:
    """The hand-off finds where the second API's request starts although the parser had read
    past the end of the invoke before it (one packet holds all four requests)."""
    other = b"GET /2015-03-31/functions/echo HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(emu) as sock:
        sock.sendall(request(INVOKE, b'{"n": 0}') + request(INVOKE, b'{"n": 1}') + other + request(INVOKE, b'{"n": 2}'))
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200] * 4
    assert [json.loads(answers[i][2])["n"] for i in (0, 1, 3)] == [0, 1, 2]
    assert json.loads(answers[2][2])["Configuration"]["FunctionName"] == "echo"


@pytest.mark.parametrize("path", [INVOKE, "/2015-03-31/functions/echo/configuration"])
def test_a_request_arriving_a_byte_at_a_time(emu: EmulatorHandle, path: str) -> None:
    raw = request(path, b'{"slow": 1}', method="POST" if path == INVOKE else "GET")
    with connect(emu) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(raw)):
            sock.send(raw[i : i + 1])
        status, _, body = read_response(sock, bytearray())
    assert status == 200
    assert json.loads(body) == {"slow": 1} if path == INVOKE else json.loads(body)["FunctionName"] == "echo"


def test_a_body_arriving_in_pieces(emu: EmulatorHandle) -> None:
    body = json.dumps({"pad": "x" * 200_000}).encode()
    raw = request(INVOKE, body)
    with connect(emu) as sock:
        for start in range(0, len(raw), 7_000):
            sock.sendall(raw[start : start + 7_000])
        status, _, answer = read_response(sock, bytearray())
        assert status == 200 and json.loads(answer) == json.loads(body)


def test_qualifier_and_an_encoded_arn_in_the_path(emu: EmulatorHandle) -> None:
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho"
    with connect(emu) as sock:
        sock.sendall(request(f"/2015-03-31/functions/{arn}/invocations?Qualifier=%24LATEST", b'{"q": 1}'))
        status, _, body = read_response(sock, bytearray())
        assert (status, json.loads(body)) == (200, {"q": 1})


@pytest.mark.parametrize(
    "raw",
    [
        b"POST " + INVOKE.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"c\":1}\r\n0\r\n\r\n",
        request(INVOKE, b'{"c":1}', version="HTTP/1.0"),
    ],
    ids=["chunked", "http-1.0"],
)
def test_unusual_requests_are_served_by_aiohttp(emu: EmulatorHandle, raw: bytes) -> None:
    with connect(emu) as sock:
        sock.sendall(raw)
        status, _, body = read_response(sock, bytearray())
        assert (status, json.loads(body)) == (200, {"c": 1})


def test_errors_are_aws_shaped_on_the_fast_path(emu: EmulatorHandle) -> None:
    with connect(emu) as sock:
        buffer = bytearray()
        sock.sendall(request("/2015-03-31/functions/nope/invocations"))
        status, headers, body = read_response(sock, buffer)
        assert (status, headers["x-amzn-errortype"]) == (404, "ResourceNotFoundException")
        sock.sendall(request(INVOKE, b"{not json"))
        status, headers, body = read_response(sock, buffer)
        assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestContentException")
        assert b"Traceback" not in body
        sock.sendall(request(INVOKE, b"{}", extra="X-Amz-Invocation-Type: Event\r\n"))
        status, headers, _ = read_response(sock, buffer)
        assert status == 202 and headers["x-amzn-requestid"]


@pytest.mark.parametrize("connection", ["close", "keep-alive, close"])
def test_connection_close_is_honoured(emu: EmulatorHandle, connection: str) -> None:
    """llhttp's reading of Connection, as aiohttp's: `close` among the options closes."""
    with connect(emu) as sock:
        sock.sendall(request(INVOKE, b'{"bye": 1}', extra=f"Connection: {connection}\r\n"))
        status, headers, _ = read_response(sock, bytearray())
        assert status == 200 and headers["connection"].lower() == "close"
        assert sock.recv(10) == b""


def test_a_client_leaving_mid_invocation_does_not_strand_the_environment(emu: EmulatorHandle, tmp_path: Path) -> None:
    gate = Gate(tmp_path / "gate")
    try:
        with connect(emu) as sock:
            sock.sendall(request("/2015-03-31/functions/held/invocations", json.dumps({"gate": gate.path}).encode()))
            assert wait_until(lambda: gate.arrived() == 1), "the invocation never started"  # it is running...
    finally:
        gate.open()  # ...and the client has gone. The invocation completes and its environment is reused.
    assert wait_until(lambda: emu.metrics()["account"]["account_in_flight"] == 0)
    assert emu.invoke("held", {}) == {"held": False}
    metrics = emu.metrics()["functions"]["held"]
    assert (metrics["Invocations"], metrics["ColdStarts"]) == (2, 1)  # the second ran warm, in the same environment
