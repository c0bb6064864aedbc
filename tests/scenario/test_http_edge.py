"""The HTTP edge, driven with raw sockets, against both of its paths.

Every connection starts on the fast invoke path (emulator/api/fast_invoke.py, httptools); a
request for any other route is handed, bytes and all, to aiohttp's protocol. So the same
malformed request sent to the invoke route tests the fast path, and sent to another route
tests the general one: both must answer RFC 9112 framing errors with 400 and close, time
out slow peers, and never log a traceback for a request they reject.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from emulator.api import edge
from wire_testkit import connect, read_response
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ECHO = "def handler(event, context):\n    return event\n"
# Holds its invocation until the test creates the file named in the event (a barrier the test
# releases), bounded by the function's timeout.
GATED = "import os, time\ndef handler(event, context):\n    while not os.path.exists(event['gate']):\n        time.sleep(0.005)\n    return {'released': True}\n"
INVOKE = "/2015-03-31/functions/echo/invocations"
# UpdateFunctionEventInvokeConfig on a function that does not exist: a POST with a body on the
# general path, and a 404 without side effects when it is well-formed.
OTHER = "/2019-09-25/functions/nope/event-invoke-config"
PATHS = {"fast": INVOKE, "general": OTHER}
HEALTH = b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    functions = {"echo": inline_function(ECHO), "gated": inline_function(GATED, Timeout=60)}
    with running_emulator(functions, backend="none", log_invocations=False) as handle:
        yield handle


# -- a tiny raw HTTP client ------------------------------------------------------------------------
def request(method: str, path: str, body: bytes = b"{}", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def post(path: str, body: bytes = b"{}", extra: str = "") -> bytes:
    return request("POST", path, body, extra)


def read_until_closed(sock: socket.socket, buffer: bytearray) -> bytes:
    """What the server sends before it closes the connection (fails if it never does)."""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(buffer)
        buffer += chunk


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert not noisy, [r.getMessage() for r in noisy]


# -- RFC 9112 framing errors: 400 and close, on both paths -----------------------------------------
MALFORMED = {
    # Last-wins would serve the smuggled request that follows the 2-byte body.
    "duplicate-content-length": b"Content-Length: 2\r\nContent-Length: 0\r\n\r\n{}",
    "space-before-colon": b"Content-Length : 2\r\n\r\n{}",
    "nul-in-value": b"X-Note: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "control-byte-in-name": b"X\x01Note: 1\r\nContent-Length: 2\r\n\r\n{}",
    "superscript-two-length": "Content-Length: \u00b2\r\n\r\n{}".encode(),
    "5000-digit-length": b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}",
    "length-and-chunked": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "bare-lf": None,  # the whole request with LF line ends: see below
}


def malformed(path: str, case: str) -> bytes:
    if case == "bare-lf":
        return f"POST {path} HTTP/1.1\nHost: x\nContent-Length: 2\n\n{{}}".encode()
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + MALFORMED[case]  # type: ignore[operator]


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("route", list(PATHS))
def test_malformed_framing_is_answered_400_and_the_connection_closed(
    emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, route: str, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with connect(emu) as sock:
        sock.sendall(malformed(PATHS[route], case) + HEALTH)  # a request smuggled behind it
        buffer = bytearray()
        status, headers, body = read_response(sock, buffer)
        assert status == 400, body
        assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
        assert json.loads(body)["Type"] == "User"
        assert headers.get("connection", "").lower() == "close"
        assert read_until_closed(sock, buffer) == b"", "the request behind a malformed one was served"
    assert_no_traceback(caplog)
    assert emu.invoke("echo", {"still": "serving"}) == {"still": "serving"}


def test_a_204_carries_no_content_length_on_either_path(emu: EmulatorHandle) -> None:
    """RFC 9110 §8.6: a 204 has no Content-Length. DryRun answers 204 (fast path); a chunked
    request goes to aiohttp (general path)."""
    dry = "X-Amz-Invocation-Type: DryRun\r\n"
    chunked = f"POST {INVOKE} HTTP/1.1\r\nHost: x\r\n{dry}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()
    for raw in (post(INVOKE, extra=dry), chunked):
        with connect(emu) as sock:
            sock.sendall(raw)
            status, headers, body = read_response(sock, bytearray())
            assert (status, body) == (204, b"")
            assert "content-length" not in headers


# -- flow control ------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["fast", "general"])
def test_reading_pauses_while_a_request_is_handled(emu: EmulatorHandle, tmp_path: Path, route: str) -> None:
    """While an invocation is held, a client streaming more data is pushed back (the server
    stops reading at its high-water mark) instead of the server buffering all of it."""
    gate = tmp_path / "gate"
    held = json.dumps({"gate": str(gate)}).encode()
    first = post("/2015-03-31/functions/gated/invocations", held)
    if route == "general":  # chunked: the same invocation served by aiohttp
        first = (b"POST /2015-03-31/functions/gated/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + f"{len(held):x}\r\n".encode() + held + b"\r\n0\r\n\r\n")
    offered = 64 * 1024 * 1024
    with connect(emu) as sock:
        sock.sendall(first)
        wait_in_flight(emu, "gated", 1)
        sock.sendall(f"POST {INVOKE} HTTP/1.1\r\nHost: x\r\nContent-Length: {offered}\r\n\r\n".encode())
        sock.setblocking(False)
        accepted, chunk = 0, b"\0" * 65536
        stalled_since = None
        while accepted < offered:
            try:
                accepted += sock.send(chunk)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0:
                    break  # pushed back for a full second: the server is not reading
                time.sleep(0.01)
        gate.touch()
        sock.setblocking(True)
        status, _, body = read_response(sock, bytearray())
        assert (status, json.loads(body)) == (200, {"released": True})
    # Kernel socket buffers on loopback hold a few MB; without flow control all 64 MB go in.
    assert accepted < offered // 4, f"the server read {accepted:,} bytes while busy"


def wait_in_flight(emu: EmulatorHandle, function: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while emu.metrics()["functions"].get(function, {}).get("ConcurrentExecutions", 0) < count:
        assert time.monotonic() < deadline, f"{function} never had {count} invocations in flight"
        time.sleep(0.01)


# -- hostile JSON --------------------------------------------------------------------------------------
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "raw",
    [
        post(INVOKE, DEEP),
        b"POST " + INVOKE.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(DEEP):x}\r\n".encode() + DEEP + b"\r\n0\r\n\r\n",
        post(INVOKE, extra="X-Amz-Client-Context: " + base64.b64encode(b"[" * 1300 + b"]" * 1300).decode() + "\r\n"),
        post("/2015-03-31/event-source-mappings", DEEP),
        request("PUT", "/2017-10-31/functions/echo/concurrency", b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000),
    ],
    ids=["invoke-fast", "invoke-general", "client-context", "esm-body", "concurrency-body"],
)
def test_deeply_nested_json_is_an_aws_400(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, raw: bytes) -> None:
    with connect(emu) as sock:
        sock.sendall(raw)
        status, headers, body = read_response(sock, bytearray())
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestContentException"), body
    assert json.loads(body)["Type"] == "User" and b"Traceback" not in body
    assert_no_traceback(caplog)


# -- unknown paths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unsigned_request_for_no_route_is_an_aws_error(emu: EmulatorHandle, method: str) -> None:
    with connect(emu) as sock:
        sock.sendall(f"{method} /no/such/thing HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        status, headers, body = read_response(sock, bytearray())
    assert status == 404 and headers["x-amzn-errortype"] == "UnknownOperationException"
    assert headers["content-type"] == "application/json" and json.loads(body)["message"]


# -- slow peers: header, body and keep-alive timeouts ------------------------------------------------
# The keep-alive timeout is longer than the others (as in the defaults), so a slow head or
# body must be cut by its own timer, answered 408, not closed silently by the keep-alive's.
FAST_TIMEOUTS = {"KEEP_ALIVE_TIMEOUT_S": 3.0, "HEADER_TIMEOUT_S": 0.5, "BODY_TIMEOUT_S": 0.5}


@pytest.fixture(scope="module")
def impatient() -> Iterator[EmulatorHandle]:
    """An emulator whose edge timeouts are short (the named constants, patched before it starts)."""
    saved = {name: getattr(edge, name) for name in FAST_TIMEOUTS}
    for name, value in FAST_TIMEOUTS.items():
        setattr(edge, name, value)
    try:
        with running_emulator({"echo": inline_function(ECHO)}, backend="none", log_invocations=False) as handle:
            yield handle
    finally:
        for name, value in saved.items():
            setattr(edge, name, value)


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bytes:
    """Send `trickle` a byte at a time every 50 ms (a slowloris) until the server closes; what it sent."""
    deadline = time.monotonic() + seconds
    received = bytearray()
    sock.settimeout(0.05)
    for byte in [trickle[i : i + 1] for i in range(len(trickle))] + [b""] * 10_000:
        assert time.monotonic() < deadline, "the server kept a slow connection open"
        try:
            if byte:
                sock.sendall(byte)
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(received)
            received += chunk
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return bytes(received)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("route", list(PATHS))
def test_a_request_head_trickling_in_is_cut_off(impatient: EmulatorHandle, route: str) -> None:
    head = f"POST {PATHS[route]} HTTP/1.1\r\nHost: x\r\nX-Pad: {'p' * 400}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    with connect(impatient) as sock:
        received = closed_within(sock, 8.0, trickle=head)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b"did not arrive within 0.5 s" in received


@pytest.mark.parametrize("route", list(PATHS))
def test_a_stalled_body_is_cut_off(impatient: EmulatorHandle, route: str) -> None:
    with connect(impatient) as sock:
        sock.sendall(f"POST {PATHS[route]} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        received = closed_within(sock, 8.0)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]


@pytest.mark.parametrize("route", list(PATHS))
def test_an_idle_keep_alive_connection_is_closed(impatient: EmulatorHandle, route: str) -> None:
    with connect(impatient) as sock:
        sock.sendall(post(PATHS[route]))
        buffer = bytearray()
        status, _, _ = read_response(sock, buffer)
        assert status in (200, 404)
        assert closed_within(sock, 8.0) == b""


# -- unknown paths with a backend: never the backend's web pages ---------------------------------------
@pytest.fixture(scope="module")
def backed() -> Iterator[EmulatorHandle]:
    with running_emulator({"echo": inline_function(ECHO)}, log_invocations=False) as handle:  # with moto
        yield handle


def signed_for(service: str) -> str:
    return (f"Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0000\r\nX-Amz-Date: 20240101T000000Z\r\n")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
@pytest.mark.parametrize("who", ["unsigned", "sqs", "kinesis", "dynamodb", "sns"])
def test_no_route_and_no_backend_operation_is_an_aws_error_never_a_web_page(
    backed: EmulatorHandle, caplog: pytest.LogCaptureFixture, who: str, method: str
) -> None:
    extra = "" if who == "unsigned" else signed_for(who)
    with connect(backed) as sock:
        sock.sendall(request(method, "/no/such/thing", b"", extra))
        status, headers, body = read_response(sock, bytearray())
    assert status >= 400
    assert "x-amzn-errortype" in headers or headers.get("content-type", "").split(";")[0] in ("application/xml", "text/xml"), (headers, body)
    assert b"<html" not in body.lower() and b"<!doctype" not in body.lower(), body[:300]
    if who == "unsigned":
        assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
    assert_no_traceback(caplog)
