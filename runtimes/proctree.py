"""Process-tree helpers for the fork server and environments: Linux prctl flags, children
from /proc, and the resident memory of a process and everything below it.

https://man7.org/linux/man-pages/man2/prctl.2.html (PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER)
and https://man7.org/linux/man-pages/man5/proc.5.html (/proc/<pid>/stat, .../children).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import Any, NamedTuple

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PAGE_KB = resource.getpagesize() // 1024

# Fields of /proc/<pid>/stat counted from the one after the command name (proc(5) numbers
# them from 1 with pid and comm first: state is field 3, num_threads 20, rss 24).
_STATE, _NUM_THREADS, _RSS = 0, 17, 21


def prctl(option: int, value: int) -> bool:
    """prctl(2) with one argument; False where it fails or does not exist."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies."""
    return prctl(PR_SET_PDEATHSIG, sig)


def become_subreaper() -> bool:
    """Orphaned descendants of this process become its children (instead of init's), so it
    can kill and reap them."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def hold_processes(spec: dict[str, Any]) -> None:
    """Keep every process an environment starts findable, so it ends with the environment: in
    the environment's memory cgroup (which also caps its memory) and its CPU share's group
    (runtimes/cpu_groups.py), or else below this process, which then adopts the orphans of its
    descendants (runtimes/forkserver.py). Called in the environment's own process."""
    for key in ("cgroup_procs", "cpu_cgroup_procs"):
        procs = spec.get(key)
        if procs:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
    if spec.get("subreaper"):
        become_subreaper()  # kept across exec: what it starts stays below it


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and ")"


def children(pid: int, threads: int = 1) -> list[int]:
    """Children of `pid` (all its threads' children when it has more than one thread)."""
    tasks = [str(pid)]
    if threads > 1:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found.extend(int(word) for word in f.read().split())
        except OSError:
            continue
    return found


def own_children() -> list[int]:
    return children(os.getpid())


class TreeSample(NamedTuple):
    rss_kb: int  # resident memory of the process and all its descendants
    zombies: int  # descendants that exited and wait to be reaped


def sample_tree(pid: int) -> TreeSample | None:
    """Resident memory of `pid` and everything below it; None when `pid` is gone."""
    rss_pages = zombies = 0
    todo = [pid]
    first = True
    while todo:
        current = todo.pop()
        fields = _stat_fields(current)
        if fields is None:
            if first:
                return None
            continue
        first = False
        if fields[_STATE] in ("Z", "X"):
            zombies += 1
            continue
        rss_pages += int(fields[_RSS])
        todo.extend(children(current, int(fields[_NUM_THREADS])))
    return TreeSample(rss_pages * PAGE_KB, zombies)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def cgroup_paths_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except OSError:
        return ""
