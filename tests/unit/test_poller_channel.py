"""The channel between the control plane and the poller process (sources/channel.py), and the
InvokePort carried over it (sources/invoke_port.py): both ends on one loop, a real socket pair."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import pytest

from emulator.errors import AwsError, ResourceNotFound, TooManyRequests
from emulator.sources.base import BatchResult
from emulator.sources.channel import Channel, ChannelClosed, RemoteFailure
from emulator.sources.invoke_port import ChannelInvokePort, serve_invoke_port


async def pair(calls: dict[str, Any], notes: dict[str, Any]) -> tuple[Channel, Channel, list[BaseException | None]]:
    """(asking end, answering end, what the asking end saw when the channel was lost)."""
    ours, theirs = socket.socketpair()
    lost: list[BaseException | None] = []
    asking = Channel({}, {}, lost.append)
    answering = Channel(calls, notes, lambda exc: None)
    await asking.connect(ours)
    await answering.connect(theirs)
    return asking, answering, lost


@pytest.mark.asyncio
async def test_calls_overlap_and_notes_arrive_in_order() -> None:
    gate = asyncio.Event()
    heard: list[Any] = []

    async def slow(value: int) -> int:
        await gate.wait()
        return value * 2

    async def fast(value: bytes) -> bytes:
        return value[::-1]

    asking, answering, _ = await pair({"slow": slow, "fast": fast}, {"hear": heard.append})
    pending = asyncio.ensure_future(asking.call("slow", 21))
    big = bytes(range(256)) * 40_000  # 10 MB: a frame larger than any socket buffer
    assert await asking.call("fast", big) == big[::-1]  # answered while "slow" waits
    for index in range(3):
        asking.note("hear", index)
    gate.set()
    assert await pending == 42
    assert heard == [0, 1, 2]
    asking.close()
    answering.close()


@pytest.mark.asyncio
async def test_a_handler_that_raises_fails_the_call_with_its_traceback() -> None:
    async def broken() -> None:
        raise ValueError("bad state")

    asking, answering, _ = await pair({"broken": broken}, {})
    with pytest.raises(RemoteFailure, match="ValueError: bad state") as failure:
        await asking.call("broken")
    assert "raise ValueError" in failure.value.remote_traceback
    asking.close()
    answering.close()


@pytest.mark.asyncio
async def test_calls_in_flight_fail_when_the_other_side_goes_away() -> None:
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    asking, answering, lost = await pair({"hang": hang}, {})
    pending = asyncio.ensure_future(asking.call("hang"))
    await asyncio.sleep(0.01)
    answering.close()
    with pytest.raises(ChannelClosed):
        await pending
    assert lost == [None]  # end of file, seen once
    with pytest.raises(ChannelClosed):
        await asking.call("hang")


@pytest.mark.asyncio
async def test_a_call_waiting_for_the_socket_to_drain_fails_when_the_channel_closes() -> None:
    """A caller held by flow control (the transport above its high-water mark) must not
    write to a closed transport and then wait forever for an answer."""
    asking, answering, lost = await pair({}, {})
    asking.pause_writing()  # what the transport does above its high-water mark
    held = asyncio.ensure_future(asking.call("anything"))
    await asyncio.sleep(0)  # it waits for the socket to drain
    answering.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(held, 5.0)  # bounded: before the fix it never resolved
    assert lost == [None]


class ScriptedPort:
    def __init__(self, error: AwsError | None = None) -> None:
        self.error = error

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        if self.error is not None:
            raise self.error
        return BatchResult(payload.upper(), None, "7")

    async def timeout_s(self, function_arn: str) -> float:
        if self.error is not None:
            raise self.error
        return 3.0


@pytest.mark.parametrize("error", [None, TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded"),
                                   ResourceNotFound("Function not found: arn:aws:lambda:us-east-1:1:function:f")])
@pytest.mark.asyncio
async def test_the_invoke_port_answers_across_the_channel_as_it_would_in_process(error: AwsError | None) -> None:
    asking, answering, _ = await pair(serve_invoke_port(ScriptedPort(error)), {})
    port = ChannelInvokePort(asking)
    if error is None:
        assert await port.invoke("arn:f", b"records") == BatchResult(b"RECORDS", None, "7")
        assert await port.timeout_s("arn:f") == 3.0
    else:
        for call in (port.invoke("arn:f", b"records"), port.timeout_s("arn:f")):
            with pytest.raises(AwsError) as raised:
                await call
            if isinstance(error, TooManyRequests) and isinstance(raised.value, TooManyRequests):
                assert raised.value.reason == error.reason
            else:
                assert (raised.value.code, raised.value.status, raised.value.message) == (error.code, error.status,
                                                                                         error.message)
    asking.close()
    answering.close()


def test_the_poller_process_loads_no_part_of_the_control_plane() -> None:
    """The child imports the pollers, the channel and the backend client: not the Lambda
    service, the environments, the HTTP layer, templates or moto (a lean, fast start)."""
    probe = ("import sys, emulator.sources.poller_host, emulator.sources.sqs_poller, emulator.sources.kinesis_poller,"
             " emulator.sources.dynamodb_poller;"
             "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split())
    forbidden = {"emulator.api", "emulator.execution", "emulator.functions", "emulator.template", "emulator.server",
                 "emulator.service.lambda_service", "emulator.service.async_queue", "moto", "boto3", "yaml"}
    assert not {m for m in loaded if m in forbidden or m.split(".")[0] in forbidden}
    assert not {m for m in loaded for f in forbidden if m.startswith(f + ".")}
