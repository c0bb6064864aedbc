"""The log tail of one invocation (`LogType: Tail`), bounded while it is collected.

Lambda returns the last 4 KB of an invocation's log in `LogResult`
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html). Only that much is kept as
output arrives, so a handler that prints 100 MB costs the control plane 4 KB, not 100 MB.
"""

from __future__ import annotations

from collections import deque

# https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html: "the last 4 KB of the execution log".
LOG_TAIL_BYTES = 4096


class LogTail:
    """Appended text, of which the last `limit` bytes are kept."""

    __slots__ = ("_chunks", "_size", "_limit")

    def __init__(self, limit: int = LOG_TAIL_BYTES) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit

    def append(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        if len(data) >= self._limit:
            self._chunks.clear()
            data = data[-self._limit :]
            self._size = 0
        self._chunks.append(data)
        self._size += len(data)
        # Drop whole chunks from the front while what remains still covers the limit.
        while self._size - len(self._chunks[0]) >= self._limit:
            self._size -= len(self._chunks.popleft())

    @property
    def size(self) -> int:
        """Bytes held (at most the limit plus one chunk)."""
        return self._size

    def value(self) -> bytes:
        return b"".join(self._chunks)[-self._limit :]
