"""Deployment packages made ready to run: a function's .zip unpacked into a folder, each layer
unpacked (or its folder copied: a layer version does not change once published), and, per
function, the folder its environments see as /opt: its layers merged in order, a later
layer's files replacing an earlier one's, as Lambda extracts them
(https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html).

Everything lands in one folder of the emulator's own, removed when it stops. Code and
layers together unpack to at most Lambda's 250 MB. Blocking I/O: run off the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from emulator.functions.archive import MAX_UNZIPPED_BYTES, ArchiveError, extract_zip
from emulator.functions.code_tree import SkippedLink, copy_code
from emulator.template.specs import AppSpec, FunctionSpec, LayerSpec

log = logging.getLogger("emulator.functions.packages")


class PackageError(ValueError):
    """A package cannot be used (a broken archive, over Lambda's size limit); says which and why."""


def prepare_packages(app: AppSpec, workdir: Path) -> AppSpec:
    """`app` with every .zip code unpacked and every function's layers in its `layers_dir`."""
    layers = {lid: _prepare_layer(layer, workdir / "layers") for lid, layer in app.layers.items()}
    unpacked: dict[Path, tuple[Path, int]] = {}  # a .zip several functions share is unpacked once
    merged: dict[tuple[str, ...], Path] = {}
    functions: dict[str, FunctionSpec] = {}
    for name, spec in app.functions.items():
        code_dir, code_size = spec.code_dir, 0
        if spec.code_dir.is_file():
            if spec.code_dir not in unpacked:
                target = workdir / "code" / f"{len(unpacked)}-{spec.code_dir.stem}"
                unpacked[spec.code_dir] = _unzip(spec.code_dir, target, f"function {name}")
            code_dir, code_size = unpacked[spec.code_dir]
        own = tuple(layers[layer.logical_id] for layer in spec.layers)
        total = code_size + sum(layer.size for layer in own)
        if total > MAX_UNZIPPED_BYTES:
            raise PackageError(f"function {name}: its code and layers unpack to {total} bytes; Lambda refuses "
                               f"that (unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes)")
        key = tuple(layer.logical_id for layer in own)
        if own and key not in merged:
            merged[key] = merge_layers(own, workdir / "opt")
        functions[name] = replace(spec, code_dir=code_dir, layers=own, layers_dir=merged.get(key))
    return replace(app, functions=functions, layers=layers)


def _unzip(archive: Path, target: Path, owner: str) -> tuple[Path, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = extract_zip(archive, target)
    except ArchiveError as err:
        raise PackageError(f"{owner}: {err}") from None
    except OSError as err:
        raise PackageError(f"{owner}: cannot unpack {archive}: {err.strerror or err}") from None
    _warn_skipped(owner, result.skipped)
    return result.folder, result.size


def _prepare_layer(layer: LayerSpec, folder: Path) -> LayerSpec:
    target = folder / f"{layer.name}-{layer.version}"
    owner = f"layer {layer.name}"
    if layer.content.is_file():
        content, size = _unzip(layer.content, target, owner)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _warn_skipped(owner, copy_code(layer.content, target).skipped)
        except OSError as err:
            raise PackageError(f"{owner}: cannot copy {layer.content}: {err.strerror or err}") from None
        content, size = target, _tree_size(target)
    if size > MAX_UNZIPPED_BYTES:
        raise PackageError(f"{owner}: unpacks to {size} bytes; Lambda refuses that (unzipped size must be "
                           f"smaller than {MAX_UNZIPPED_BYTES} bytes)")
    return replace(layer, content=content, size=size)


def merge_layers(layers: tuple[LayerSpec, ...], root: Path) -> Path:
    """The /opt of a function with these (prepared) layers, in a folder below `root`: one
    layer is its own; several are merged into a new folder, later ones winning. Files are hard
    links to the layers' copies (the emulator's own, never written to). Also for a function
    whose layers change while the emulator runs."""
    if len(layers) == 1:
        return layers[0].content
    target = root / hashlib.sha256("/".join(layer.arn for layer in layers).encode()).hexdigest()[:16]
    if target.is_dir():
        return target  # the same list merged before
    staging = root / f".{target.name}-{os.getpid()}"
    staging.mkdir(parents=True)
    for layer in layers:
        _overlay(layer.content, staging)
    os.replace(staging, target)
    return target


def _overlay(source: Path, target: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(source):  # links to folders are listed, not entered
        into = os.path.join(target, os.path.relpath(dirpath, source))
        for name in list(dirnames):
            path, destination = os.path.join(dirpath, name), os.path.join(into, name)
            if os.path.islink(path):
                dirnames.remove(name)
                _replace_with(destination, lambda: os.symlink(os.readlink(path), destination))
            elif not os.path.isdir(destination) or os.path.islink(destination):
                _replace_with(destination, lambda: os.mkdir(destination))
        for name in filenames:
            path, destination = os.path.join(dirpath, name), os.path.join(into, name)
            if os.path.islink(path):
                _replace_with(destination, lambda: os.symlink(os.readlink(path), destination))
            else:
                _replace_with(destination, lambda: _link_or_copy(path, destination))


def _replace_with(destination: str, make: Callable[[], None]) -> None:
    """What an earlier layer put at `destination` gives way to this layer's entry."""
    if os.path.isdir(destination) and not os.path.islink(destination):
        shutil.rmtree(destination)
    elif os.path.lexists(destination):
        os.unlink(destination)
    make()


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _tree_size(folder: Path) -> int:
    """Bytes of the regular files below `folder` (links are not counted twice)."""
    size = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            info = os.lstat(os.path.join(dirpath, name))
            if not os.path.islink(os.path.join(dirpath, name)):
                size += info.st_size
    return size


def _warn_skipped(owner: str, skipped: tuple[SkippedLink, ...]) -> None:
    for link in skipped:
        log.warning("%s: skipping the link %s in its package: it %s (-> %s)", owner, link.path, link.reason, link.target)
