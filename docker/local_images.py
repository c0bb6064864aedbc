"""Build the images the container backend's tests, benchmarks and the Compose file use,
on a machine where no image registry can be reached.

Nothing is pulled: the base image is a root filesystem made of this machine's own Python
(the interpreter, its standard library and the shared libraries they load, plus /bin/sh),
imported as an image (`docker import`); the runtime image adds AWS's Python runtime
interface client (awslambdaric, installed from PyPI by the host's pip) laid out like AWS's
base images (https://docs.aws.amazon.com/lambda/latest/dg/python-image.html): code in
/var/task, the runtime in /var/runtime, ENTRYPOINT /lambda-entrypoint.sh, the handler as CMD.

Images are tagged with a hash of what went into them, so a second run finds them built
(a few seconds the first time; nothing after). Usage:

    python docker/local_images.py                 # build (or find) both; print their tags
    python docker/local_images.py --docker-host unix:///path/to/other.sock
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path
from typing import Any

BASE_REPOSITORY = "lambda-emulator-local/python-base"
RUNTIME_REPOSITORY = "lambda-emulator-local/python-runtime"
AWSLAMBDARIC = "awslambdaric==4.2.2"
# Standard-library parts no handler or the emulator needs: left out to keep the image small.
_STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "__pycache__"}
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")
ENTRYPOINT_SCRIPT = """#!/bin/sh
# As AWS's base images: the handler is the argument (CMD); AWS_LAMBDA_RUNTIME_API names the API.
exec /usr/local/bin/python3 -m awslambdaric "$@"
"""


def system_library_dir() -> str:
    """Where this machine's libc is (lib/x86_64-linux-gnu on Debian for x86-64), relative to /."""
    for lib in _shared_libraries([Path(sys.executable)]):
        if lib.name.startswith("libc.so"):
            return str(lib.parent).lstrip("/")
    return "lib"


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _shared_libraries(paths: list[Path]) -> set[Path]:
    """Every shared library the given executables and extension modules load (ldd)."""
    found: set[Path] = set()
    for path in paths:
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
        for line in result.stdout.splitlines():
            match = _LDD_LINE.search(line)
            if match:
                found.add(Path(match.group(1)))
    return found


def _copy_libraries(binaries: list[Path], folder: Path) -> None:
    """The system libraries compiled packages load (libgcc_s, libstdc++ ...) into `folder`."""
    folder.mkdir(exist_ok=True)
    for lib in _shared_libraries(binaries):
        if lib.exists() and not lib.name.startswith(("libc.so", "libm.so", "ld-linux", "libpython")) and "site-packages" not in str(lib):
            shutil.copy2(lib.resolve(), folder / lib.name)


def _add(tar: tarfile.TarFile, source: Path, target: str) -> None:
    tar.add(str(source.resolve()), arcname=target, recursive=False)


