"""The gateway port's fast path (emulator/apigateway/http.py on emulator/api/fast_http.py),
driven with raw sockets.

A connection starts on the fast path; the first unusual request hands it, with the bytes
already read, to aiohttp's protocol for good. Both must answer alike, byte for byte but for
the request ids and the Date: the same request is sent on a fresh connection (fast path) and
on one a HEAD request handed to aiohttp first.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
from typing import Any, Iterator

import pytest

from wire_testkit import read_response_in_order
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

FUNCTION = """
import json
def handler(event, context):
    query = event.get("queryStringParameters") or {}
    mode = query.get("mode", "echo")
    if mode == "cookies":
        return {"statusCode": 201, "cookies": ["a=1", "b=2"], "multiValueHeaders": {"X-Multi": ["x", "y"]}, "body": "c"}
    if mode == "empty":
        return {"statusCode": 204, "headers": {"Content-Length": "5"}, "body": "dropped"}
    if mode == "own":
        return {"statusCode": 299, "headers": {"Server": "mine", "Date": "today", "Connection": "keep-alive"}, "body": "o"}
    if mode == "malformed":
        return {"statusCode": 200, "unexpected": True}
    if mode == "binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "body": "iVBORw==", "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}
"""
TEMPLATE = {
    "Rest": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "BinaryMediaTypes": ["image~1png"]}},
    "Http": {"Type": "AWS::Serverless::HttpApi"},
    "Fn": inline_function(FUNCTION, Events={
        "R": {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Rest"}, "Path": "/r/{proxy+}", "Method": "ANY"}},
        "H1": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": "/v1/{proxy+}", "Method": "ANY",
                                                   "PayloadFormatVersion": "1.0"}},
        "H2": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Http"}, "Path": "/v2/{proxy+}", "Method": "ANY"}},
    }),
}
PREFIXES = ["/Prod/r", "/v1", "/v2"]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(TEMPLATE, backend="none", log_invocations=False) as handle:
        yield handle


def connect(emu: EmulatorHandle) -> socket.socket:
    return socket.create_connection(("127.0.0.1", emu.server.gateway.port), timeout=10)  # type: ignore[union-attr]


def build(method: str, path: str, body: bytes = b"", extra: str = "", version: str = "HTTP/1.1") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} {version}\r\nHost: gw.test\r\n{length}{extra}\r\n".encode() + body


def masked(reply: tuple[int, list[tuple[str, str]], bytes]) -> tuple[int, list[tuple[str, str]], Any]:
    """The reply without what differs between any two requests: ids, times, the Date, and
    the body's length that depends on them."""
    status, headers, body = reply
    varying = {"date", "x-amzn-requestid", "x-amz-apigw-id", "apigw-requestid", "content-length"}
    kept = [(k, "*" if k.lower() in varying else v) for k, v in headers]
    text = re.sub(rb'"(requestId|extendedRequestId|requestTime|time)": "[^"]*"', rb'"\1": "*"', body)
    text = re.sub(rb'"(requestTimeEpoch|timeEpoch)": \d+', rb'"\1": 0', text)
    return status, kept, text


def on_fast_path(emu: EmulatorHandle, data: bytes) -> tuple[int, list[tuple[str, str]], Any]:
    with connect(emu) as sock:
        sock.sendall(data)
        return masked(read_response_in_order(sock, bytearray()))


def on_aiohttp(emu: EmulatorHandle, data: bytes) -> tuple[int, list[tuple[str, str]], Any]:
    with connect(emu) as sock:
        buffer = bytearray()
        sock.sendall(build("HEAD", "/v2/x?mode=cookies"))  # HEAD is not the fast path's: aiohttp takes over
        assert read_response_in_order(sock, buffer, head_only=True)[0] == 201
        sock.sendall(data)
        return masked(read_response_in_order(sock, buffer))


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("request_bytes", [
    build("GET", "{p}/a%20b?x=1&x=2&y=", extra="X-Trail: v  \t\r\nX-Rep: 1\r\nx-rep: 2\r\nCookie: a=1; b=2\r\nUser-Agent: ua\r\n"),
    build("POST", "{p}/post", b'{"a": 1}', extra="Content-Type: application/json\r\n"),
    build("PUT", "{p}/bin", b"\xff\x00\x01", extra="Content-Type: image/png\r\n"),
    build("DELETE", "{p}/x?mode=cookies"),
    build("PATCH", "{p}/x?mode=empty"),
    build("OPTIONS", "{p}/x?mode=own"),
    build("GET", "{p}/x?mode=malformed"),
    build("GET", "{p}/x?mode=binary", extra="Accept: image/png\r\n"),
    build("GET", "{p}/x", extra="Connection: close\r\n"),
    build("GET", "/nowhere"),
], ids=["headers", "post", "binary-body", "cookies", "204", "own-headers", "malformed", "binary", "close", "no-route"])
def test_the_fast_path_answers_as_aiohttp_does(emu: EmulatorHandle, prefix: str, request_bytes: bytes) -> None:
    data = request_bytes.replace(b"{p}", prefix.encode())
    fast, general = on_fast_path(emu, data), on_aiohttp(emu, data)
    assert fast == general
    assert fast[0] in (200, 201, 204, 299, 403, 404, 500, 502)


