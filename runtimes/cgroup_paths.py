"""Where the fork server may put its memory cgroups: pure functions of /proc text.

The fork server creates one memory cgroup per execution environment, *below the cgroup it
runs in itself* so the environments count against whatever limit the user (or a container,
or systemd) put on the emulator. Finding that place needs three facts, each read by the
caller and passed in here as text so the rules can be tested without a cgroup filesystem:

* /proc/self/cgroup: which cgroup this process is in, per hierarchy
  ("4:memory:/user.slice" on cgroup v1, "0::/user.slice/app.scope" on cgroup v2);
* /proc/self/mountinfo: where each hierarchy is mounted, and which part of it (a container
  sees its own cgroup as "/" and the mount's root field says so);
* on cgroup v2, what the process's own group allows (cgroup.controllers,
  cgroup.subtree_control, cgroup.procs).

https://docs.kernel.org/admin-guide/cgroup-v2.html ("Delegation", "No Internal Process
Constraint") and https://docs.kernel.org/admin-guide/cgroup-v1/memory.html.
"""

from __future__ import annotations

import os
from typing import NamedTuple

# The leaf our own processes move into on cgroup v2 when the emulator's group must make room
# for environment groups: a group that hands the memory controller to its children may hold
# no processes itself (cgroup-v2.html, "No Internal Process Constraint").
V2_LEAF_NAME = "lambda-emulator-control"
# Every group the fork server creates is named this, followed by "-<fork server pid>".
GROUP_PREFIX = "lambda-emulator-"
# NamedTuples, not dataclasses, in everything the fork server imports: dataclasses pulls in
# inspect and ast, ~1.5 MB more in the image every environment is forked from.

MEMORY_MODES = ("auto", "cgroup", "watchdog", "none")


class CgroupLine(NamedTuple):
    """One line of /proc/<pid>/cgroup."""

    hierarchy: int
    controllers: tuple[str, ...]
    path: str


class CgroupMount(NamedTuple):
    """A cgroup (v1) or cgroup2 filesystem from /proc/<pid>/mountinfo."""

    root: str  # the part of the hierarchy mounted here, as the reading process sees it
    mount_point: str
    fstype: str  # "cgroup" or "cgroup2"
    super_options: tuple[str, ...]  # on v1, the controllers bound to the hierarchy


def parse_proc_cgroup(text: str) -> list[CgroupLine]:
    lines = []
    for raw in text.splitlines():
        hierarchy, sep, rest = raw.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2 or not hierarchy.isdigit():
            continue
        lines.append(CgroupLine(int(hierarchy), tuple(c for c in controllers.split(",") if c), path))
    return lines


def _unescape(field_text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    out, i = [], 0
    while i < len(field_text):
        octal = field_text[i + 1 : i + 4]
        if field_text[i] == "\\" and len(octal) == 3 and octal.isdigit():
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts (proc(5): "... - fstype source super-options")."""
    mounts = []
    for raw in text.splitlines():
        fields = raw.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 3:
            continue
        fstype = fields[dash + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mounts.append(
            CgroupMount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=fstype,
                super_options=tuple(fields[dash + 3].split(",")),
            )
        )
    return mounts


def _inside(mount: CgroupMount, path: str) -> str | None:
    """The directory of cgroup `path` through `mount`, or None if the mount does not show it."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/") and root:
        return None
    relative = path[len(root) :].lstrip("/")
    return os.path.join(mount.mount_point, relative) if relative else mount.mount_point


class V1Location(NamedTuple):
    own: str  # the memory cgroup this process is in
    top: str  # the top of the hierarchy as mounted here: the fallback


def v1_memory_location(lines: list[CgroupLine], mounts: list[CgroupMount]) -> V1Location | None:
    """The cgroup v1 memory controller's directory for this process, or None (no v1 memory)."""
    line = next((entry for entry in lines if "memory" in entry.controllers), None)
    if line is None:
        return None
    for mount in mounts:
        if mount.fstype != "cgroup" or "memory" not in mount.super_options:
            continue
        own = _inside(mount, line.path)
        if own is not None:
            return V1Location(own=own, top=mount.mount_point)
    return None


def v2_location(lines: list[CgroupLine], mounts: list[CgroupMount]) -> str | None:
    """This process's own cgroup v2 directory, or None (no unified hierarchy)."""
    line = next((entry for entry in lines if entry.hierarchy == 0 and not entry.controllers), None)
    if line is None:
        return None
    for mount in mounts:
        if mount.fstype == "cgroup2":
            own = _inside(mount, line.path)
            if own is not None:
                return own
    return None


class V2Facts(NamedTuple):
    """What the fork server read in its own cgroup v2 directory."""

    own: str
    controllers: frozenset[str]  # cgroup.controllers: what the parent hands to this group
    subtree_control: frozenset[str]  # what this group already hands to its children
    procs: tuple[int, ...]  # cgroup.procs
    ours: frozenset[int]  # the control plane and its descendants (the fork server among them)
    parent_subtree_control: frozenset[str] = frozenset()


