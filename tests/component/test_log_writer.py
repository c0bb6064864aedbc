"""The background log writer: a reader that stops reading never makes `write` wait; what
does not fit is dropped and counted, and a line says so once the reader is back."""

from __future__ import annotations

import os
import re
import threading
import time

from emulator.execution.logsink import BackgroundWriter


def test_writes_to_a_stalled_pipe_return_at_once_and_overflow_is_counted() -> None:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w")
    writer = BackgroundWriter(stream, limit=10_000)
    line = "x" * 99 + "\n"
    done = threading.Event()

    def flood() -> None:
        for _ in range(5_000):  # 500 KB: far more than the pipe (64 KB) plus the buffer
            writer.write(line)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10.0), "write() waited for the reader"
    assert writer.dropped_lines > 0 and writer.dropped_chars == writer.dropped_lines * len(line)
    # The reader comes back: what was kept arrives, with notes that add up to what was dropped.
    received = b""
    os.set_blocking(read_fd, False)
    deadline = time.monotonic() + 10.0
    while _reported(received) < writer.dropped_lines and time.monotonic() < deadline:
        try:
            received += os.read(read_fd, 1 << 16)
        except BlockingIOError:
            writer.write("tick\n")  # the next chunk carries the note
            time.sleep(0.01)
    assert _reported(received) == writer.dropped_lines
    assert received.count(line.encode()) + writer.dropped_lines >= 5_000
    writer.close(1.0)
    stream.close()
    os.close(read_fd)


def _reported(received: bytes) -> int:
    return sum(int(n) for n in re.findall(rb"\[emulator\] (\d+) log line\(s\) dropped", received))
