"""A duplex call channel between the control plane and the poller process: one socket pair.

Either side calls the other's handlers by name. A frame is a 4-byte big-endian length, then
a pickled tuple:

    (CALL, id, name, args)  answered by  (REPLY, id, value)  or  (FAIL, id, (summary, traceback))
    (NOTE, 0, name, args)   no answer (log lines, errors, progress)

Pickle, because both ends are this package on the same interpreter, the socket is private
(a socketpair inherited by the child, no path anyone else can open) and batches are bytes
that pickle carries as they are. Handlers say what they mean with return values: an
exception raised by a handler is a bug on that side, and arrives as `RemoteFailure`.

Each call runs in its own task (invocations overlap), owned by the channel and cancelled
when it closes. Writes respect the transport's flow control.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import struct
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger("emulator.sources.channel")

CALL, REPLY, FAIL, NOTE = 0, 1, 2, 3
_LENGTH = struct.Struct(">I")

Handler = Callable[..., Awaitable[Any]]
NoteHandler = Callable[..., None]


class ChannelClosed(ConnectionError):
    """The other side is gone (it exited, or closed the channel)."""


class RemoteFailure(RuntimeError):
    """A handler on the other side raised; `remote_traceback` says where."""

    def __init__(self, summary: str, remote_traceback: str) -> None:
        super().__init__(summary)
        self.remote_traceback = remote_traceback


class Channel(asyncio.Protocol):
    def __init__(self, calls: Mapping[str, Handler], notes: Mapping[str, NoteHandler],
                 on_lost: Callable[[BaseException | None], None]) -> None:
        self._calls = calls
        self._notes = notes
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = False

    async def connect(self, sock: Any) -> None:
        """Start on a connected stream socket (one end of a socketpair)."""
        await asyncio.get_running_loop().create_unix_connection(lambda: self, sock=sock)

    # -- calling the other side -------------------------------------------------------------
    async def call(self, name: str, *args: Any) -> Any:
        if self.closed:
            raise ChannelClosed(f"channel closed before calling {name}")
        await self._writable.wait()
        if self.closed:  # it closed while we waited for the socket to drain
            raise ChannelClosed(f"channel closed before calling {name}")
        call_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._pending[call_id] = reply
        try:
            self._send((CALL, call_id, name, args))
            return await reply
        finally:
            self._pending.pop(call_id, None)

    def note(self, name: str, *args: Any) -> None:
        """Fire and forget; dropped once the channel is closed."""
        if not self.closed:
            try:
                self._send((NOTE, 0, name, args))
            except ChannelClosed:
                pass

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        with memoryview(buffer) as view:  # released before the buffer is trimmed below
            while len(buffer) - start >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(buffer, start)
                end = start + _LENGTH.size + length
                if len(buffer) < end:
                    break
                self._dispatch(pickle.loads(view[start + _LENGTH.size:end]))
                start = end
        if start:
            del buffer[:start]

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._writable.set()  # callers waiting to write fail below instead of hanging
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(ChannelClosed("the other side of the channel is gone"))
        for task in self._serving:
            task.cancel()
        self._on_lost(exc)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- internals --------------------------------------------------------------------------
    def _send(self, message: tuple[Any, ...]) -> None:
        """Write one frame; ChannelClosed once the transport is closing (a write there would
        be dropped, and a caller would wait for an answer that never comes)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ChannelClosed("the channel is closed")
        body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        transport.write(_LENGTH.pack(len(body)) + body)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind, call_id = message[0], message[1]
        if kind == CALL:
            task = asyncio.ensure_future(self._serve(call_id, message[2], message[3]))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        elif kind == NOTE:
            self._notes[message[2]](*message[3])
        else:
            reply = self._pending.get(call_id)
            if reply is None or reply.done():
                return  # the caller was cancelled meanwhile
            if kind == REPLY:
                reply.set_result(message[2])
            else:
                reply.set_exception(RemoteFailure(*message[2]))

    async def _serve(self, call_id: int, name: str, args: tuple[Any, ...]) -> None:
        try:
            value = await self._calls[name](*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            summary = f"{type(exc).__name__}: {exc}"
            self._answer((FAIL, call_id, (summary, "".join(traceback.format_exception(exc)))))
            return
        self._answer((REPLY, call_id, value))

    def _answer(self, message: tuple[Any, ...]) -> None:
        """An answer to a call from the other side; nobody waits for it once it is gone."""
        if not self.closed:
            try:
                self._send(message)
            except ChannelClosed:
                pass
