"""Client loops on threads at once, for the benchmarks that drive a server from several
keep-alive connections: every loop on its own thread, timed from the first start to the last
join, and the first exception a loop raised re-raised once every thread has ended (a failed
client must not pass for a slow one)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


def each_on_a_thread(work: Callable[[T], Any], items: Iterable[T]) -> float:
    """work(item) for every item, each on its own thread, all at once; the seconds they took."""
    failures: list[BaseException] = []

    def guarded(item: T) -> None:
        try:
            work(item)
        except BaseException as exc:  # re-raised after the join
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(item,), daemon=True) for item in items]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed
