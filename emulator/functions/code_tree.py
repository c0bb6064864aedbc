"""A function's code folder as files: its fingerprint (CodeSha256, CodeSize) and its copy
(the snapshot PublishVersion takes).

Symbolic links are never followed out of or around the folder. A link to a file inside
the folder counts as that file; a link to a folder inside it is kept as a link (never
descended into, so a link to an ancestor cannot loop); a link that points outside the
folder, dangles or loops is skipped and reported, so the caller can warn once. Walking
is blocking I/O: callers run these functions off the event loop.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

# What the fingerprint ignores: caches, tooling and logs that change without the code
# changing (a handler's folder is often a project root with a virtualenv inside).
NOT_CODE_DIRS = frozenset({"__pycache__", ".git", ".emulator", ".venv", "venv", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".aws-sam"})
NOT_CODE_SUFFIXES = (".pyc", ".pyo", ".log", ".swp", "~")
# What a version snapshot leaves out (the rest is copied, a virtualenv included).
NOT_COPIED_DIRS = frozenset({"__pycache__", ".emulator", ".git"})


@dataclass(frozen=True)
class SkippedLink:
    path: str  # relative to the code folder
    target: str
    reason: str


@dataclass(frozen=True)
class CodeFingerprint:
    sha256: str
    size: int
    newest_mtime: float
    skipped: tuple[SkippedLink, ...] = ()


@dataclass(frozen=True)
class _Entry:
    relative: str
    kind: str  # "dir" | "file" | "dir-link"
    source: str  # the path to read (a file link: the file it names)
    stat: os.stat_result | None = None
    link: str = ""  # dir-link: its target, relative to the link's folder


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _scan(code_dir: Path, skip_dirs: frozenset[str], skip_suffixes: tuple[str, ...], skipped: list[SkippedLink]) -> Iterator[_Entry]:
    root = os.path.realpath(code_dir)
    pending = [""]
    while pending:
        relative_dir = pending.pop()
        folder = os.path.join(root, relative_dir)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            continue  # unreadable or gone: nothing of it is code we can load
        for entry in entries:
            relative = os.path.join(relative_dir, entry.name)
            try:
                if entry.is_symlink():
                    yield from _link(entry, relative, root, skip_dirs, skip_suffixes, skipped)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name not in skip_dirs:
                        yield _Entry(relative, "dir", entry.path)
                        pending.append(relative)
                elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(skip_suffixes):
                    yield _Entry(relative, "file", entry.path, entry.stat(follow_symlinks=False))
            except OSError:
                continue  # vanished while we looked


def _link(entry: os.DirEntry, relative: str, root: str, skip_dirs: frozenset[str], skip_suffixes: tuple[str, ...],
          skipped: list[SkippedLink]) -> Iterator[_Entry]:
    target = os.path.realpath(entry.path)
    try:
        info = os.stat(entry.path)
    except OSError:
        skipped.append(SkippedLink(relative, os.readlink(entry.path), "dangles or loops"))
        return
    if not _inside(target, root):
        skipped.append(SkippedLink(relative, target, "points outside the code folder"))
        return
    if stat.S_ISDIR(info.st_mode):
        if entry.name not in skip_dirs:
            yield _Entry(relative, "dir-link", entry.path, info, os.path.relpath(target, os.path.dirname(os.path.join(root, relative))))
    elif stat.S_ISREG(info.st_mode) and not entry.name.endswith(skip_suffixes):
        yield _Entry(relative, "file", target, info)


def code_fingerprint(code_dir: Path) -> CodeFingerprint:
    """sha256 over (path, size, mtime) of the code's files, their total size, the newest mtime."""
    digest = hashlib.sha256()
    size = 0
    newest = 0.0
    skipped: list[SkippedLink] = []
    for entry in _scan(code_dir, NOT_CODE_DIRS, NOT_CODE_SUFFIXES, skipped):
        if entry.kind == "file":
            assert entry.stat is not None
            size += entry.stat.st_size
            newest = max(newest, entry.stat.st_mtime)
            digest.update(f"{entry.relative}:{entry.stat.st_size}:{entry.stat.st_mtime_ns}\n".encode())
        elif entry.kind == "dir-link":
            digest.update(f"{entry.relative}->{entry.link}\n".encode())
    return CodeFingerprint(digest.hexdigest(), size, newest, tuple(skipped))


def copy_code(code_dir: Path, destination: Path) -> CodeFingerprint:
    """Copy the code folder to `destination` (which must not exist); returns the copy's
    fingerprint (what code_fingerprint(destination) gives, computed as it is written: no
    second walk) with the links left out."""
    skipped: list[SkippedLink] = []
    digest = hashlib.sha256()
    size = 0
    newest = 0.0
    destination.mkdir(parents=True)
    for entry in _scan(code_dir, NOT_COPIED_DIRS, (), skipped):
        target = destination / entry.relative
        counts = _is_code(entry)
        if entry.kind == "dir":
            target.mkdir(exist_ok=True)
        elif entry.kind == "dir-link":
            os.symlink(entry.link, target)  # relative: it names the snapshot's own folder
            if counts:
                digest.update(f"{entry.relative}->{entry.link}\n".encode())
        else:
            try:
                shutil.copy2(entry.source, target)
                copied = os.stat(target) if counts else None
            except OSError:
                continue  # vanished while we copied
            if copied is not None:  # the same walk order and fields as code_fingerprint's
                size += copied.st_size
                newest = max(newest, copied.st_mtime)
                digest.update(f"{entry.relative}:{copied.st_size}:{copied.st_mtime_ns}\n".encode())
    return CodeFingerprint(digest.hexdigest(), size, newest, tuple(skipped))


def _is_code(entry: _Entry) -> bool:
    """Whether code_fingerprint counts `entry` (it skips more than a copy does)."""
    parts = entry.relative.split(os.sep)
    if any(part in NOT_CODE_DIRS for part in parts[:-1]):
        return False
    if entry.kind == "dir-link":
        return parts[-1] not in NOT_CODE_DIRS
    return entry.kind == "file" and not parts[-1].endswith(NOT_CODE_SUFFIXES)