def base_rootfs(out: io.BufferedWriter) -> None:
    """A tar of the root filesystem: this Python at /usr/local, /bin/sh, their libraries."""
    prefix = Path(sys.base_prefix)
    version = python_version()
    executable = prefix / "bin" / f"python{version}"
    stdlib = Path(sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})["stdlib"])
    extensions = sorted((stdlib / "lib-dynload").glob("*.so"))
    libpython = [path for path in (prefix / "lib").glob("libpython*.so*")]
    sh = Path(shutil.which("dash") or shutil.which("sh") or "/bin/sh")
    libraries = _shared_libraries([executable, sh, *extensions])
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for folder in ("tmp", "var/task", "var/runtime", "opt", "etc", "usr/local/bin", "usr/local/lib", "bin"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        _add(tar, executable, f"usr/local/bin/python{version}")
        for name in ("python3", "python"):
            link = tarfile.TarInfo(f"usr/local/bin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, f"python{version}"
            tar.addfile(link)
        _add(tar, sh, "bin/sh")
        # Beside libc, where the dynamic loader looks without LD_LIBRARY_PATH (which the fork
        # server's environment does not carry) and without an ld.so.cache.
        for lib in libpython:
            _add(tar, lib, f"{system_library_dir()}/{lib.name}")
        for lib in sorted(libraries):
            if lib.name.startswith("libpython"):
                continue
            _add(tar, lib, str(lib).lstrip("/"))
        for path in sorted(stdlib.rglob("*")):
            relative = path.relative_to(stdlib)
            if relative.parts and relative.parts[0] in _STDLIB_SKIP or "__pycache__" in relative.parts:
                continue
            if path.is_dir() or path.is_file():
                _add(tar, path, f"usr/local/lib/python{version}/{relative}")
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def _fingerprint(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def _exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_base(client: Any) -> str:
    tag = f"{BASE_REPOSITORY}:{python_version()}-{_fingerprint(sys.version, sys.base_prefix)}"
    if _exists(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="lambda-emulator-rootfs-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        with open(tar_path, "wb") as out:
            base_rootfs(out)  # type: ignore[arg-type]
        repository, _, version = tag.partition(":")
        with open(tar_path, "rb") as data:
            client.api.import_image_from_data(
                data.read(), repository=repository, tag=version,
                changes=['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'ENV LANG=C.UTF-8', 'ENV LD_LIBRARY_PATH=/usr/local/lib', 'CMD ["/usr/local/bin/python3"]'],
            )
    return tag


def build_runtime(client: Any, base: str) -> str:
    """AWS's Python base image layout on top of `base`, with awslambdaric from PyPI."""
    tag = f"{RUNTIME_REPOSITORY}:{python_version()}-{_fingerprint(base, AWSLAMBDARIC, ENTRYPOINT_SCRIPT)}"
    if _exists(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="lambda-emulator-runtime-") as tmp:
        context = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", str(context / "runtime"),
                        AWSLAMBDARIC], check=True)
        # The runtime client's native extension needs libraries Python alone does not (libstdc++ ...).
        _copy_libraries(sorted((context / "runtime").rglob("*.so")), context / "libs")
        (context / "lambda-entrypoint.sh").write_text(ENTRYPOINT_SCRIPT)
        os.chmod(context / "lambda-entrypoint.sh", 0o755)
        (context / "Dockerfile").write_text(
            f"FROM {base}\n"
            "COPY runtime/ /var/runtime/\n"
            f"COPY libs/ /{system_library_dir()}/\n"
            "COPY lambda-entrypoint.sh /lambda-entrypoint.sh\n"
            "ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime PYTHONPATH=/var/runtime\n"
            "WORKDIR /var/task\n"
            'ENTRYPOINT ["/lambda-entrypoint.sh"]\n'
        )
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag


EMULATOR_BASE_REPOSITORY = "lambda-emulator-local/emulator-base"
# What of the running environment's site-packages stays out of the emulator's base image: the
# editable install of the checkout itself (the Dockerfile installs the emulator).
_SITE_SKIP = ("__editable__", "lambda_scale_emulator", "__pycache__", "setuptools", "_distutils_hack", "distutils-precedence")
# The build backend the Dockerfile's offline `pip install` needs (bdist_wheel is built in since 70.1).
BUILD_BACKEND = "setuptools>=70.1"


def build_emulator_base(client: Any, base: str) -> str:
    """`base` plus the packages of the Python running this script (the emulator's
    dependencies, pip and setuptools): the Dockerfile then installs the emulator offline
    (PIP_ARGS="--no-deps --no-build-isolation --no-index")."""
    site = Path(sysconfig.get_paths()["purelib"])
    names = sorted(path.name for path in site.iterdir() if not path.name.startswith(_SITE_SKIP))
    tag = f"{EMULATOR_BASE_REPOSITORY}:{python_version()}-{_fingerprint(base, names, BUILD_BACKEND)}"
    if _exists(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="lambda-emulator-emulator-base-") as tmp:
        context = Path(tmp)
        target = context / "site-packages"
        target.mkdir()
        for name in names:
            source = site / name
            if source.is_dir():
                shutil.copytree(source, target / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target / name)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", str(target), BUILD_BACKEND],
                       check=True)
        _copy_libraries(sorted(target.rglob("*.so*")), context / "libs")
        (context / "Dockerfile").write_text(
            f"FROM {base}\nCOPY site-packages/ /usr/local/lib/python{python_version()}/site-packages/\n"
            f"COPY libs/ /{system_library_dir()}/\n")
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag


NODE_RUNTIME_REPOSITORY = "lambda-emulator-local/nodejs-runtime"
NODE_ENTRYPOINT_SCRIPT = """#!/bin/sh
# As AWS's Node.js base images: the handler is the argument (CMD).
exec /usr/local/bin/node /var/runtime/node_modules/aws-lambda-ric/index.mjs "$@"
"""


def build_node_runtime(client: Any, base: str, node_modules: Path) -> str:
    """A Node.js runtime image on top of `base`: this machine's `node` and the given
    node_modules holding aws-lambda-ric (from the npm registry), in AWS's layout."""
    node = Path(shutil.which("node") or "/usr/bin/node").resolve()
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    tag = f"{NODE_RUNTIME_REPOSITORY}:{version.lstrip('v')}-{_fingerprint(base, version, sorted(p.name for p in node_modules.iterdir()), NODE_ENTRYPOINT_SCRIPT)}"
    if _exists(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="lambda-emulator-node-") as tmp:
        context = Path(tmp)
        shutil.copy2(node, context / "node")
        _copy_libraries([node], context / "libs")
        shutil.copytree(node_modules, context / "node_modules", symlinks=True)
        (context / "lambda-entrypoint.sh").write_text(NODE_ENTRYPOINT_SCRIPT)
        os.chmod(context / "lambda-entrypoint.sh", 0o755)
        (context / "Dockerfile").write_text(
            f"FROM {base}\n"
            "COPY node /usr/local/bin/node\n"
            f"COPY libs/ /{system_library_dir()}/\n"
            "COPY node_modules/ /var/runtime/node_modules/\n"
            "COPY lambda-entrypoint.sh /lambda-entrypoint.sh\n"
            "ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime\n"
            "WORKDIR /var/task\n"
            'ENTRYPOINT ["/lambda-entrypoint.sh"]\n'
        )
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag


def build_all(docker_host: str | None = None) -> tuple[str, str]:
    import docker

    client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    try:
        base = build_base(client)
        return base, build_runtime(client, base)
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docker-host", help="engine to build on (default: DOCKER_HOST, else the local socket)")
    parser.add_argument("--emulator-base", action="store_true",
                        help="also build the base for the emulator's own image (Dockerfile BASE_IMAGE) and print its tag")
    args = parser.parse_args()
    base, runtime = build_all(args.docker_host)
    print(f"base    {base}\nruntime {runtime}")
    if args.emulator_base:
        import docker

        client = docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
        try:
            print(f"emulator-base {build_emulator_base(client, base)}")
        finally:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
