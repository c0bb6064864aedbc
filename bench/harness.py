"""Servers under test as subprocesses (own GIL, own CPU), their templates, their memory.

Every server prints its URL as the first line of stdout, binds 127.0.0.1 only, and is
stopped with SIGINT (then waited for, then killed if it hangs).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_LIVE: set["ServerProcess"] = set()  # stopped by stop_all() even if a benchmark fails midway


def emulator_command() -> list[str]:
    script = Path(sys.executable).parent / "emulator"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "emulator.cli"]


def stage_installed_tree(source: Path, scratch: Path) -> Path:
    """Lay out the package tree of checkout `source` as `pip install` would, under `scratch`.

    A checkout is not importable as it stands: its pyproject.toml maps the top-level
    runtimes/ and sources/ folders to emulator.runtimes and emulator.sources, so a checkout
    on PYTHONPATH finds `emulator` but not `emulator.sources` (and the editable install's
    finder might then supply the current tree's). setuptools' build_py applies the mapping,
    whatever the checkout's layout: an older, flat one (emulator/, runtimes/, sources/ as
    top-level packages) comes out flat, as it installed then. Returns the folder to put
    first on PYTHONPATH. The egg-info and build folders go to `scratch` too, so the
    checkout is left untouched.
    """
    lib = scratch / "lib"
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import setuptools; setuptools.setup()", "-q",
         "egg_info", f"--egg-base={scratch}", "build", f"--build-base={scratch / 'build'}",
         "build_py", f"--build-lib={lib}"],
        cwd=source, stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0 or not (lib / "emulator" / "__init__.py").is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"could not build the package tree of {source} (exit {result.returncode}):\n{tail}")
    # The servers must run this tree and nothing of the installed one: check where the CLI
    # they start comes from, with the environment they will have.
    probe = subprocess.run(
        [sys.executable, "-c", "import emulator.cli; print(emulator.cli.__file__)"],
        cwd=scratch, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(lib), os.environ.get("PYTHONPATH"))))},
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )
    if probe.returncode != 0 or not Path(probe.stdout.strip()).is_relative_to(lib):
        raise RuntimeError(f"the built tree of {source} does not take precedence: {(probe.stdout + probe.stderr).strip()[-500:]}")
    return lib


class ServerProcess:
    """A server subprocess that prints its URL on stdout; a context manager."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env  # extra environment variables (EMULATOR_* settings an older checkout ignores)
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0
        self._stderr_path = workdir / f"{name}.stderr"

    def __enter__(self) -> "ServerProcess":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} is already running (pid {self.proc.pid})")
        with open(self._stderr_path, "wb") as stderr:
            # Own session: a Ctrl-C on the bench does not reach it twice; we stop it ourselves.
            # Run in the scratch folder: `python -m` puts the working directory first on
            # sys.path, and a checkout there would shadow `--emulator-src`.
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.workdir, env={**os.environ, **self.env} if self.env else None,
            )
        _LIVE.add(self)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.stderr_tail()}")
        self.url = line
        parts = urlsplit(line)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"  [{self.name}] did not stop within {STOP_TIMEOUT_S:.0f} s of SIGINT: killed", file=sys.stderr)
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None
        _LIVE.discard(self)
        return proc.returncode


def start_answering(server: ServerProcess, probe: Callable[[str], Any], timeout_s: float) -> ServerProcess:
    """Start `server`, then call probe(url) until it answers (OSError or RuntimeError mean "not
    yet"): a server may print its URL before it serves. Stopped if it never answers in time."""
    server.start()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe(server.url)
            return server
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.05)


def stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def start_emulator(workdir: Path, template: Path, *extra: str, name: str = "emulator",
                   env: dict[str, str] | None = None) -> ServerProcess:
    argv = emulator_command() + [
        "up", "--port", "0", "--backend", "none", "--log-invocations", "false",
        "--shutdown-timeout", "5", "--watch-code", "false", "--template", str(template), *extra,
    ]  # fmt: skip
    server = ServerProcess(name, argv, workdir, env)
    server.start()
    return server


