"""Listing a cgroup's children (emulator.runtimes.cgroups.subdirs) while other emulators remove
groups: a scan that fails part-way answers "no children" and still closes its directory handle
(an open one warned later, wherever the collector found it, and failed a whole CI run)."""

from __future__ import annotations

import os

import pytest

from emulator.runtimes import cgroups


class FailingScan:
    """A real directory scan that fails after its first entry, as readdir does when the
    group is removed under it; it records whether it was closed."""

    def __init__(self, path: str) -> None:
        self.real = os.scandir(path)
        self.closed = False

    def __enter__(self) -> FailingScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True
        self.real.close()

    def __iter__(self):
        yield next(self.real)
        raise FileNotFoundError(2, "No such file or directory")


def test_lists_only_directories(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "memory.limit_in_bytes").write_text("0")
    assert sorted(cgroups.subdirs(str(tmp_path))) == ["a", "b"]


def test_a_missing_group_has_no_children(tmp_path) -> None:
    assert cgroups.subdirs(str(tmp_path / "gone")) == []


def test_a_scan_failing_part_way_is_closed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    scans: list[FailingScan] = []

    class OsWithFailingScans:
        """The os module for cgroups alone (patching os.scandir itself would reach pytest)."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def scandir(path: str) -> FailingScan:
            scans.append(FailingScan(path))
            return scans[-1]

    monkeypatch.setattr(cgroups, "os", OsWithFailingScans())
    assert cgroups.subdirs(str(tmp_path)) == []
    assert [scan.closed for scan in scans] == [True]
