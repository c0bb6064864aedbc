"""Helpers for the core tests: invoking with the log tail, looking at real processes in /proc,
finding real interpreters, and waiting with a bound (never a bare sleep).

Imported by tests/component and tests/scenario (pytest puts this folder on sys.path through
tests/conftest.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

# Upper bounds for waits that normally end in milliseconds; generous so a loaded CI box
# does not fail them, and never a measurement.
PROCESS_EXIT_WAIT_S = 10.0
POLL_INTERVAL_S = 0.02


def wait_until(predicate: Callable[[], Any], timeout_s: float = PROCESS_EXIT_WAIT_S, interval_s: float = POLL_INTERVAL_S) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or the bound passes (falsy)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


# -- barriers ---------------------------------------------------------------------------------
# Handler code that holds its invocation at a gate the test opens: it marks its arrival with a
# file, then waits (bounded) until the test creates the gate's "open" file. Exact concurrency
# counts are then independent of how fast or loaded the machine is: nothing finishes before
# the test says so.
GATED_HANDLER_SOURCE = """
import os, time
def wait_at_gate(event, context):
    gate = event.get("gate")
    if not gate:
        return
    open(os.path.join(gate, "in-" + context.aws_request_id), "w").close()
    deadline = time.monotonic() + event.get("gate_limit_s", 60)
    while not os.path.exists(os.path.join(gate, "open")) and time.monotonic() < deadline:
        time.sleep(0.002)
"""


# A handler whose state a warm environment keeps: a call counter in the module, and a marker
# file in /tmp (named by the event) holding the request ID of the call before.
WARM_STATE_SOURCE = """
import os
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    marker = os.path.join("/tmp", event["marker"])
    previous = open(marker).read() if os.path.exists(marker) else None
    with open(marker, "w") as f:
        f.write(context.aws_request_id)
    return {"count": COUNT, "pid": os.getpid(), "previous": previous}
"""

# A whole handler: it waits at the event's gate (if any), then answers {"ok": true}.
GATED_OK_SOURCE = GATED_HANDLER_SOURCE + """
def handler(event, context):
    wait_at_gate(event, context)
    return {"ok": True}
"""


class Gate:
    """A barrier in a folder: handlers check in and wait; the test counts them and opens it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    @property
    def path(self) -> str:
        return str(self.folder)

    def arrived(self) -> int:
        return sum(1 for name in os.listdir(self.folder) if name.startswith("in-"))

    def open(self) -> None:
        (self.folder / "open").touch()


# -- invoking ----------------------------------------------------------------------------------
@dataclass
class Call:
    status: int
    function_error: str | None
    body: bytes
    log: str
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def cold(self) -> bool:
        """Lambda writes Init Duration into REPORT only for the invocation that ran Init."""
        return "Init Duration:" in self.report_line

    @property
    def report_line(self) -> str:
        lines = [line for line in self.log.splitlines() if line.startswith("REPORT RequestId:")]
        assert len(lines) == 1, f"expected one REPORT line in the tail, got {self.log!r}"
        return lines[0]


def call(lambda_client: Any, name: str, payload: Any = None, **kwargs: Any) -> Call:
    """Invoke synchronously with LogType=Tail and decode everything the response carries."""
    response = lambda_client.invoke(
        FunctionName=name, Payload=json.dumps({} if payload is None else payload), LogType="Tail", **kwargs
    )
    metadata = response["ResponseMetadata"]
    return Call(
        status=response["StatusCode"],
        function_error=response.get("FunctionError"),
        body=response["Payload"].read(),
        log=base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace"),
        request_id=metadata["RequestId"],
        headers=dict(metadata["HTTPHeaders"]),
    )


def function_metrics(handle: Any, name: str) -> dict[str, Any]:
    return handle.metrics()["functions"].get(name, {"Invocations": 0, "ColdStarts": 0, "Errors": 0, "Timeouts": 0})


THROTTLED_BY_RESERVED_CONCURRENCY = (429, "TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded")
BURST_SETTLE_S = 30.0  # bound for a gated burst to settle: held ones at the gate, the rest answered


