"""CPU in proportion to memory: the pure part (runtimes/cgroup_paths.py)."""

from __future__ import annotations

import pytest

from runtimes import cgroup_paths
from runtimes.cgroup_paths import CPU_PERIOD_US, cpu_quota_us, v1_cpu_location, vcpus_for


@pytest.mark.parametrize("memory, vcpus", [(1769, 1.0), (3538, 2.0), (10_240, 10_240 / 1769), (128, 128 / 1769)])
def test_one_vcpu_per_1769_mb(memory: int, vcpus: float) -> None:
    assert vcpus_for(memory) == pytest.approx(vcpus)


def test_at_most_six_vcpus() -> None:
    assert vcpus_for(20_000) == 6


def test_quota_over_the_period() -> None:
    assert cpu_quota_us(1769) == CPU_PERIOD_US
    assert cpu_quota_us(128) == round(128 / 1769 * CPU_PERIOD_US) == 1447
    assert cpu_quota_us(128, period_us=10_000) == 1000  # the kernel's minimum quota
    assert cpu_quota_us(3538) == 2 * CPU_PERIOD_US


MOUNTINFO = (
    "35 25 0:30 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu\n"
    "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
)


def test_v1_cpu_location() -> None:
    lines = cgroup_paths.parse_proc_cgroup("4:memory:/a/b\n1:cpu:/user/app\n0::/\n")
    mounts = cgroup_paths.parse_mountinfo(MOUNTINFO)
    assert v1_cpu_location(lines, mounts) == "/sys/fs/cgroup/cpu/user/app"
    assert v1_cpu_location(cgroup_paths.parse_proc_cgroup("0::/x\n"), mounts) is None
