"""Extract a .zip deployment package (function code or a layer) safely.

An archive is untrusted input: nothing it holds may land outside the target folder (no
absolute names, no `..`, no writing through a link), a link in it may point only inside
the package (a link that points out is left out and reported, as code folders' links are),
and what it unpacks to is counted as it is written, so a small archive that inflates to
gigabytes stops at the limit however its headers lie. Setuid, setgid and sticky bits are
dropped. The package appears in the target complete or not at all.

Lambda's own limit is on the unzipped size of the code and its layers together: 250 MB
(262,144,000 bytes), https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html.
Blocking I/O: callers run this off the event loop.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emulator.functions.code_tree import SkippedLink

# "250 MB" unzipped, as AWS counts it (its error says "Unzipped size must be smaller than
# 262144000 bytes"): the quotas page above.
MAX_UNZIPPED_BYTES = 262_144_000
# Not an AWS limit: a bound on the entries one archive may hold, so an archive of millions
# of empty files cannot exhaust inodes. Large layers (numpy, pandas) hold ~10,000.
MAX_ARCHIVE_ENTRIES = 100_000
_CHUNK = 1024 * 1024
_UNIX = 3  # ZipInfo.create_system of archives made on Unix: external_attr holds st_mode


class ArchiveError(ValueError):
    """The archive cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Extracted:
    folder: Path
    size: int  # bytes unpacked (regular files)
    skipped: tuple[SkippedLink, ...] = ()


def _mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) if info.create_system == _UNIX else 0


def _parts(name: str) -> list[str]:
    """The path components of an entry, refusing anything that would leave the target."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"entry {name!r} has an absolute path")
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"entry {name!r} climbs out of the package with '..'")
    return parts


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def extract_zip(archive: Path, target: Path, *, max_bytes: int = MAX_UNZIPPED_BYTES,
                max_entries: int = MAX_ARCHIVE_ENTRIES) -> Extracted:
    """Unpack `archive` into `target` (created; it must not exist). Raises ArchiveError."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        size, skipped = _extract_into(archive, staging, max_bytes, max_entries)
        os.chmod(staging, 0o755)  # mkdtemp made it private; environments may run as another user
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Extracted(target, size, tuple(skipped))


def _extract_into(archive: Path, root: Path, max_bytes: int, max_entries: int) -> tuple[int, list[SkippedLink]]:
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ArchiveError(f"{archive} is not a readable .zip archive ({err})") from None
    with bundle:
        entries = bundle.infolist()
        if len(entries) > max_entries:
            raise ArchiveError(f"{archive} holds {len(entries)} entries, more than the emulator unpacks "
                               f"({max_entries})")
        declared = sum(info.file_size for info in entries)
        if declared > max_bytes:
            raise _too_big(archive, declared, max_bytes)
        real_root = os.path.realpath(root)
        written, skipped = 0, []
        for info in entries:
            parts = _parts(info.filename)
            if not parts:
                continue
            destination = os.path.join(real_root, *parts)
            parent = os.path.realpath(os.path.dirname(destination))
            if not _inside(parent, real_root):  # through a link an earlier entry made
                raise ArchiveError(f"entry {info.filename!r} would be written outside the package")
            mode = _mode(info)
            if info.is_dir() or stat.S_ISDIR(mode):
                os.makedirs(destination, exist_ok=True)
            elif stat.S_ISLNK(mode):
                link = _link(bundle, info, destination, real_root)
                if link is not None:
                    skipped.append(link)
            elif stat.S_IFMT(mode) in (0, stat.S_IFREG):  # zipfile.writestr(name) stores no file type
                written += _write_file(bundle, info, destination, max_bytes - written, (archive, max_bytes))
                os.chmod(destination, (mode & 0o777) | 0o600 if mode else 0o644)
            # Devices, FIFOs and sockets have no place in a package: left out.
        return written, skipped


def _link(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, destination: str, root: str) -> SkippedLink | None:
    relative = os.path.relpath(destination, root)
    target = bundle.read(info).decode("utf-8", "replace")
    resolved = os.path.normpath(os.path.join(os.path.dirname(destination), target))
    if os.path.isabs(target) or not _inside(resolved, root):
        return SkippedLink(relative, target, "points outside the package")
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    if os.path.lexists(destination):
        os.unlink(destination)
    os.symlink(target, destination)
    return None


def _write_file(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, destination: str, room: int,
                source_and_limit: tuple[Path, int]) -> int:
    archive, limit = source_and_limit
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    if os.path.lexists(destination):
        if os.path.isdir(destination) and not os.path.islink(destination):
            raise ArchiveError(f"entry {info.filename!r} is both a folder and a file")
        os.unlink(destination)  # a repeated name: the later entry wins, as unzip -o does
    written = 0
    try:
        with bundle.open(info) as source, open(destination, "xb") as out:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > room:  # the headers understated it: a zip bomb
                    raise _too_big(archive, None, limit)
                out.write(chunk)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as err:  # corrupt, encrypted
        raise ArchiveError(f"{archive}: entry {info.filename!r} cannot be unpacked ({err})") from None
    return written


def _too_big(archive: Path, size: int | None, limit: int) -> ArchiveError:
    amount = f" ({size} bytes)" if size is not None else ""
    return ArchiveError(f"{archive} unpacks to more than Lambda allows{amount}: unzipped size must be smaller "
                        f"than {limit} bytes, code and layers together")
