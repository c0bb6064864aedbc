"""Where function logs go: the emulator's log, one prefix per function, never on the hot path.

Lines are appended to a buffer and handed over in one go shortly after (or when the buffer
grows large), so neither a chatty handler nor START/END/REPORT lines delay a response.

The hand-over never blocks either: a `BackgroundWriter` thread does the writing, behind a
bounded buffer. A reader that stops reading (a paused terminal, `Popen(stderr=PIPE)` never
read) then stalls only that thread; what does not fit in the buffer is dropped and counted
(`/_emulator/metrics`, "logs"), and a line says so once the reader is back.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections import deque
from typing import Any, Callable, TextIO

from emulator.execution.log_feed import CloudWatchFeed

FLUSH_DELAY_S = 0.05
FLUSH_BYTES = 256 * 1024
# What may wait for a slow reader before new log text is dropped (characters).
PENDING_LIMIT = 2 * 1024 * 1024


class BackgroundWriter:
    """A text stream whose `write` never waits: a thread writes to the real stream.

    It writes to its own duplicate of the stream's file descriptor when the stream has one
    (no Python-level lock is then held while a write blocks, and the descriptor stays valid
    if the stream is closed), else through the stream's own `write`.
    """

    def __init__(self, stream: TextIO, limit: int = PENDING_LIMIT) -> None:
        self._stream = stream
        self._limit = limit
        self._fd = _duplicate_fd(stream)
        if self._fd is not None:
            try:
                stream.flush()  # what the stream buffered goes first
            except (OSError, ValueError):
                pass
        self._cond = threading.Condition()
        self._pending: deque[str] = deque()
        self._pending_size = 0
        self._writing = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.dropped_lines = 0
        self.dropped_chars = 0
        self._reported_lines = 0

    # -- the caller's side: never waits --------------------------------------------------
    def write(self, text: str) -> int:
        if not text:
            return 0
        with self._cond:
            if self._closing:
                return len(text)
            if self._pending_size + len(text) > self._limit:
                self.dropped_lines += text.count("\n") or 1
                self.dropped_chars += len(text)
                return len(text)
            self._pending.append(text)
            self._pending_size += len(text)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emulator-log-writer", daemon=True)
                self._thread.start()
            self._cond.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the thread writes as soon as it can (see `drain`)."""

    def writable(self) -> bool:
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for everything written so far to reach the stream."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._writing, timeout_s)

    def close(self, timeout_s: float = 1.0) -> None:
        """Write what is pending (for at most `timeout_s`), then stop the thread."""
        self.drain(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            started = self._thread is not None
        if not started and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno ... of the real stream
        return getattr(self._stream, name)

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    break
                chunk = "".join(self._pending)
                self._pending.clear()
                self._pending_size = 0
                self._writing = True
                dropped = self.dropped_lines - self._reported_lines
                self._reported_lines = self.dropped_lines
            if dropped:
                chunk += f"[emulator] {dropped} log line(s) dropped: the emulator's log was not read fast enough\n"
            self._emit(chunk)
        if self._fd is not None:
            os.close(self._fd)  # only this thread ever writes to it
            self._fd = None

    def _emit(self, chunk: str) -> None:
        try:
            if self._fd is None:
                self._stream.write(chunk)
                self._stream.flush()
                return
            data = memoryview(chunk.encode("utf-8", "replace"))
            while data:
                data = data[os.write(self._fd, data) :]
        except (OSError, ValueError):
            pass  # a closed terminal must not break invocations


def _duplicate_fd(stream: TextIO) -> int | None:
    try:
        return os.dup(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


class LogSink:
    def __init__(self, stream: TextIO | BackgroundWriter | None = None, enabled: bool = True) -> None:
        target = stream or sys.stderr
        # The CLI makes sys.stderr a BackgroundWriter for the whole process; otherwise
        # (the pytest plugin) the sink has its own, stopped by close().
        self._owned = not isinstance(target, BackgroundWriter)
        self._writer = BackgroundWriter(target) if self._owned else target  # type: ignore[arg-type]
        self.enabled = enabled
        self._pending: list[str] = []
        self._size = 0
        self._scheduled: asyncio.TimerHandle | None = None
        self.listeners: list[Callable[[str, str], None]] = []
        self.feed: CloudWatchFeed | None = None  # set by the server when logs go to CloudWatch

    def write(self, function: str, text: str, group: str | None = None, stream: str | None = None) -> None:
        """`text` is one or more complete lines (a trailing newline is added if missing);
        with the log `stream` of the environment that wrote it, it also goes to CloudWatch
        Logs (`feed`, when the emulator ships logs there)."""
        for listener in self.listeners:
            listener(function, text)
        feed = self.feed
        if feed is not None and stream is not None:
            feed.put(group or f"/aws/lambda/{function}", stream, text)
        if not self.enabled:
            return
        if not text.endswith("\n"):
            text += "\n"
        prefix = f"[{function}] "
        block = prefix + text[:-1].replace("\n", "\n" + prefix) + "\n"
        self._pending.append(block)
        self._size += len(block)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif self._scheduled is None:
            try:
                self._scheduled = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if not self._pending:
            return
        data = "".join(self._pending)
        self._pending.clear()
        self._size = 0
        self._writer.write(data)

    def drain(self, timeout_s: float) -> bool:
        """Hand over what is buffered and wait (bounded) until it is written."""
        self.flush()
        return self._writer.drain(timeout_s)

    def close(self, timeout_s: float = 1.0) -> None:
        """Hand over what is buffered; wait (bounded) for it to be written."""
        self.flush()
        if self._owned:
            self._writer.close(timeout_s)
        else:
            self._writer.drain(timeout_s)

    def snapshot(self) -> dict[str, int]:
        return {"dropped_lines": self._writer.dropped_lines, "dropped_chars": self._writer.dropped_chars}

    def handler_output(self, function: str, group: str | None = None, stream: str | None = None) -> Callable[[str], None]:
        return lambda text: self.write(function, text, group, stream)
