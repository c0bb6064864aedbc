"""Safe extraction of uploaded .zip packages (emulator/functions/zip_package.py)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from emulator.functions import zip_package
from emulator.functions.zip_package import PackageError, extract_package, inspect_package, package_digest


def archive(entries: dict[str, bytes], links: dict[str, str] | None = None, mode: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.create_system, info.external_attr = 3, (0o100000 | mode) << 16
            out.writestr(info, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system, info.external_attr = 3, 0o120777 << 16
            out.writestr(info, target)
    return buffer.getvalue()


def test_inspect_reports_lambdas_sha_and_size() -> None:
    data = archive({"app.py": b"x = 1\n"})
    info = inspect_package(data)
    assert (info.code_sha256, info.code_size, info.unzipped_size, info.entries) == (package_digest(data), len(data), 6, 1)


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "../evil.py", "a/../../evil.py", "C:/evil.py", "..\\evil.py"])
def test_paths_that_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(PackageError, match="points outside the package"):
        inspect_package(archive({name: b"x"}))


def test_not_a_zip_is_lambdas_unreadable_message() -> None:
    with pytest.raises(PackageError) as excinfo:
        inspect_package(b"PK\x03\x04 but not really")
    assert str(excinfo.value) == zip_package.UNREADABLE


def test_declared_sizes_over_the_quota_are_refused_before_extracting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zip_package, "MAX_UNZIPPED_BYTES", 10)
    with pytest.raises(PackageError, match="Unzipped size must be smaller than 10 bytes"):
        inspect_package(archive({"a": b"x" * 11}))


def test_a_header_that_lies_about_its_size_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "zip bomb" declares a small size; the bytes actually written are what counts."""
    data = bytearray(archive({"big.bin": b"\0" * 100_000}))
    # Make both headers claim 10 bytes uncompressed (offset 22 in the local header, 24 in the central one).
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 10)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    monkeypatch.setattr(zip_package, "MAX_UNZIPPED_BYTES", 1_000)
    target = tmp_path / "out"
    with pytest.raises(PackageError):
        extract_package(bytes(data), target)
    assert not target.exists() and not (tmp_path / "out.partial").exists()


def test_extraction_keeps_modes_and_inner_links_and_drops_links_out(tmp_path: Path) -> None:
    data = archive({"bin/tool": b"#!/bin/sh\n", "lib/real.py": b"x = 1\n"}, mode=0o755)
    extra = archive({}, links={"inner.py": "lib/real.py", "out": "/etc/passwd", "up": "../../outside"})
    merged = io.BytesIO()
    with zipfile.ZipFile(merged, "w") as out:
        for source in (data, extra):
            with zipfile.ZipFile(io.BytesIO(source)) as inner:
                for info in inner.infolist():
                    out.writestr(info, inner.read(info))
    result = extract_package(merged.getvalue(), tmp_path / "code")
    root = result.folder
    assert os.access(root / "bin" / "tool", os.X_OK)
    assert (root / "inner.py").is_symlink() and (root / "inner.py").read_text() == "x = 1\n"
    assert sorted(result.skipped_links) == ["out", "up"]
    assert not (root / "out").exists() and not (root / "up").exists()


def test_too_many_entries_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zip_package, "MAX_ENTRIES", 2)
    with pytest.raises(PackageError, match="more than 2 entries"):
        inspect_package(archive({"a": b"", "b": b"", "c": b""}))
