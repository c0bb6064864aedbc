"""The `emulator` command as a user runs it, and process hygiene: after SIGTERM (clean
shutdown) or SIGKILL (the control plane dies) no template, environment or process a
handler started may stay behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig

from execution_testkit import LOCAL_EXECUTIONS
from core_testkit import GATED_HANDLER_SOURCE, Gate, ProcessId, descendants, is_template, wait_until
from host_testkit import emulator_command, read_url, stop

pytestmark = pytest.mark.scenario

START_WAIT_S = 60.0
EXIT_WAIT_S = 30.0

# Handlers wait at the test's gate (core_testkit.Gate) when the event names one, so "several
# environments at once" and "in flight during the signal" hold however loaded the machine is.
HANDLER = GATED_HANDLER_SOURCE + """
import os, subprocess
def handler(event, context):
    child = None
    if event.get("echo"):
        subprocess.run(["echo", event["echo"]], check=True)  # output below sys.stdout
    if event.get("spawn"):
        child = subprocess.Popen(["sleep", "120"]).pid
    wait_at_gate(event, context)
    return {"message": f"Hello, {event.get('name', 'world')}!", "pid": os.getpid(), "ppid": os.getppid(), "child": child}
"""


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        emulator_command() + list(args), cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


# Starts what a process group does not hold: a grandchild behind a shell, a child in a new
# session and a double-forked daemon (orphaned at once, while its environment lives on).
ORPHAN_MAKER = GATED_HANDLER_SOURCE + """
import os, subprocess

def daemon():
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.execvp("sleep", ["sleep", "300"])
        os._exit(0)
    os.close(w)
    os.waitpid(middle, 0)
    pid = int(os.read(r, 32))
    os.close(r)
    return pid

def handler(event, context):
    shell = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE)
    grandchild = int(shell.stdout.readline())
    new_session = subprocess.Popen(["sleep", "300"], start_new_session=True).pid
    started = [shell.pid, grandchild, new_session, daemon()]
    wait_at_gate(event, context)
    return {"pid": os.getpid(), "ppid": os.getppid(), "started": started}
