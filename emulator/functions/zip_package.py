"""A .zip deployment package (CreateFunction / UpdateFunctionCode `ZipFile`), checked and
extracted safely.

Nothing in an archive may land outside the folder it is extracted into: absolute paths,
`..` components and links whose target leaves the folder are refused (a link is kept
only when it resolves inside). Sizes are held to Lambda's quotas
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): 250 MB
unzipped, counted from the bytes actually written, not from the archive's own claims (a
"zip bomb" that lies in its headers stops at the limit). Blocking I/O: callers run
`inspect_package` and `extract_package` off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emulator.functions.code_tree import NOT_COPIED_DIRS

# "250 MB" unzipped, the deployment package limit, in bytes as Lambda states it in its
# error ("Unzipped size must be smaller than 262144000 bytes"; the same figure is
# GetAccountSettings' CodeSizeUnzipped): the quotas page above.
MAX_UNZIPPED_BYTES = 262_144_000
# "50 MB (zipped, when uploaded through the Lambda API or SDKs)" (the quotas page). The
# request carries it base64-encoded in JSON, so Lambda's own request limit is 4/3 of it:
# "Request must be smaller than 69905067 bytes for the CreateFunction operation".
MAX_ZIPPED_BYTES = 52_428_800
MAX_UPLOAD_REQUEST_BYTES = 69_905_067
# Not an AWS figure (Lambda documents none): more entries than this is refused, so an
# archive of millions of empty files cannot exhaust the host's inodes.
MAX_ENTRIES = 100_000
# Lambda's wording for an archive it cannot read (users' error output; not in AWS's docs).
UNREADABLE = "Could not unzip uploaded file. Please check your file, then try to upload again."
_CHUNK = 1024 * 1024


class PackageError(ValueError):
    """The archive is refused; the message is Lambda's (or says what is wrong)."""


@dataclass(frozen=True)
class PackageInfo:
    """What Lambda reports of an uploaded package: CodeSha256 is the base64 SHA-256 of
    the archive's bytes, CodeSize its length (API_FunctionConfiguration)."""

    code_sha256: str
    code_size: int
    unzipped_size: int
    entries: int


@dataclass(frozen=True)
class ExtractedPackage:
    folder: Path
    skipped_links: tuple[str, ...]  # links left out: they pointed outside the folder


def package_digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _member_path(name: str) -> PurePosixPath:
    """The entry's path relative to the target, or PackageError if it would leave it."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part == ".." for part in path.parts) or (path.parts and ":" in path.parts[0]):
        raise PackageError(f"{UNREADABLE} (the entry {name!r} points outside the package)")
    return path


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)  # 3: made on Unix


def inspect_package(data: bytes, max_zipped: int = MAX_ZIPPED_BYTES) -> PackageInfo:
    """Check an archive without extracting it: readable, every path inside, within limits
    (`max_zipped`: 50 MB for an upload in the request; a package in S3 is held to the
    unzipped limit only, as on Lambda)."""
    if len(data) > max_zipped:
        raise PackageError(f"Zipped size must be smaller than {max_zipped} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError):
        raise PackageError(UNREADABLE) from None
    if len(members) > MAX_ENTRIES:
        raise PackageError(f"{UNREADABLE} (more than {MAX_ENTRIES} entries)")
    declared = 0
    for info in members:
        _member_path(info.filename)
        declared += info.file_size
    if declared > MAX_UNZIPPED_BYTES:
        raise PackageError(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
    return PackageInfo(package_digest(data), len(data), declared, len(members))


def extract_package(data: bytes, destination: Path) -> ExtractedPackage:
    """Extract into `destination` (which must not exist): first into a sibling folder,
    renamed into place when complete, so a failure leaves nothing half-written."""
    inspect_package(data, MAX_UNZIPPED_BYTES)
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        skipped = _extract_into(data, staging)
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExtractedPackage(destination, skipped)


def _extract_into(data: bytes, root: Path) -> tuple[str, ...]:
    written = 0
    skipped: list[str] = []
    links: list[tuple[PurePosixPath, str]] = []
    real_root = os.path.realpath(root)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                relative = _member_path(info.filename)
                if not relative.parts:
                    continue
                target = root.joinpath(*relative.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if _is_link(info):
                    links.append((relative, archive.read(info).decode("utf-8", "replace")))
                    continue
                written = _copy_member(archive, info, target, written)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, UnicodeDecodeError):
        raise PackageError(UNREADABLE) from None
    for relative, link_target in links:  # after the files, so a link's target can be checked
        where = root.joinpath(*relative.parts)
        resolved = os.path.realpath(os.path.join(os.path.dirname(where), link_target))
        if os.path.isabs(link_target) or not (resolved == real_root or resolved.startswith(real_root + os.sep)):
            skipped.append(str(relative))
            continue
        if not where.exists() and not where.is_symlink():
            os.symlink(link_target, where)
    return tuple(skipped)


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: int) -> int:
    # Lambda keeps the package's permission bits (an executable stays executable); every
    # file stays readable by its owner, whatever the archive says.
    mode = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
    with archive.open(info) as source, open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > MAX_UNZIPPED_BYTES:
                raise PackageError(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
            out.write(chunk)
    os.chmod(target, (mode or 0o644) | 0o600)
    return written


def zip_folder(folder: Path, destination: Path) -> Path:
    """A .zip of a code folder, as GetFunction's Code.Location serves it: what a version
    snapshot copies (emulator/functions/code_tree.py), links left out."""
    tmp = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in NOT_COPIED_DIRS and not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or name.endswith((".pyc", ".pyo")):
                    continue
                archive.write(path, os.path.relpath(path, folder))
    os.replace(tmp, destination)
    return destination