def test_pipelined_requests_are_answered_in_order(emu: EmulatorHandle) -> None:
    with connect(emu) as sock:
        sock.sendall(b"".join(build("GET", f"/v2/x?n={n}") for n in range(5)))
        buffer = bytearray()
        for n in range(5):
            status, _, body = read_response_in_order(sock, buffer)
            assert (status, json.loads(body)["queryStringParameters"]) == (200, {"n": str(n)})


def test_a_request_arriving_in_pieces(emu: EmulatorHandle) -> None:
    data = build("POST", "/Prod/r/x", b"abcdef", extra="Content-Type: text/plain\r\n")
    with connect(emu) as sock:
        for byte in data[:-6]:
            sock.sendall(bytes([byte]))
        sock.sendall(b"abc")
        sock.sendall(b"def")
        status, _, body = read_response_in_order(sock, bytearray())
    assert (status, json.loads(body)["body"]) == (200, "abcdef")


def test_an_unfinished_head_past_the_gateways_limit_is_answered_at_once(emu: EmulatorHandle) -> None:
    """The gateway's head limit is aiohttp's 8,190 bytes a field, not the invoke route's
    16 KiB: a head still arriving past it goes to aiohttp, which answers at once, instead of
    waiting for the rest (the head's timeout) on the fast path."""
    with connect(emu) as sock:
        sock.settimeout(3)  # far below the head timeout the fast path would wait out
        sock.sendall(b"GET /Prod/r/x HTTP/1.1\r\nHost: gw.test\r\nX-Long: " + b"a" * 10_000)
        status, _, _ = read_response_in_order(sock, bytearray())
    assert status in (400, 431)


@pytest.mark.parametrize(("extra", "body", "seen"), [
    ("Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", "abcdef"),
    (f"Content-Encoding: gzip\r\nContent-Length: {len(gzip.compress(b'zipped'))}\r\n", gzip.compress(b"zipped"), "zipped"),
    ("Expect: 100-continue\r\nContent-Length: 6\r\n", b"abcdef", "abcdef"),
], ids=["chunked", "gzip", "expect"])
def test_unusual_bodies_are_read_by_aiohttp(emu: EmulatorHandle, extra: str, body: bytes, seen: str) -> None:
    data = f"POST /v1/x HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\n{extra}\r\n".encode() + body
    with connect(emu) as sock:
        sock.sendall(data)
        buffer = bytearray()
        status, headers, answer = read_response_in_order(sock, buffer)
        if status == 100:
            status, headers, answer = read_response_in_order(sock, buffer)
        assert (status, json.loads(answer)["body"]) == (200, seen)
        sock.sendall(build("GET", "/v2/after"))  # aiohttp serves the rest of the connection
        assert read_response_in_order(sock, buffer)[0] == 200


def test_http_1_0_is_served_by_aiohttp(emu: EmulatorHandle) -> None:
    with connect(emu) as sock:
        sock.sendall(build("GET", "/v2/x", version="HTTP/1.0"))
        buffer = bytearray()
        while chunk := sock.recv(65536):
            buffer += chunk
    assert buffer.startswith(b"HTTP/1.0 200 OK\r\n")


def test_a_malformed_request_behind_a_good_one(emu: EmulatorHandle) -> None:
    """The good request is answered; the bytes after it go to aiohttp, whose parser answers
    400 and closes (aiohttp alone answered only the 400: it parsed both at once)."""
    with connect(emu) as sock:
        sock.sendall(build("GET", "/v2/x?n=1") + b"NOT HTTP AT ALL\r\n\r\n")
        buffer = bytearray()
        status, _, body = read_response_in_order(sock, buffer)
        assert (status, json.loads(body)["queryStringParameters"]) == (200, {"n": "1"})
        assert read_response_in_order(sock, buffer)[0:3:2] == (400, b'{"message":"Bad Request"}')
        assert sock.recv(65536) == b""
