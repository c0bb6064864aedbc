"""emulator.functions.archive: .zip packages extracted safely, whatever the archive holds."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from emulator.functions.archive import ArchiveError, extract_zip


def _zip(path: Path, files: dict[str, bytes] | None = None, links: dict[str, str] | None = None,
         modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in (files or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | (modes or {}).get(name, 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, target)
    return path


def _nothing_left(folder: Path) -> bool:
    return [p.name for p in folder.iterdir()] == ["pkg.zip"]


def test_files_folders_modes_and_inner_links_are_unpacked(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pkg.zip",
                   {"app.py": b"x = 1\n", "lib/util.py": b"y = 2\n", "bin/tool": b"#!/bin/sh\n", "bin/s": b""},
                   links={"lib/again.py": "util.py", "shortcut": "lib"},
                   modes={"bin/tool": 0o755, "bin/s": 0o4755})
    result = extract_zip(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "app.py").read_bytes() == b"x = 1\n" and (out / "lib" / "again.py").read_bytes() == b"y = 2\n"
    assert os.readlink(out / "shortcut") == "lib" and (out / "shortcut" / "util.py").is_file()
    assert os.stat(out / "bin" / "tool").st_mode & 0o777 == 0o755
    assert os.stat(out / "bin" / "s").st_mode & 0o7000 == 0  # no setuid from an archive
    assert result.size == len(b"x = 1\n" + b"y = 2\n" + b"#!/bin/sh\n") and result.skipped == ()


@pytest.mark.parametrize("name", ["../evil.py", "lib/../../evil.py", "/etc/evil.py", "..\\evil.py", "C:/evil.py"])
def test_zip_slip_names_are_refused_and_nothing_is_left(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "pkg.zip", {"ok.py": b"", name: b"boom"})
    with pytest.raises(ArchiveError, match="evil.py"):
        extract_zip(archive, tmp_path / "out")
    assert _nothing_left(tmp_path) and not (tmp_path.parent / "evil.py").exists()


def test_links_out_of_the_package_are_left_out_and_reported(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pkg.zip", {"app.py": b""},
                   links={"passwd": "/etc/passwd", "up": "../../outside", "ok": "app.py"})
    result = extract_zip(archive, tmp_path / "out")
    assert sorted(link.path for link in result.skipped) == ["passwd", "up"]
    assert all(link.reason == "points outside the package" for link in result.skipped)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app.py", "ok"]


def test_nothing_is_written_through_a_link_that_points_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as bundle:  # the link first, then a file "inside" it
        link = zipfile.ZipInfo("escape")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, str(outside))
        bundle.writestr("escape/owned.py", b"boom")
    result = extract_zip(archive, tmp_path / "out")
    assert list(outside.iterdir()) == []
    # The link is left out, so its name is an ordinary folder of the package.
    assert (tmp_path / "out" / "escape" / "owned.py").read_bytes() == b"boom" and len(result.skipped) == 1


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pkg.zip", {"zeros.bin": bytes(8 * 1024 * 1024)})
    assert archive.stat().st_size < 100_000  # a small archive ...
    with pytest.raises(ArchiveError, match="unzipped size must be smaller than 1048576 bytes"):
        extract_zip(archive, tmp_path / "out", max_bytes=1024 * 1024)  # ... that inflates past the limit
    assert _nothing_left(tmp_path)


def test_headers_that_understate_the_size_do_not_get_past_the_limit(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pkg.zip", {"zeros.bin": bytes(4 * 1024 * 1024)})
    data = bytearray(archive.read_bytes())
    # Claim 10 bytes in the local header (offset 22) and the central directory (offset 24).
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        data[at:at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        extract_zip(archive, tmp_path / "out", max_bytes=1024 * 1024)
    assert _nothing_left(tmp_path)


def test_too_many_entries_and_a_file_that_is_no_zip_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "pkg.zip", {f"f{i}.py": b"" for i in range(20)})
    with pytest.raises(ArchiveError, match="20 entries"):
        extract_zip(archive, tmp_path / "out", max_entries=10)
    not_zip = tmp_path / "pkg.zip"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="not a readable .zip"):
        extract_zip(not_zip, tmp_path / "out")
    assert _nothing_left(tmp_path)