"""


def write_app(folder: Path, timeout: int = 10, source: str = HANDLER) -> Path:
    (folder / "src").mkdir(exist_ok=True)
    (folder / "src" / "app.py").write_text(source)
    template = folder / "template.yaml"
    template.write_text(
        textwrap.dedent(
            f"""\
            Resources:
              Hello:
                Type: AWS::Serverless::Function
                Properties:
                  FunctionName: hello
                  CodeUri: src/
                  Handler: app.handler
                  Runtime: python3.11
                  Timeout: {timeout}
            """
        )
    )
    return template


@contextmanager
def emulator_up(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """`emulator up` in `folder` as a child process: (process, URL, stderr log)."""
    stderr_path = folder / "emulator.stderr"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            emulator_command() + ["up", "--backend", "none", *args], cwd=folder, env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        url = read_url(proc, START_WAIT_S)
        assert url.startswith("http://127.0.0.1:"), f"first stdout line is not the URL: {url!r}; {stderr_path.read_text()}"
        yield proc, url, stderr_path
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",
        config=BotoConfig(retries={"max_attempts": 1}, max_pool_connections=8),
    )


def invoke_concurrently(url: str, events: list[dict]) -> list[dict]:
    client = lambda_client(url)
    try:
        def one(event: dict) -> dict:
            response = client.invoke(FunctionName="hello", Payload=json.dumps(event))
            assert "FunctionError" not in response
            return json.loads(response["Payload"].read())

        with ThreadPoolExecutor(len(events)) as pool:
            return list(pool.map(one, events))
    finally:
        client.close()


def invoke_at_once(url: str, gate: Gate, events: list[dict]) -> list[dict]:
    """Invoke every event concurrently, each held at `gate` until all of them have arrived
    there (so each has its own environment), then open it and return the results."""
    with ThreadPoolExecutor(1) as pool:
        calls = pool.submit(invoke_concurrently, url, [{**event, "gate": gate.path} for event in events])
        try:
            assert wait_until(lambda: gate.arrived() == len(events) or calls.done(), START_WAIT_S)
            assert gate.arrived() == len(events), f"{gate.arrived()} of {len(events)} invocations ran at once"
        finally:
            gate.open()
        return calls.result(EXIT_WAIT_S)


def processes_below(pid: int, results: list[dict]) -> tuple[list[ProcessId], list[ProcessId]]:
    """(templates, everything) below the emulator, checked against what the handlers reported."""
    below = descendants(pid)
    templates = [p for p in below if is_template(p.pid) and any(p.pid == r["ppid"] for r in results)]
    pids = {p.pid for p in below}
    assert {r["pid"] for r in results} <= pids, "an environment is not below the emulator"
    assert {r["ppid"] for r in results} <= pids
    return templates, below


# -- help and usage errors -------------------------------------------------------------------------
def test_help_lists_commands_and_options(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0 and "up" in top.stdout and "invoke" in top.stdout
    up = run_cli("up", "--help", cwd=tmp_path)
    assert up.returncode == 0
    for option in ("--template", "--port", "--host", "--keep-alive", "--backend", "--time-scale", "EMULATOR_"):
        assert option in up.stdout, option
    invoke = run_cli("invoke", "--help", cwd=tmp_path)
    assert invoke.returncode == 0 and "--endpoint" in invoke.stdout and "--payload" in invoke.stdout


def test_bad_port_is_a_usage_error_naming_the_flag_or_variable(tmp_path: Path) -> None:
    flag = run_cli("up", "--port", "notanumber", "--backend", "none", cwd=tmp_path)
    assert flag.returncode == 2
    assert "--port" in flag.stderr and "notanumber" in flag.stderr and "Traceback" not in flag.stderr
    variable = run_cli("up", "--backend", "none", cwd=tmp_path, env={"EMULATOR_PORT": "99999"})
    assert variable.returncode == 2
    assert "EMULATOR_PORT" in variable.stderr and "Traceback" not in variable.stderr


def test_invalid_template_fails_fast_naming_resource_and_property(tmp_path: Path) -> None:
    template = write_app(tmp_path, timeout=5000)
    result = run_cli("up", "--template", str(template), "--port", "0", "--backend", "none", cwd=tmp_path)
    assert result.returncode != 0
    assert "Hello" in result.stderr and "Timeout" in result.stderr and "5000" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    missing = run_cli("up", "--template", str(tmp_path / "nope.yaml"), "--port", "0", "--backend", "none", cwd=tmp_path)
    assert missing.returncode != 0 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr


def test_invoke_reports_an_unreachable_emulator_and_bad_payloads(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens once the socket closes
    unreachable = run_cli("invoke", "hello", "--endpoint", f"http://127.0.0.1:{closed_port}", cwd=tmp_path)
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr and "Traceback" not in unreachable.stderr
    bad = run_cli("invoke", "hello", "--endpoint", f"http://127.0.0.1:{closed_port}", "--payload", "{oops", cwd=tmp_path)
    assert bad.returncode == 2 and "--payload" in bad.stderr


# -- a running emulator --------------------------------------------------------------------------------
def test_sigterm_shuts_down_cleanly_and_leaves_no_process_behind(tmp_path: Path) -> None:
    write_app(tmp_path)
    # Port from the environment (EMULATOR_PORT=0), template found in the working folder.
    with emulator_up(tmp_path, env={"EMULATOR_PORT": "0"}) as (proc, url, stderr_path):
        cli = run_cli("invoke", "hello", "--endpoint", url, "--payload", '{"name": "x"}', cwd=tmp_path)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["message"] == "Hello, x!"
        assert "START RequestId:" in cli.stderr and "REPORT RequestId:" in cli.stderr  # the log tail
        invoke_concurrently(url, [{"echo": "subprocess-output-marker"}])
        missing = run_cli("invoke", "ghost", "--endpoint", url, cwd=tmp_path)
        assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr

        results = invoke_at_once(url, Gate(tmp_path / "three"), [{"spawn": True}] * 3)
        assert len({r["pid"] for r in results}) == 3, "expected three environments at once"
        templates, everything = processes_below(proc.pid, results)
        assert len(templates) == 1
        children = [ProcessId.of(r["child"]) for r in results]
        tracked = everything + children
        assert all(p.alive for p in tracked)

        # An invocation in flight when SIGTERM arrives is drained, not cut off: it is held at
        # the gate until the emulator has begun shutting down.
        gate = Gate(tmp_path / "drained")
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(invoke_concurrently, url, [{"name": "drained", "gate": gate.path}])
            try:
                assert wait_until(lambda: gate.arrived() == 1 or in_flight.done()), "the invocation never started"
                assert not in_flight.done(), in_flight.result()
                proc.send_signal(signal.SIGTERM)
                assert wait_until(lambda: "Shutting down" in stderr_path.read_text(), EXIT_WAIT_S)
            finally:
                gate.open()
            assert in_flight.result(EXIT_WAIT_S)[0]["message"] == "Hello, drained!"
        assert proc.wait(EXIT_WAIT_S) == 0
        assert wait_until(lambda: not any(p.alive for p in tracked)), [p for p in tracked if p.alive]
        log = stderr_path.read_text()
        assert "Shutting down" in log and "Traceback" not in log
        assert proc.stdout is not None and proc.stdout.read() == ""  # stdout carries only the URL
        assert "subprocess-output-marker" in log


def test_sigkill_of_the_emulator_takes_its_template_and_environments_down(tmp_path: Path) -> None:
    write_app(tmp_path)
    with emulator_up(tmp_path, "--port", "0") as (proc, url, _):
        results = invoke_at_once(url, Gate(tmp_path / "gate"), [{}] * 2)
        templates, everything = processes_below(proc.pid, results)
        assert len(templates) == 1 and len({r["pid"] for r in results}) == 2 and len(everything) >= 3
        proc.kill()
        assert proc.wait(EXIT_WAIT_S) == -signal.SIGKILL
        assert wait_until(lambda: not any(p.alive for p in everything)), [p for p in everything if p.alive]


# -- nothing a handler started survives the emulator --------------------------------------------------
def own_memory_cgroup() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    return None


def groups_of(template: int) -> list[Path]:
    """Memory cgroups of a fork server, wherever this or an earlier version put them."""
    own = own_memory_cgroup()
    places = {own, Path("/sys/fs/cgroup/memory")} - {None}
    return [place / f"lambda-emulator-{template}" for place in places if (place / f"lambda-emulator-{template}").exists()]  # type: ignore[operator]


def start_orphans(url: str, gate: Gate) -> tuple[list[ProcessId], int]:
    """Two environments at once, each starting a grandchild, a new-session child and a daemon:
    (every process involved, the fork server's PID)."""
    results = invoke_at_once(url, gate, [{}] * 2)
    assert len({r["pid"] for r in results}) == 2, "expected two environments"
    templates = {r["ppid"] for r in results}
    assert len(templates) == 1 and all(is_template(t) for t in templates)
    processes = [ProcessId.of(pid) for r in results for pid in [r["pid"], *r["started"]]]
    processes.append(ProcessId.of(next(iter(templates))))
    assert all(p.alive for p in processes)
    return processes, next(iter(templates))


@pytest.mark.parametrize("execution", LOCAL_EXECUTIONS)  # a runtime interface client's processes too
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_nothing_a_handler_started_survives_the_emulator(tmp_path: Path, sig: signal.Signals, execution: str) -> None:
    write_app(tmp_path, source=ORPHAN_MAKER)
    with emulator_up(tmp_path, "--port", "0", "--execution", execution) as (proc, url, stderr_path):
        processes, template = start_orphans(url, Gate(tmp_path / "gate"))
        proc.send_signal(sig)
        proc.wait(EXIT_WAIT_S)
    assert wait_until(lambda: not any(p.alive for p in processes)), [p for p in processes if p.alive]
    assert wait_until(lambda: not groups_of(template)), groups_of(template)
    if sig == signal.SIGINT:
        assert "Traceback" not in stderr_path.read_text()
    # The next start finds nothing of ours left behind either.
    with emulator_up(tmp_path, "--port", "0") as (_, url, _):
        assert invoke_concurrently(url, [{}])[0]["pid"]
        assert not groups_of(template)


def test_what_a_killed_fork_server_left_is_swept_at_the_next_start(tmp_path: Path) -> None:
    """SIGKILL of the fork server itself (the OOM killer, `kill -9` of every process) skips all
    of its clean-up: the environments die with it, but what they started lives on in their
    cgroups until the next emulator starts."""
    if os.geteuid() != 0:
        pytest.skip("needs memory cgroups (root on a cgroup v1 host)")
    write_app(tmp_path, source=ORPHAN_MAKER)
    with emulator_up(tmp_path, "--port", "0") as (proc, url, _):
        processes, template = start_orphans(url, Gate(tmp_path / "gate"))
        if not groups_of(template):
            pytest.skip("no memory cgroups on this host")
        os.kill(template, signal.SIGKILL)
        proc.kill()
        proc.wait(EXIT_WAIT_S)
    daemons = [p for p in processes if p.alive]
    assert daemons, "expected the new-session children and daemons to outlive a SIGKILLed fork server"
    assert groups_of(template)
    with emulator_up(tmp_path, "--port", "0") as (_, url, stderr_path):
        # Swept while the emulator started, before it served anything.
        assert not groups_of(template), groups_of(template)
        assert not any(p.alive for p in daemons), [p for p in daemons if p.alive]
        assert "left by an emulator that no longer runs" in stderr_path.read_text()