class V2Plan(NamedTuple):
    """How to get a place for memory-limited environment groups on cgroup v2.

    `parent` is the directory under which the fork server creates its group; `evacuate`
    lists the processes to move into `leaf` first, after which "+memory" is written to
    `parent`'s cgroup.subtree_control. `reason` says why there is no place (parent None).
    """

    parent: str | None
    evacuate: tuple[int, ...] = ()
    leaf: str | None = None
    reason: str = ""


def plan_v2(facts: V2Facts) -> V2Plan:
    own = facts.own
    if os.path.basename(own) == V2_LEAF_NAME and "memory" in facts.parent_subtree_control:
        # Another fork server of this emulator already made room: use the same parent.
        return V2Plan(parent=os.path.dirname(own))
    if "memory" not in facts.controllers:
        return V2Plan(None, reason=f"the memory controller is not delegated to {own} (cgroup.controllers)")
    if "memory" in facts.subtree_control:
        if facts.procs:
            return V2Plan(None, reason=f"{own} holds processes and already delegates memory to its children")
        return V2Plan(parent=own)
    strangers = [pid for pid in facts.procs if pid not in facts.ours]
    if strangers:
        return V2Plan(
            None,
            reason=f"{own} is shared with {len(strangers)} other process(es) (e.g. {strangers[0]}): "
            "run the emulator in a cgroup of its own (e.g. systemd-run --user --scope -p Delegate=yes)",
        )
    return V2Plan(parent=own, evacuate=tuple(facts.procs), leaf=os.path.join(own, V2_LEAF_NAME))


def group_owner(name: str) -> int | None:
    """The fork server PID a group of ours is named after ("lambda-emulator-1234"), else None."""
    if not name.startswith(GROUP_PREFIX):
        return None
    pid = name[len(GROUP_PREFIX) :]
    return int(pid) if pid.isdigit() else None


class MemoryChoice(NamedTuple):
    """How MemorySize is held: "cgroup-v1", "cgroup-v2", "watchdog" or "none" (README,
    "Memory, crashes and processes"), a line for the emulator's log, or why it cannot start."""

    mode: str
    note: str = ""
    error: str | None = None


def wants_cgroups(requested: str) -> bool:
    return requested in ("auto", "cgroup")


def choose_memory_mode(requested: str, cgroup_mode: str | None, cgroup_note: str, swept: int = 0) -> MemoryChoice:
    """`cgroup_mode` is what opening cgroups gave (None: nothing, and `cgroup_note` says why;
    else `cgroup_note` says where); `swept` counts stale groups removed on the way."""
    if requested not in MEMORY_MODES:
        return MemoryChoice("none", error=f"unknown memory limits {requested!r} (expected one of {', '.join(MEMORY_MODES)})")
    tail = f"; removed {swept} cgroup(s) left by an emulator that no longer runs" if swept else ""
    if cgroup_mode is not None and wants_cgroups(requested):
        return MemoryChoice(cgroup_mode, cgroup_note + tail)
    if requested == "cgroup":
        return MemoryChoice("none", error=f"memory limits 'cgroup' requested, but {cgroup_note}")
    if requested == "none":
        return MemoryChoice("none", "no memory limits (--memory-limits none)" + tail)
    why = f" ({cgroup_note})" if requested == "auto" and cgroup_note else ""
    return MemoryChoice("watchdog", f"resident-memory watchdog{why}" + tail)


# -- CPU in proportion to memory ---------------------------------------------------------------
# "At 1,769 MB, a function has the equivalent of one vCPU", up to 6 vCPUs at 10,240 MB:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
MB_PER_VCPU = 1769
MAX_VCPUS = 6
CPU_MODELS = ("proportional", "off")
# The CFS period of each environment's group. Shorter than the kernel's default 100 ms so a
# small share is spread finely (a 128 MB environment runs ~1.4 ms of every 20 ms, not 7 ms of
# every 100), and long enough that its quota stays above the kernel's minimum of 1 ms.
CPU_PERIOD_US = 20_000
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller cfs_quota_us / cpu.max quota


def vcpus_for(memory_mb: int) -> float:
    """The vCPUs Lambda gives `memory_mb`: in proportion, 1 per 1,769 MB, at most 6."""
    return min(MAX_VCPUS, memory_mb / MB_PER_VCPU)


def cpu_quota_us(memory_mb: int, period_us: int = CPU_PERIOD_US) -> int:
    """The CFS quota that gives `memory_mb`'s vCPUs over `period_us` (at least the kernel's minimum)."""
    return max(MIN_QUOTA_US, round(vcpus_for(memory_mb) * period_us))


def v1_cpu_location(lines: list[CgroupLine], mounts: list[CgroupMount]) -> str | None:
    """This process's own cgroup v1 `cpu` controller directory, or None (no v1 cpu)."""
    line = next((entry for entry in lines if "cpu" in entry.controllers), None)
    if line is None:
        return None
    for mount in mounts:
        if mount.fstype == "cgroup" and "cpu" in mount.super_options:
            own = _inside(mount, line.path)
            if own is not None:
                return own
    return None
