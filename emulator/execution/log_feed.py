"""Function log text on its way to CloudWatch Logs: a bounded hand-over, nothing more.

Environments and the invoker `put` what a function writes (with its log group and the
environment's log stream); a background task of the server takes it in batches and sends
it to the backend (emulator/service/log_shipper.py). `put` only appends to a deque: no
formatting, no I/O, so the invoke path pays a few hundred nanoseconds per write. When the
backend falls behind, what does not fit is dropped and counted, never waited for.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

# Not AWS figures: how much log text may wait for the shipper before new text is dropped.
MAX_PENDING_CHUNKS = 200_000
MAX_PENDING_CHARS = 32 * 1024 * 1024


class LogChunk(NamedTuple):
    group: str
    stream: str
    timestamp_ms: int
    text: str  # one or more lines


class CloudWatchFeed:
    def __init__(self, max_chunks: int = MAX_PENDING_CHUNKS, max_chars: int = MAX_PENDING_CHARS) -> None:
        self._chunks: deque[LogChunk] = deque()
        self._chars = 0
        self._max_chunks = max_chunks
        self._max_chars = max_chars
        self.dropped_chunks = 0
        self.dropped_chars = 0

    def put(self, group: str, stream: str, text: str) -> None:
        if len(self._chunks) >= self._max_chunks or self._chars + len(text) > self._max_chars:
            self.dropped_chunks += 1
            self.dropped_chars += len(text)
            return
        self._chunks.append(LogChunk(group, stream, int(time.time() * 1000), text))
        self._chars += len(text)

    def take(self) -> list[LogChunk]:
        """Everything waiting, oldest first; the feed is empty afterwards."""
        chunks = list(self._chunks)
        self._chunks.clear()
        self._chars = 0
        return chunks

    def __len__(self) -> int:
        return len(self._chunks)
