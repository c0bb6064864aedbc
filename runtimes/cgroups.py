"""Memory cgroups for execution environments: one group per environment, under our own.

Used by the fork server. A group caps an environment's memory (MemorySize), tells after a
death whether the kernel's OOM killer struck and what the peak was (REPORT's Max Memory
Used), and holds every process the handler started, so that killing the group kills them
all, wherever they moved in the process tree. Two flavours:

* cgroup v1 (the `memory` hierarchy, root or an owner of the emulator's group):
  https://docs.kernel.org/admin-guide/cgroup-v1/memory.html
* cgroup v2 with a delegated subtree (a user with systemd's delegation, a container):
  https://docs.kernel.org/admin-guide/cgroup-v2.html

Where the groups go is decided by the pure functions of cgroup_paths; this module does the
file-system work.
"""

from __future__ import annotations

import os
import signal
import time
from typing import NamedTuple

from . import cgroup_paths
from .cgroup_paths import GROUP_PREFIX, V2_LEAF_NAME

KILL_WAIT_S = 2.0  # a synchronous kill (shutdown, sweep) waits this long for a group to empty
KILL_POLL_S = 0.002


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def read_pids(procs_file: str) -> list[int]:
    try:
        return [int(word) for word in _read(procs_file).split()]
    except (OSError, ValueError):
        return []


def _kill_pids(pids: list[int]) -> bool:
    """False when some process may not be killed by us (another user's)."""
    allowed = True
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:
            allowed = False
        except OSError:
            pass
    return allowed


class MemoryGroups:
    """One flavour's files; `base` is our group, environments get subgroups of it."""

    mode = ""
    LIMIT = ""
    UNLIMITED = ""
    PEAK = ""

    def __init__(self, base: str, note: str = "") -> None:
        self.base = base
        self.note = note

    # -- environment groups ------------------------------------------------------------
    def create(self, env_id: str, limit_bytes: int) -> str | None:
        path = os.path.join(self.base, env_id)
        try:
            os.mkdir(path)
            self.set_limit(path, limit_bytes)
            return path
        except OSError:
            self.remove(path)
            return None

    def set_limit(self, path: str, limit_bytes: int) -> None:
        _write(os.path.join(path, self.LIMIT), self.UNLIMITED if limit_bytes < 0 else str(limit_bytes))

    @staticmethod
    def procs_file(path: str) -> str:
        return os.path.join(path, "cgroup.procs")

    def kill(self, path: str) -> bool:
        """SIGKILL every process in the group; True when it is empty already."""
        pids = read_pids(self.procs_file(path))
        _kill_pids(pids)
        return not pids

    def kill_until_empty(self, path: str, wait_s: float = KILL_WAIT_S) -> bool:
        """Kill again and again (a process may fork while we kill) until the group is empty."""
        deadline = time.monotonic() + wait_s
        while True:
            pids = read_pids(self.procs_file(path))
            if not pids:
                return True
            if not _kill_pids(pids) or time.monotonic() >= deadline:
                return False
            time.sleep(KILL_POLL_S)

    @staticmethod
    def remove(path: str) -> bool:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def oom_killed(self, path: str) -> bool:
        raise NotImplementedError

    def peak_kb(self, path: str) -> int:
        try:
            return int(_read(os.path.join(path, self.PEAK)).strip() or 0) // 1024
        except (OSError, ValueError):
            return 0

    def env_groups(self) -> list[str]:
        return [os.path.join(self.base, name) for name in subdirs(self.base)]

    def close(self, wait_s: float = KILL_WAIT_S) -> None:
        """Kill what is left in every environment group and remove them all, and ours."""
        for path in self.env_groups():
            self.kill_until_empty(path, wait_s)
            self.remove(path)
        self.remove(self.base)