def invoke_outcome(lam: Any, function: str, payload: dict[str, Any], qualifier: str | None = None) -> Any:
    """200, or (status, error code, Reason) of a refused invoke."""
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    try:
        response = lam.invoke(FunctionName=function, Payload=json.dumps(payload), **kwargs)
        response["Payload"].read()
        return 200
    except ClientError as error:
        return (error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"], error.response.get("Reason"))


def call_many(lam: Any, functions: str | tuple[str, ...], count: int, gate: Gate, *, held: int,
              qualifier: str | None = None, settle_s: float = BURST_SETTLE_S) -> list:
    """`count` concurrent invokes of gated handlers (call i of `functions[i % len(functions)]`);
    once `held` of them wait at the gate and the rest have answered (throttles answer at once),
    the gate opens and every outcome (invoke_outcome) is returned, in call order."""
    names = (functions,) if isinstance(functions, str) else functions

    def one(i: int) -> Any:
        return invoke_outcome(lam, names[i % len(names)], {"gate": gate.path}, qualifier)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(one, i) for i in range(count)]
        # Bounded: if more (or fewer) are admitted than expected, the gate opens at the bound
        # and the caller's count assertions say what happened.
        wait_until(lambda: gate.arrived() >= held and sum(f.done() for f in futures) >= count - held, timeout_s=settle_s)
        gate.open()
        outcomes = [future.result() for future in futures]
    assert gate.arrived() == outcomes.count(200)
    return outcomes


# -- processes ---------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields after it are plain.
    return raw[raw.rindex(")") + 2 :].split()


@dataclass(frozen=True)
class ProcessId:
    """A PID plus its start time, so a recycled PID is never mistaken for the original."""

    pid: int
    start_ticks: str

    @classmethod
    def of(cls, pid: int) -> "ProcessId":
        fields = _stat_fields(pid)
        assert fields is not None, f"process {pid} does not exist"
        return cls(pid, fields[19])

    @property
    def alive(self) -> bool:
        """Running (a zombie has exited: only its parent's bookkeeping is left)."""
        fields = _stat_fields(self.pid)
        return fields is not None and fields[19] == self.start_ticks and fields[0] not in ("Z", "X")


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return children


def running(pid: int) -> ProcessId | None:
    """The process with this PID if it is running now (not gone, not a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return ProcessId(pid, fields[19])


def running_children(pid: int) -> list[int]:
    """Running environments forked by the fork server `pid`.

    Every environment starts its own session (os.setsid); the fork server's one spare child,
    kept ready for the next cold start, has not, so it is not counted.
    """
    return [child for child in child_pids(pid) if running(child) is not None and _session(child) == child]


def _session(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[3])


def descendants(pid: int) -> list[ProcessId]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    found: list[ProcessId] = []
    todo = [pid]
    while todo:
        for child in child_pids(todo.pop()):
            ident = running(child)
            if ident is not None:
                found.append(ident)
                todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_template(pid: int) -> bool:
    return "_lambda_emulator_runtime.forkserver" in cmdline(pid)


# -- interpreters ------------------------------------------------------------------------------
def _reports_version(python: str, minor: int, env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            env=env, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.split() == ["3", str(minor)]


def working_python(minor: int) -> tuple[str, dict[str, str]] | None:
    """(why, environment overrides) making `python3.<minor>` on PATH run that version, or None.

    pyenv shims are on PATH for every installed version but only run the versions the
    shell selected; PYENV_VERSION selects one (and the emulator passes it on).
    """
    found = shutil.which(f"python3.{minor}")
    if found is None:
        return None
    if _reports_version(found, minor, dict(os.environ)):
        return found, {}
    pyenv = shutil.which("pyenv")
    if pyenv is None or "shims" not in found:
        return None
    versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30).stdout.split()
    for version in versions:
        if version.startswith(f"3.{minor}."):
            env = {**os.environ, "PYENV_VERSION": version}
            if _reports_version(found, minor, env):
                return found, {"PYENV_VERSION": version}
    return None
