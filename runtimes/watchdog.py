"""The resident-memory watchdog: MemorySize as a cap where no memory cgroup can be made.

Without a cgroup (most non-root users) the fork server samples every environment's resident
memory, the environment process plus everything it started, at a short interval, and
SIGKILLs an environment that is above its MemorySize: the invocation then reports
`Runtime.OutOfMemory`, as on Lambda. Resident memory, not address space: RLIMIT_DATA or
RLIMIT_AS would count every thread's reserved stack, so a 128 MB function could not start
20 threads (Lambda allows 1,024 processes or threads per environment:
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).

A sampler is not a hard limit: memory touched between two samples may exceed MemorySize
briefly before the kill. The sampler is injected, so the rules here run in virtual time.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .proctree import TreeSample

# Sample at most every 20 ms; with many environments a round costs more, and then the pause
# between rounds grows so the watchdog takes at most MAX_DUTY of the fork server's time.
MIN_INTERVAL_S = 0.02
MAX_DUTY = 0.05
# An environment without a cgroup adopts the orphans of its processes (runtimes/forkserver.py)
# but cannot tell them from the handler's own children, so it never reaps them: a handler
# running `cmd &` through a shell leaves one exited process per call. Past this many the
# environment is replaced once idle, well before Lambda's 1,024 processes or threads per
# environment (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
ZOMBIE_RECYCLE = 64


class Watched:
    __slots__ = ("limit_kb", "peak_kb", "zombies", "oom", "recycle")

    def __init__(self, limit_kb: int, peak_kb: int = 0, oom: bool = False) -> None:
        self.limit_kb = limit_kb
        self.peak_kb = peak_kb  # the largest sample so far: REPORT's Max Memory Used after a kill
        self.zombies = 0
        self.oom = oom  # killed by the watchdog for exceeding limit_kb
        self.recycle = False  # asked to be replaced for the exited processes it holds


class Round(NamedTuple):
    kill: list[int]  # over their memory size: kill now
    recycle: list[int]  # holding too many exited processes: replace once idle


class MemoryWatchdog:
    def __init__(self, sample: Callable[[int], TreeSample | None], enforce: bool = True) -> None:
        self._sample = sample
        self.enforce = enforce  # False: only measure (memory limits "none")
        self.watched: dict[int, Watched] = {}
        self.interval_s = MIN_INTERVAL_S
        self.next_due: float | None = None

    def watch(self, pid: int, limit_bytes: int, now: float) -> None:
        self.watched[pid] = Watched(limit_kb=limit_bytes // 1024)
        if self.next_due is None:
            self.next_due = now + self.interval_s

    def forget(self, pid: int) -> Watched | None:
        watched = self.watched.pop(pid, None)
        if not self.watched:
            self.next_due = None
        return watched

    def timeout(self, now: float) -> float | None:
        """Seconds until the next round is due (None: nothing to watch)."""
        return None if self.next_due is None else max(0.0, self.next_due - now)

    def tick(self, now: float, elapsed: Callable[[], float]) -> Round:
        """One round if due: sample every environment, remember peaks; returns the PIDs to
        kill for exceeding their limit and those to replace (each once). `elapsed()` is the
        clock after the round."""
        done = Round([], [])
        if self.next_due is None or now < self.next_due:
            return done
        for pid, watched in self.watched.items():
            sample = self._sample(pid)
            if sample is None:
                continue  # exited: its exit report will follow
            watched.peak_kb = max(watched.peak_kb, sample.rss_kb)
            watched.zombies = sample.zombies
            if self.enforce and not watched.oom and sample.rss_kb > watched.limit_kb:
                watched.oom = True
                done.kill.append(pid)
            if not watched.recycle and sample.zombies >= ZOMBIE_RECYCLE:
                watched.recycle = True
                done.recycle.append(pid)
        spent = max(0.0, elapsed() - now)
        self.interval_s = max(MIN_INTERVAL_S, spent / MAX_DUTY)
        self.next_due = (now + spent + self.interval_s) if self.watched else None
        return done


def reported_peak_kb(watched: Watched | None, own_peak_kb: int) -> int:
    """Max Memory Used for an environment that died: the larger of the sampled peak of its
    tree and the process's own peak (from wait4), never above MemorySize after an OOM kill
    (Lambda reports at most the memory size)."""
    peak = max(own_peak_kb, watched.peak_kb if watched else 0)
    if watched is not None and watched.oom:
        return min(peak, watched.limit_kb)
    return peak