def start_echo_baseline(workdir: Path) -> ServerProcess:
    server = ServerProcess("echo-baseline", [sys.executable, str(BENCH_DIR / "echo_server.py")], workdir)
    server.start()
    return server


# -- templates -----------------------------------------------------------------------------
@dataclass
class FunctionDef:
    name: str
    source: str
    timeout_s: int = 30
    memory_mb: int = 128


@dataclass
class TemplateBuilder:
    """A JSON SAM template; functions with the same source share one code folder."""

    workdir: Path
    functions: list[FunctionDef] = field(default_factory=list)

    def add(self, name: str, source: str, timeout_s: int = 30, memory_mb: int = 128) -> "TemplateBuilder":
        self.functions.append(FunctionDef(name, source, timeout_s, memory_mb))
        return self

    def write(self, filename: str = "template.json") -> Path:
        folders: dict[str, Path] = {}
        resources = {}
        for index, fn in enumerate(self.functions):
            folder = folders.get(fn.source)
            if folder is None:
                folder = folders[fn.source] = self.workdir / f"code{len(folders)}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "app.py").write_text(textwrap.dedent(fn.source))
            resources[f"Fn{index}"] = {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "FunctionName": fn.name,
                    "CodeUri": str(folder),
                    "Handler": "app.handler",
                    "Runtime": "python3.11",
                    "MemorySize": fn.memory_mb,
                    "Timeout": fn.timeout_s,
                },
            }
        path = self.workdir / filename
        path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, indent=1))
        return path


NOOP_SOURCE = """\
def handler(event, context):
    return event
"""
SLEEP_SOURCE = """\
import time

def handler(event, context):
    time.sleep(float(event.get("sleep", 1.0)))
    return {}
"""


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"lambda-bench-{prefix}-")


# -- processes and memory ------------------------------------------------------------------
def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for child in children(stack.pop()):
            found.append(child)
            stack.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def template_processes(emulator_pid: int) -> list[int]:
    return [pid for pid in children(emulator_pid) if "_lambda_emulator_runtime.forkserver" in cmdline(pid)]


def environment_processes(emulator_pid: int) -> list[int]:
    return [env for template in template_processes(emulator_pid) for env in children(template)]


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def smaps_rollup(pid: int) -> dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[key] = int(parts[0])
    except OSError:
        pass
    return values


def uss_kb(pid: int) -> int:
    rollup = smaps_rollup(pid)
    return rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)


def raise_open_files_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (children inherit it); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


class RssSampler:
    """Samples the summed RSS of a process tree on a thread; `peak_kb` is the largest sum.

    RSS counts pages shared between forked environments once per process, so the sum
    overstates real use; PSS (see smaps_rollup) is the fair total, too slow to sample often.
    """

    def __init__(self, root_pid: int, interval_s: float = 0.25) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.peak_kb = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = [self.root_pid, *descendants(self.root_pid)]
            total = sum(rss_kb(pid) for pid in pids)
            if total > self.peak_kb:
                self.peak_kb = total
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]  # total, idle + iowait


def idle_fraction(over_s: float = 1.0) -> float:
    """Share of the machine's CPU time that was idle over the next `over_s` seconds."""
    total0, idle0 = _cpu_times()
    time.sleep(over_s)
    total1, idle1 = _cpu_times()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(max_wait_s: float, idle_needed: float = 0.9) -> float:
    """The machine is shared: wait (at most `max_wait_s`) until it is mostly idle. Returns
    the last idle fraction measured, so a noisy figure can be recognised as such."""
    deadline = time.monotonic() + max_wait_s
    idle = idle_fraction()
    while idle < idle_needed and time.monotonic() < deadline:
        idle = idle_fraction()
    return idle