class MemoryGroupsV1(MemoryGroups):
    mode = "cgroup-v1"
    LIMIT = "memory.limit_in_bytes"
    UNLIMITED = "-1"
    PEAK = "memory.max_usage_in_bytes"

    def set_limit(self, path: str, limit_bytes: int) -> None:
        super().set_limit(path, limit_bytes)
        # With swap accounting the limit on memory+swap must be raised first and lowered
        # last, and equal to the memory limit: Lambda environments have no swap.
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            try:
                _write(memsw, self.UNLIMITED if limit_bytes < 0 else str(limit_bytes))
            except OSError:
                pass

    def oom_killed(self, path: str) -> bool:
        try:
            for line in _read(os.path.join(path, "memory.oom_control")).splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
            return int(_read(os.path.join(path, "memory.failcnt")).strip() or 0) > 0
        except (OSError, ValueError):
            return False


class MemoryGroupsV2(MemoryGroups):
    mode = "cgroup-v2"
    LIMIT = "memory.max"
    UNLIMITED = "max"
    PEAK = "memory.peak"  # Linux 5.19+; without it REPORT falls back to the process's own peak

    def create(self, env_id: str, limit_bytes: int) -> str | None:
        path = super().create(env_id, limit_bytes)
        if path is not None:
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                # No swap, as on Lambda; an OOM kill takes the whole environment, as on Lambda.
                try:
                    _write(os.path.join(path, name), value)
                except OSError:
                    pass
        return path

    def kill(self, path: str) -> bool:
        try:
            _write(os.path.join(path, "cgroup.kill"), "1")  # Linux 5.14+: kills forks in flight too
        except OSError:
            return super().kill(path)
        return not read_pids(self.procs_file(path))

    def oom_killed(self, path: str) -> bool:
        try:
            for line in _read(os.path.join(path, "memory.events")).splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        except (OSError, ValueError):
            pass
        return False


