"""CPU in proportion to memory (`--cpu-model proportional`): each environment gets a CPU cgroup
whose CFS quota gives it the vCPUs Lambda gives its memory (runtimes/cgroup_paths.py,
`cpu_quota_us`), so a CPU-bound handler really runs slower at 128 MB than at 1,769 MB.

Used by the fork server. On cgroup v1 the `cpu` controller has a hierarchy of its own: the
groups go under the fork server's own cpu cgroup, named like the memory groups
(`lambda-emulator-<pid>/<env id>`), and the environment writes its PID into both. On cgroup
v2 the environment's one group (created for memory) gets `cpu.max` once the `cpu`
controller is delegated to it. Where neither can be had, `open_cpu_groups` says why and
environments run uncapped.
https://docs.kernel.org/scheduler/sched-bwc.html, https://docs.kernel.org/admin-guide/cgroup-v2.html
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import cgroup_paths
from .cgroup_paths import CPU_PERIOD_US, GROUP_PREFIX, cpu_quota_us
from .cgroups import MemoryGroups, is_fork_server, read_pids, subdirs


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class CpuGroups:
    """How environments' CPU is capped; `mode` is "cgroup-v1" or "cgroup-v2"."""

    mode = ""

    def place(self, env_id: str, memory_mb: int, memory_group: str | None) -> str | None:
        """Cap a new environment; returns the cgroup.procs file it must join (v1), else None."""
        raise NotImplementedError

    def release(self, path: str | None) -> None:
        pass

    def close(self) -> None:
        pass


class CpuGroupsV1(CpuGroups):
    mode = "cgroup-v1"

    def __init__(self, base: str) -> None:
        self.base = base

    def place(self, env_id: str, memory_mb: int, memory_group: str | None) -> str | None:
        path = os.path.join(self.base, env_id)
        try:
            os.mkdir(path)
            _write(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            _write(os.path.join(path, "cpu.cfs_quota_us"), str(cpu_quota_us(memory_mb)))
        except OSError:
            MemoryGroups.remove(path)
            return None
        return os.path.join(path, "cgroup.procs")

    def group_of(self, procs_file: str | None) -> str | None:
        return None if procs_file is None else os.path.dirname(procs_file)

    def release(self, path: str | None) -> None:
        if path is not None and not read_pids(os.path.join(path, "cgroup.procs")):
            MemoryGroups.remove(path)

    def close(self) -> None:
        for name in subdirs(self.base):
            MemoryGroups.remove(os.path.join(self.base, name))
        MemoryGroups.remove(self.base)


class CpuGroupsV2(CpuGroups):
    """cpu.max on the environments' memory groups (one unified group each)."""

    mode = "cgroup-v2"

    def place(self, env_id: str, memory_mb: int, memory_group: str | None) -> str | None:
        if memory_group is not None:
            try:
                _write(os.path.join(memory_group, "cpu.max"), f"{cpu_quota_us(memory_mb)} {CPU_PERIOD_US}")
            except OSError:
                pass
        return None


class OpenedCpu(NamedTuple):
    groups: CpuGroups | None
    note: str  # where, or why not (for the emulator's log)


def _sweep_v1(parent: str) -> None:
    """Remove (empty) cpu groups of fork servers that no longer run."""
    for name in subdirs(parent):
        owner = cgroup_paths.group_owner(name)
        if owner is None or is_fork_server(owner):
            continue
        stale = os.path.join(parent, name)
        for child in subdirs(stale):
            MemoryGroups.remove(os.path.join(stale, child))
        MemoryGroups.remove(stale)


def open_cpu_groups(proc_cgroup: str, mountinfo: str, memory: MemoryGroups | None) -> OpenedCpu:
    lines = cgroup_paths.parse_proc_cgroup(proc_cgroup)
    mounts = cgroup_paths.parse_mountinfo(mountinfo)
    if memory is not None and memory.mode == "cgroup-v2":
        try:
            parent = os.path.dirname(memory.base)
            _write(os.path.join(parent, "cgroup.subtree_control"), "+cpu")
            _write(os.path.join(memory.base, "cgroup.subtree_control"), "+cpu")
        except OSError as exc:
            return OpenedCpu(None, f"cannot delegate the cpu controller below {memory.base}: {exc}")
        return OpenedCpu(CpuGroupsV2(), f"cpu.max on the environments' cgroup v2 groups under {memory.base}")
    own = cgroup_paths.v1_cpu_location(lines, mounts)
    if own is None:
        why = "no cgroup v1 cpu controller is mounted"
        if memory is None:
            why += " and no cgroup v2 subtree is delegated (the memory limits fell back to the watchdog)"
        return OpenedCpu(None, why)
    _sweep_v1(own)
    base = os.path.join(own, f"{GROUP_PREFIX}{os.getpid()}")
    try:
        os.makedirs(base, exist_ok=True)
    except OSError as exc:
        return OpenedCpu(None, f"cannot create cpu cgroups in {own}: {exc.strerror or exc}")
    groups = CpuGroupsV1(base)
    probe = groups.place("probe", cgroup_paths.MB_PER_VCPU, None)
    if probe is None:
        groups.close()
        return OpenedCpu(None, f"cannot set a CFS quota in {base}")
    groups.release(os.path.dirname(probe))
    return OpenedCpu(groups, f"cgroup v1 cpu groups under the emulator's own ({base})")
