"""Code folders as files: links are never followed out of or around the folder."""

from __future__ import annotations

import os
from pathlib import Path

from emulator.functions.code_tree import code_fingerprint, copy_code


def _folder(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "index.py").write_text("def handler(e, c):\n    return 1\n")
    (code / "pkg" / "mod.py").write_text("X = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not code")
    os.symlink(".", code / "self")  # a loop through the folder itself
    os.symlink("b", code / "a")  # a loop between two links
    os.symlink("a", code / "b")
    os.symlink(outside, code / "out")  # a folder outside
    os.symlink(outside / "secret.txt", code / "out.txt")  # a file outside
    os.symlink("missing", code / "dangling")
    os.symlink("index.py", code / "alias.py")  # a file inside: counts as that file
    os.symlink("pkg", code / "pkg_link")  # a folder inside: kept as a link, never descended
    return code


def test_fingerprint_skips_loops_and_outside_links_and_reports_each(tmp_path: Path) -> None:
    code = _folder(tmp_path)
    fingerprint = code_fingerprint(code)
    assert {link.path for link in fingerprint.skipped} == {"a", "b", "out", "out.txt", "dangling"}
    assert {link.reason for link in fingerprint.skipped if link.path in ("out", "out.txt")} == {"points outside the code folder"}
    index, mod = (code / "index.py").stat().st_size, (code / "pkg" / "mod.py").stat().st_size
    assert fingerprint.size == 2 * index + mod  # index.py, alias.py (its target), pkg/mod.py
    # Outside files are not part of the hash: changing them changes nothing.
    (tmp_path / "outside" / "secret.txt").write_text("changed, and longer than before")
    assert code_fingerprint(code).sha256 == fingerprint.sha256
    (code / "pkg" / "mod.py").write_text("X = 22\n")
    assert code_fingerprint(code).sha256 != fingerprint.sha256


def test_copy_keeps_the_code_and_leaves_out_what_is_not_the_folders(tmp_path: Path) -> None:
    code = _folder(tmp_path)
    snapshot = tmp_path / "snapshot"
    skipped = copy_code(code, snapshot).skipped
    assert {link.path for link in skipped} == {"a", "b", "out", "out.txt", "dangling"}
    assert sorted(os.listdir(snapshot)) == ["alias.py", "index.py", "pkg", "pkg_link", "self"]
    assert not (snapshot / "alias.py").is_symlink() and (snapshot / "alias.py").read_text() == (code / "index.py").read_text()
    # Links to folders inside stay links, relative, naming the snapshot's own folders.
    assert os.readlink(snapshot / "pkg_link") == "pkg" and (snapshot / "pkg_link" / "mod.py").read_text() == "X = 1\n"
    assert os.readlink(snapshot / "self") == "."
    assert code_fingerprint(snapshot).size == code_fingerprint(code).size


def test_a_fifo_in_the_code_folder_is_neither_read_nor_copied(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text("X = 1\n")
    os.mkfifo(code / "pipe")  # opening it to copy would wait for a writer forever
    snapshot = tmp_path / "snapshot"
    copy_code(code, snapshot)
    assert sorted(os.listdir(snapshot)) == ["index.py"]
    assert code_fingerprint(code).size == len("X = 1\n")


def test_the_copy_returns_the_snapshots_fingerprint_without_walking_it_again(tmp_path: Path) -> None:
    code = _folder(tmp_path)
    (code / ".venv" / "lib").mkdir(parents=True)  # copied (a virtualenv is code to run), not fingerprinted
    (code / ".venv" / "lib" / "dep.py").write_text("Y = 2\n")
    (code / "pkg" / "debug.log").write_text("not code\n")
    (code / "pkg" / "__pycache__").mkdir()
    (code / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0" * 10)
    os.symlink("pkg", code / "pkg_again")
    snapshot = tmp_path / "snapshot"
    copied = copy_code(code, snapshot)
    assert (snapshot / ".venv" / "lib" / "dep.py").exists() and not (snapshot / "pkg" / "__pycache__").exists()
    walked = code_fingerprint(snapshot)
    assert (copied.sha256, copied.size, copied.newest_mtime) == (walked.sha256, walked.size, walked.newest_mtime)
