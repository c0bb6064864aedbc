"""Where memory cgroups go: the pure rules of emulator.runtimes.cgroup_paths, fed the /proc
text of the host kinds the README names (cgroup v1 as root, a hybrid host, cgroup v2 with
systemd's delegation, a container). The cgroup v2 cases cannot run for real on this test
machine (cgroup v1 owns the memory controller), so these are their only tests."""

from __future__ import annotations

import pytest

from emulator.runtimes.cgroup_paths import (
    V2_LEAF_NAME,
    CgroupLine,
    V1Location,
    V2Facts,
    choose_memory_mode,
    group_owner,
    parse_mountinfo,
    parse_proc_cgroup,
    plan_v2,
    v1_memory_location,
    v2_location,
)

V1_HOST_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/b572
2:cpu,cpuacct:/
0::/
"""
V1_HOST_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_USER_CGROUP = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n"
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
# A container with its own cgroup namespace: it sees its cgroup as "/".
CONTAINER_CGROUP = "0::/\n"
CONTAINER_MOUNTINFO = "700 690 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n"
# A v1 container without a cgroup namespace: the mount shows only its own part of the tree.
V1_CONTAINER_CGROUP = "4:memory:/docker/abc\n"
V1_CONTAINER_MOUNTINFO = "801 800 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"


def test_proc_cgroup_lines_are_parsed_per_hierarchy() -> None:
    lines = parse_proc_cgroup(V1_HOST_CGROUP)
    assert CgroupLine(4, ("memory",), "/process_api/b572") in lines
    assert CgroupLine(2, ("cpu", "cpuacct"), "/") in lines
    assert CgroupLine(0, (), "/") in lines
    assert CgroupLine(9, ("name=systemd",), "/") in lines
    assert parse_proc_cgroup("garbage\n\n1:x\n") == []


def test_mountinfo_keeps_only_cgroup_mounts_and_unescapes_paths() -> None:
    mounts = parse_mountinfo(V1_HOST_MOUNTINFO + r"50 31 0:40 / /mnt/with\040space rw - cgroup2 cgroup2 rw" + "\n")
    assert [m.mount_point for m in mounts] == [
        "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/mnt/with space",
    ]
    memory = mounts[1]
    assert (memory.fstype, memory.root, memory.super_options) == ("cgroup", "/", ("rw", "memory"))


def test_v1_groups_go_under_our_own_memory_cgroup_with_the_top_as_fallback() -> None:
    location = v1_memory_location(parse_proc_cgroup(V1_HOST_CGROUP), parse_mountinfo(V1_HOST_MOUNTINFO))
    assert location == V1Location(own="/sys/fs/cgroup/memory/process_api/b572", top="/sys/fs/cgroup/memory")


def test_v1_in_a_container_maps_the_mount_root_onto_our_path() -> None:
    location = v1_memory_location(parse_proc_cgroup(V1_CONTAINER_CGROUP), parse_mountinfo(V1_CONTAINER_MOUNTINFO))
    assert location == V1Location(own="/sys/fs/cgroup/memory", top="/sys/fs/cgroup/memory")


def test_no_v1_memory_controller_means_no_v1_location() -> None:
    assert v1_memory_location(parse_proc_cgroup(V2_USER_CGROUP), parse_mountinfo(V2_MOUNTINFO)) is None
    # A memory line whose hierarchy is not mounted where we can see it.
    assert v1_memory_location(parse_proc_cgroup("4:memory:/elsewhere\n"), parse_mountinfo(V1_CONTAINER_MOUNTINFO)) is None


@pytest.mark.parametrize(
    ("proc_cgroup", "mountinfo", "own"),
    [
        (V2_USER_CGROUP, V2_MOUNTINFO, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"),
        (CONTAINER_CGROUP, CONTAINER_MOUNTINFO, "/sys/fs/cgroup"),
        (V1_HOST_CGROUP, V1_HOST_MOUNTINFO, "/sys/fs/cgroup/unified"),  # a hybrid host's unified tree
    ],
    ids=["systemd-user", "container", "hybrid"],
)
def test_our_own_v2_group_is_found_through_the_cgroup2_mount(proc_cgroup: str, mountinfo: str, own: str) -> None:
    assert v2_location(parse_proc_cgroup(proc_cgroup), parse_mountinfo(mountinfo)) == own


def test_no_cgroup2_mount_means_no_v2_location() -> None:
    assert v2_location(parse_proc_cgroup(V2_USER_CGROUP), parse_mountinfo(V1_CONTAINER_MOUNTINFO)) is None


OWN = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"


def facts(**changes: object) -> V2Facts:
    base = dict(
        own=OWN, controllers=frozenset({"cpu", "memory", "pids"}), subtree_control=frozenset(), procs=(100, 101, 102),
        ours=frozenset({100, 101, 102, 103}),
    )
    base.update(changes)
    return V2Facts(**base)  # type: ignore[arg-type]


def test_a_delegated_group_holding_only_our_processes_is_made_room_in() -> None:
    plan = plan_v2(facts())
    assert plan.parent == OWN and plan.leaf == f"{OWN}/{V2_LEAF_NAME}" and plan.evacuate == (100, 101, 102)


def test_without_the_memory_controller_there_is_no_place_and_the_reason_says_so() -> None:
    plan = plan_v2(facts(controllers=frozenset({"cpu", "pids"})))
    assert plan.parent is None and "memory controller is not delegated" in plan.reason and OWN in plan.reason


def test_a_group_shared_with_other_processes_is_left_alone() -> None:
    # A login shell's session scope: moving the user's shell is not ours to do.
    plan = plan_v2(facts(procs=(100, 555)))
    assert plan.parent is None and "555" in plan.reason and "systemd-run --user --scope" in plan.reason


def test_a_group_already_delegating_memory_is_used_as_it_is() -> None:
    # A container's namespace root (or the real root) may hold processes and delegate.
    assert plan_v2(facts(subtree_control=frozenset({"memory"}), procs=())).parent == OWN
    assert plan_v2(facts(subtree_control=frozenset({"memory"}))).parent is None


def test_a_second_fork_server_uses_the_room_the_first_one_made() -> None:
    leaf = f"{OWN}/{V2_LEAF_NAME}"
    plan = plan_v2(facts(own=leaf, parent_subtree_control=frozenset({"memory"})))
    assert plan.parent == OWN and plan.evacuate == () and plan.leaf is None


def test_group_names_carry_their_fork_servers_pid() -> None:
    assert group_owner("lambda-emulator-1234") == 1234
    assert group_owner("lambda-emulator-control") is None
    assert group_owner("env-3") is None


def test_auto_takes_a_cgroup_when_there_is_one_and_says_where() -> None:
    choice = choose_memory_mode("auto", "cgroup-v1", "cgroup v1 memory groups under the emulator's own (/x)", swept=2)
    assert (choice.mode, choice.error) == ("cgroup-v1", None)
    assert "/x" in choice.note and "removed 2 cgroup(s)" in choice.note


def test_auto_without_a_cgroup_is_the_watchdog_and_says_why() -> None:
    choice = choose_memory_mode("auto", None, "cannot create cgroup v1 memory groups in /sys/fs/cgroup/memory/u")
    assert choice.mode == "watchdog" and choice.error is None
    assert choice.note == "resident-memory watchdog (cannot create cgroup v1 memory groups in /sys/fs/cgroup/memory/u)"


def test_cgroup_requested_without_one_is_an_error_naming_the_reason() -> None:
    choice = choose_memory_mode("cgroup", None, "the memory controller is not delegated to /g")
    assert choice.error == "memory limits 'cgroup' requested, but the memory controller is not delegated to /g"


@pytest.mark.parametrize(("requested", "mode"), [("watchdog", "watchdog"), ("none", "none")])
def test_watchdog_and_none_are_taken_as_asked(requested: str, mode: str) -> None:
    choice = choose_memory_mode(requested, None, "", swept=0)
    assert (choice.mode, choice.error) == (mode, None) and "removed" not in choice.note


def test_an_unknown_mode_is_an_error() -> None:
    assert "unknown memory limits 'lots'" in (choose_memory_mode("lots", None, "").error or "")
