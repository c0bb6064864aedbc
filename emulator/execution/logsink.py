"""Where function logs go: the emulator's log, one prefix per function, never on the hot path.

Lines are appended to a buffer and written in one go shortly after (or when the buffer
grows large), so neither a chatty handler nor START/END/REPORT lines delay a response.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Callable, TextIO

FLUSH_DELAY_S = 0.05
FLUSH_BYTES = 256 * 1024


class LogSink:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream or sys.stderr
        self.enabled = enabled
        self._pending: list[str] = []
        self._size = 0
        self._scheduled: asyncio.TimerHandle | None = None
        self.listeners: list[Callable[[str, str], None]] = []

    def write(self, function: str, text: str) -> None:
        """`text` is one or more complete lines (a trailing newline is added if missing)."""
        for listener in self.listeners:
            listener(function, text)
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
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not break invocations

    def handler_output(self, function: str) -> Callable[[str], None]:
        return lambda text: self.write(function, text)
