"""HTTP/1.1 on a raw socket, for the tests of the emulator's HTTP edge: the test sends exact
bytes (pipelined requests, broken framing) and parses each response itself.

Imported by tests/scenario (pytest puts this folder on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

ANSWER_WAIT_S = 10.0  # bound for one response, which normally takes milliseconds


def connect(emu: Any) -> socket.socket:
    """A TCP connection to the emulator's endpoint."""
    url = urlparse(emu.url)
    return socket.create_connection((url.hostname, url.port), timeout=ANSWER_WAIT_S)


def read_response_in_order(sock: socket.socket, buffer: bytearray, head_only: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers as sent: (name, value) in order, body) of the next response; `buffer`
    keeps bytes read past it (the next pipelined response); `head_only`: a HEAD's answer."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    length = 0 if head_only else int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
    while len(buffer) < end + 4 + length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        buffer += chunk
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return status, headers, body


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of the next response; `buffer` keeps bytes
    read past it (the next pipelined response). A header sent twice fails the test."""
    status, in_order, body = read_response_in_order(sock, buffer)
    headers: dict[str, str] = {}
    for name, value in in_order:
        assert name.lower() not in headers, f"header {name} sent twice"
        headers[name.lower()] = value
    return status, headers, body
