"""start_emulator picks the endpoint's port itself (the template's queue URLs must name it), so
another process can take that port before the emulator binds it: CI saw exactly that. A taken
port is then picked again; a port the caller chose is never replaced."""

from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest

from emulator.backend import moto_process
from emulator.pytest_plugin import inline_function, start_emulator
from emulator.server import PortInUse

OK = "def handler(event, context):\n    return 'ok'\n"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_taken_before_the_bind_is_picked_again(taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    picks: list[int] = []
    real_free_port = moto_process.free_port

    def free_port_taken_first(host: str = "127.0.0.1") -> int:
        # The race made certain: the first pick is a port another socket already holds.
        picks.append(taken_port if not picks else real_free_port(host))
        return picks[-1]

    monkeypatch.setattr(moto_process, "free_port", free_port_taken_first)
    handle = start_emulator({"Fn": inline_function(OK)}, backend="none")
    try:
        assert picks[0] == taken_port and handle.config.port == picks[-1] != taken_port
        result: Any = handle.lambda_client.invoke(FunctionName="Fn")
        assert result["Payload"].read() == b'"ok"'
    finally:
        handle.stop()


def test_a_port_the_caller_chose_is_never_replaced(taken_port: int) -> None:
    with pytest.raises(PortInUse, match=f"127.0.0.1:{taken_port}.*--port"):
        start_emulator({"Fn": inline_function(OK)}, backend="none", port=taken_port)
