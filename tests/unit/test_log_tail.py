"""LogType Tail: the last 4 KB of the log, kept while collecting (bounded memory)."""

from __future__ import annotations

import random

from emulator.execution.log_tail import LOG_TAIL_BYTES, LogTail


def test_the_tail_is_the_last_4_kb_of_everything_appended() -> None:
    rng = random.Random(7)
    tail, everything = LogTail(), []
    for _ in range(2_000):
        text = "é" * rng.randrange(0, 50) + "x" * rng.choice((0, 10, 1000, 5000)) + "\n"
        tail.append(text)
        everything.append(text)
        assert tail.value() == "".join(everything).encode()[-LOG_TAIL_BYTES:]
        # Never more than the limit plus one chunk of it is held.
        assert tail.size < 2 * LOG_TAIL_BYTES


def test_a_short_log_is_returned_whole() -> None:
    tail = LogTail()
    tail.append("START\n")
    tail.append("hello\n")
    assert tail.value() == b"START\nhello\n"


def test_one_huge_write_keeps_only_its_end() -> None:
    tail = LogTail()
    tail.append("a" * 10_000_000 + "end\n")
    assert tail.size == LOG_TAIL_BYTES and tail.value().endswith(b"end\n")
