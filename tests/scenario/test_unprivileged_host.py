"""The emulator as most users run it: not root, no memory cgroup it may create.

As root, the test runs `emulator up` as an ordinary user (created with useradd if needed);
run as an ordinary user, it runs the emulator as itself. Without cgroups MemorySize is held
by the resident-memory watchdog: out-of-memory is `Runtime.OutOfMemory` with the real Max
Memory Used, threads do not count against the cap, and every process a handler starts ends
with its environment and with the emulator.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig

from core_testkit import ProcessId, call, wait_until
from host_testkit import stop

pytestmark = pytest.mark.scenario

TEST_USER = "lambda-emu-test"
START_WAIT_S = 60.0
EXIT_WAIT_S = 30.0

HANDLERS = {
    "hungry": """
        import os, time
        def handler(event, context):
            block = bytearray(event["mb"] * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1  # touch every page so it is really resident
            time.sleep(event.get("hold", 0))
            return {"pid": os.getpid(), "uid": os.getuid()}
        """,
    "threads": """
        import threading
        def handler(event, context):
            done = threading.Event()
            threads = [threading.Thread(target=done.wait) for _ in range(event["threads"])]
            for thread in threads:
                thread.start()
            done.set()
            for thread in threads:
                thread.join()
            return len(threads)
        """,
    "orphans": """
        import json, os, subprocess, time
        def daemon():
            r, w = os.pipe()
            middle = os.fork()
            if middle == 0:
                os.setsid()
                if os.fork() == 0:
                    os.write(w, str(os.getpid()).encode())
                    time.sleep(300)
                    os._exit(0)
                os._exit(0)
            os.close(w)
            os.waitpid(middle, 0)
            pid = int(os.read(r, 32))
            os.close(r)
            return pid
        def handler(event, context):
            shell = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE)
            started = [os.getpid(), shell.pid, int(shell.stdout.readline()),
                       subprocess.Popen(["sleep", "300"], start_new_session=True).pid, daemon()]
            with open(event["record"] + ".tmp", "w") as f:
                json.dump(started, f)
            os.rename(event["record"] + ".tmp", event["record"])
            if event.get("hang"):  # until the test has seen the processes (a barrier it releases)
                for _ in range(1000):
                    if os.path.exists(event["record"] + ".go"):
                        break
                    time.sleep(0.01)
                time.sleep(10)
            return started
        """,
}


def _site_boot(python: str, user: str | None) -> list[str] | None:
    """A command that runs our CLI with `python` and this virtualenv's packages, if `user`
    can run it (a virtualenv made from an interpreter in a private home folder cannot be
    executed by another user; the same packages work with another CPython of this version)."""
    site = sysconfig.get_paths()["purelib"]
    boot = f"import site, sys; site.addsitedir({site!r}); from emulator.cli import main; sys.exit(main())"
    try:
        probe = subprocess.run(
            [python, "-c", f"import site; site.addsitedir({site!r}); import emulator.cli"],
            user=user, capture_output=True, timeout=60, cwd="/",
        )
    except OSError:  # not even executable for that user
        return None
    return [python, "-c", boot] if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def runner() -> tuple[str | None, list[str]]:
    """(user to run as, or None for ourselves; the command that runs `emulator`)."""
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            useradd = shutil.which("useradd")
            if useradd is None:
                pytest.skip("running as root without useradd: cannot create an unprivileged user to run the emulator")
            made = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER], capture_output=True, text=True)
            if made.returncode != 0:
                pytest.skip(f"cannot create the user {TEST_USER}: {made.stderr.strip()}")
        user = TEST_USER
    name = f"python3.{sys.version_info.minor}"
    places = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/bin", "/usr/bin"]
    found = [os.path.join(place, name) for place in places if os.access(os.path.join(place, name), os.X_OK)]
    for python in dict.fromkeys([sys.executable, *found]):
        command = _site_boot(python, user)
        if command is not None:
            return user, command
    pytest.skip(f"{user or 'this user'} cannot run this checkout (the virtualenv and the worktree must be readable)")


def write_app(folder: Path, handlers: dict[str, str]) -> Path:
    (folder / "records").mkdir()
    resources = {}
    for name, source in handlers.items():
        code = folder / name
        code.mkdir()
        (code / "index.py").write_text(textwrap.dedent(source))
        resources[name] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": str(code), "Handler": "index.handler", "Runtime": "python3.11", "MemorySize": 128, "Timeout": 3},
        }
    template = folder / "template.json"
    template.write_text(json.dumps({"Resources": resources}))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the emulator's user
    (folder / "records").chmod(0o777)  # where handlers write down what they started
    return template


@contextmanager
def emulator_as(runner: tuple[str | None, list[str]], *args: str) -> Iterator[tuple[subprocess.Popen, str, Path, Path]]:
    user, command = runner
    folder = Path(tempfile.mkdtemp(prefix="lambda-emulator-unprivileged-"))
    try:
        template = write_app(folder, HANDLERS)
        stderr_path = folder / "emulator.stderr"
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(
                command + ["up", "--template", str(template), "--port", "0", "--backend", "none", *args],
                cwd=folder, user=user, stdout=subprocess.PIPE, stderr=stderr, text=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8"},
            )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()  # the emulator prints its URL first (or exits)
            assert url.startswith("http://127.0.0.1:"), f"no URL: {url!r}; {stderr_path.read_text()}"
            yield proc, url, stderr_path, folder / "records"
        finally:
            stop(proc)
            if proc.stdout:
                proc.stdout.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        config=BotoConfig(retries={"max_attempts": 1}, read_timeout=60),
    )


@pytest.fixture(scope="module")
def emulator(runner: tuple[str | None, list[str]]) -> Iterator[tuple[Any, Path, Path]]:
    with emulator_as(runner) as (_, url, stderr_path, records):
        client = lambda_client(url)
        yield client, stderr_path, records
        client.close()


def report_field(log: str, field: str) -> int:
    report = [line for line in log.splitlines() if line.startswith("REPORT ")][-1]
    return int(report.split(f"{field}: ")[1].split()[0])


def started(record: Path) -> list[ProcessId]:
    return [ProcessId.of(pid) for pid in json.loads(record.read_text())]


def test_the_emulator_runs_unprivileged_with_the_memory_watchdog(emulator: tuple[Any, Path, Path]) -> None:
    lam, stderr_path, _ = emulator
    result = call(lam, "hungry", {"mb": 10})
    assert result.function_error is None
    if os.geteuid() == 0:
        assert result.payload["uid"] == pwd.getpwnam(TEST_USER).pw_uid
    assert "memory limits: resident-memory watchdog" in stderr_path.read_text()


def test_out_of_memory_is_reported_as_on_lambda_with_max_memory_used(emulator: tuple[Any, Path, Path]) -> None:
    lam, _, _ = emulator
    env = ProcessId.of(call(lam, "hungry", {"mb": 30}).payload["pid"])
    failed = call(lam, "hungry", {"mb": 400, "hold": 2})
    assert (failed.status, failed.function_error) == (200, "Unhandled")
    assert failed.payload == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {failed.request_id} Error: Runtime exited with error: signal: killed",
    }
    assert "Error Type: Runtime.OutOfMemory" in failed.report_line
    assert 100 <= report_field(failed.log, "Max Memory Used") <= 128
    assert wait_until(lambda: not env.alive)
    again = call(lam, "hungry", {"mb": 30})
    assert again.function_error is None and again.cold


def test_a_128_mb_function_starts_20_threads(emulator: tuple[Any, Path, Path]) -> None:
    lam, _, _ = emulator
    result = call(lam, "threads", {"threads": 20})
    assert result.function_error is None, result.payload
    assert result.payload == 20


def test_a_timeout_ends_every_process_the_handler_started(emulator: tuple[Any, Path, Path]) -> None:
    lam, _, records = emulator
    record = records / "timeout.json"
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(call, lam, "orphans", {"record": str(record), "hang": True})
        assert wait_until(record.exists), "the handler never wrote down what it started"
        processes = started(record)
        Path(f"{record}.go").touch()
        assert in_flight.result(EXIT_WAIT_S).payload["errorType"] == "Sandbox.Timedout"
    assert wait_until(lambda: not any(p.alive for p in processes)), [p for p in processes if p.alive]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_nothing_a_handler_started_survives_the_emulator(runner: tuple[str | None, list[str]], sig: signal.Signals) -> None:
    with emulator_as(runner) as (proc, url, _, records):
        lam = lambda_client(url)
        try:
            result = call(lam, "orphans", {"record": str(records / "started.json")})
        finally:
            lam.close()
        assert result.function_error is None
        processes = started(records / "started.json")
        assert all(p.alive for p in processes)
        proc.send_signal(sig)
        proc.wait(EXIT_WAIT_S)
    assert wait_until(lambda: not any(p.alive for p in processes)), [p for p in processes if p.alive]


def test_asking_for_cgroups_where_none_can_be_made_fails_start_up_clearly(runner: tuple[str | None, list[str]]) -> None:
    user, command = runner
    folder = Path(tempfile.mkdtemp(prefix="lambda-emulator-unprivileged-"))
    try:
        template = write_app(folder, {"hungry": HANDLERS["hungry"]})
        done = subprocess.run(
            command + ["up", "--template", str(template), "--port", "0", "--backend", "none", "--memory-limits", "cgroup"],
            cwd=folder, user=user, capture_output=True, text=True, timeout=START_WAIT_S,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8"},
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 1 and done.stdout == ""
    assert "memory limits 'cgroup' requested, but" in done.stderr and "Traceback" not in done.stderr


def test_cpu_in_proportion_to_memory_degrades_with_one_message(runner: tuple[str | None, list[str]]) -> None:
    """Without a cgroup it may create, `--cpu-model proportional` runs environments uncapped
    and says so once, whatever the number of environments."""
    with emulator_as(runner, "--cpu-model", "proportional") as (_, url, stderr_path, _records):
        lam = lambda_client(url)
        try:
            with ThreadPoolExecutor(3) as pool:  # three environments, one message
                results = list(pool.map(lambda _: call(lam, "threads", {"threads": 1}), range(3)))
        finally:
            lam.close()
        assert all(r.function_error is None for r in results)
        log = stderr_path.read_text()
        assert log.count("CPU cannot be capped in proportion to memory") == 1, log
        assert "durations are unscaled" in log