def subdirs(path: str) -> list[str]:
    # `with`: a group removed while we list it makes the scan raise part-way, and an iterator
    # left open then warns (ResourceWarning) whenever the collector happens to find it.
    try:
        with os.scandir(path) as scan:
            return [entry.name for entry in scan if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def is_fork_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"forkserver" in f.read()
    except OSError:
        return False


def sweep_stale(parent: str, flavour: type[MemoryGroups]) -> int:
    """Kill what is left in groups of fork servers that no longer exist (a SIGKILL skips our
    clean-up) and remove those groups. Returns how many groups were removed."""
    removed = 0
    for name in subdirs(parent):
        owner = cgroup_paths.group_owner(name)
        if owner is None:
            if name == V2_LEAF_NAME:
                MemoryGroups.remove(os.path.join(parent, name))  # only succeeds when empty
            continue
        if is_fork_server(owner) or not os.access(os.path.join(parent, name), os.W_OK):
            continue  # a running emulator's, or one we may not remove: never touch it
        stale = flavour(os.path.join(parent, name))
        stale.close()
        removed += not os.path.exists(stale.base)
    return removed


class Opened(NamedTuple):
    groups: MemoryGroups | None
    note: str = ""  # how we got there, or why not (for the emulator's log)
    swept: int = 0
    warning: bool = False  # a fallback the user should hear about


def _try_base(parent: str, flavour: type[MemoryGroups], note: str = "") -> MemoryGroups | None:
    base = os.path.join(parent, f"{GROUP_PREFIX}{os.getpid()}")
    try:
        os.mkdir(base)
    except FileExistsError:
        pass
    except OSError:
        return None
    groups = flavour(base, note)
    probe = groups.create("probe", -1)
    if probe is None:
        groups.remove(base)
        return None
    groups.remove(probe)
    return groups


def open_v1(location: cgroup_paths.V1Location) -> Opened:
    swept = sweep_stale(location.own, MemoryGroupsV1)
    if location.top != location.own:
        swept += sweep_stale(location.top, MemoryGroupsV1)  # where earlier versions put them
    groups = _try_base(location.own, MemoryGroupsV1)
    if groups is not None:
        return Opened(groups, f"cgroup v1 memory groups under the emulator's own ({groups.base})", swept)
    if location.top != location.own:
        note = (
            f"cannot create memory cgroups under the emulator's own ({location.own}): using the top of "
            f"the hierarchy, so environments do not count against the emulator's own memory limit"
        )
        groups = _try_base(location.top, MemoryGroupsV1, note)
        if groups is not None:
            return Opened(groups, f"{note} ({groups.base})", swept, warning=True)
    return Opened(None, f"cannot create cgroup v1 memory groups in {location.own}", swept)


def _ours(control_plane: int) -> frozenset[int]:
    """The control plane and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = _read(f"/proc/{entry}/stat")
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    ours = {control_plane}
    for pid in parents:
        chain, current = [], pid
        while current in parents and current not in ours and current not in chain:
            chain.append(current)
            current = parents[current]
        if current in ours:
            ours.update(chain)
    return frozenset(ours)


def _words(path: str) -> frozenset[str]:
    try:
        return frozenset(_read(path).split())
    except OSError:
        return frozenset()


def open_v2(own: str) -> Opened:
    parent_dir = os.path.dirname(own)
    swept = sweep_stale(own, MemoryGroupsV2)
    if os.path.basename(own) == V2_LEAF_NAME:
        swept += sweep_stale(parent_dir, MemoryGroupsV2)
    facts = cgroup_paths.V2Facts(
        own=own,
        controllers=_words(os.path.join(own, "cgroup.controllers")),
        subtree_control=_words(os.path.join(own, "cgroup.subtree_control")),
        procs=tuple(read_pids(os.path.join(own, "cgroup.procs"))),
        ours=_ours(os.getppid()),
        parent_subtree_control=_words(os.path.join(parent_dir, "cgroup.subtree_control")),
    )
    plan = cgroup_paths.plan_v2(facts)
    if plan.parent is None:
        return Opened(None, plan.reason, swept)
    try:
        if plan.leaf is not None:
            os.makedirs(plan.leaf, exist_ok=True)
            for pid in plan.evacuate:
                try:
                    _write(os.path.join(plan.leaf, "cgroup.procs"), str(pid))
                except ProcessLookupError:
                    pass  # exited meanwhile
            _write(os.path.join(plan.parent, "cgroup.subtree_control"), "+memory")
        base = os.path.join(plan.parent, f"{GROUP_PREFIX}{os.getpid()}")
        os.makedirs(base, exist_ok=True)
        _write(os.path.join(base, "cgroup.subtree_control"), "+memory")
    except OSError as exc:
        return Opened(None, f"cannot delegate the memory controller below {plan.parent}: {exc}", swept)
    groups = _try_base(plan.parent, MemoryGroupsV2)
    if groups is None:
        return Opened(None, f"cannot create cgroup v2 memory groups in {plan.parent}", swept)
    return Opened(groups, f"cgroup v2 memory groups under the emulator's own ({groups.base})", swept)


def open_memory_groups(proc_cgroup: str, mountinfo: str, create: bool = True) -> Opened:
    """Sweep groups left by dead fork servers, then (if `create`) find a place for ours:
    cgroup v1 if the memory controller is there, else a delegated cgroup v2 subtree;
    Opened(None, why) if neither."""
    lines = cgroup_paths.parse_proc_cgroup(proc_cgroup)
    mounts = cgroup_paths.parse_mountinfo(mountinfo)
    v1 = cgroup_paths.v1_memory_location(lines, mounts)
    v2 = cgroup_paths.v2_location(lines, mounts)
    if v2 is not None and v1 is not None and "memory" not in _words(os.path.join(v2, "cgroup.controllers")):
        v2 = None  # a hybrid host: the memory controller is v1's
    if not create:
        swept = 0
        if v1 is not None:
            swept += sweep_stale(v1.own, MemoryGroupsV1) + (sweep_stale(v1.top, MemoryGroupsV1) if v1.top != v1.own else 0)
        if v2 is not None:
            swept += sweep_stale(v2, MemoryGroupsV2)
        return Opened(None, "", swept)
    notes = []
    swept = 0
    if v1 is not None:
        opened = open_v1(v1)
        if opened.groups is not None:
            return opened
        notes.append(opened.note)
        swept += opened.swept
    if v2 is not None:
        opened = open_v2(v2)
        opened = opened._replace(swept=opened.swept + swept)
        if opened.groups is not None:
            return opened
        notes.append(opened.note)
        swept = opened.swept
    return Opened(None, "; ".join(notes) or "no memory cgroup hierarchy is mounted", swept)
