"""Helpers for tests that run `emulator up` as a separate process under host conditions a
user meets: a low open-files limit, a stderr nobody reads, secrets in the environment.

Imported by tests/scenario (pytest puts this folder on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

START_WAIT_S = 120.0
EXIT_WAIT_S = 30.0
GRACEFUL_STOP_S = 5.0  # then SIGKILL: a test may end with invocations held at a gate


def stop(proc: subprocess.Popen) -> None:
    """Stop an `emulator up` child as a user would (SIGTERM: its shutdown removes its temporary
    folders; SIGKILL would leave them in /tmp for good), killing it if it takes too long."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(GRACEFUL_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(EXIT_WAIT_S)


# A handler held by a barrier the test releases: it waits until the flag file exists.
BARRIER_HANDLER = """
import os, resource, time
def handler(event, context):
    while not os.path.exists(event["flag"]):
        time.sleep(0.05)
    return {"pid": os.getpid(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)}
"""


def emulator_command() -> list[str]:
    script = Path(sys.executable).with_name("emulator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator.cli"]


def write_function(folder: Path, source: str, name: str = "fn", timeout: int = 60, **properties: Any) -> Path:
    """A template with one function `name` whose code is `source`; returns the template."""
    code = folder / "src"
    code.mkdir(parents=True, exist_ok=True)
    (code / "app.py").write_text(textwrap.dedent(source))
    extra = "".join(f"\n                  {key}: {value}" for key, value in properties.items())
    template = folder / "template.yaml"
    template.write_text(
        textwrap.dedent(
            f"""\
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  FunctionName: {name}
                  CodeUri: {code}
                  Handler: app.handler
                  Runtime: python3.11
                  Timeout: {timeout}"""
        )
        + extra
        + "\n"
    )
    return template


@dataclass
class RunningEmulator:
    proc: subprocess.Popen
    url: str
    stderr_path: Path | None

    @property
    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""

    def get_json(self, path: str, timeout: float = 10.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())


def read_url(proc: subprocess.Popen, timeout_s: float) -> str:
    """The first line the emulator prints on stdout: its URL."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout_s):
            raise AssertionError(f"the emulator printed no URL within {timeout_s:.0f} s")
        return proc.stdout.readline().strip()
    finally:
        selector.close()


@contextmanager
def emulator_process(
    folder: Path,
    template: Path,
    *args: str,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
    stderr: IO[Any] | int | None = None,
) -> Iterator[RunningEmulator]:
    """`emulator up --port 0` as a child process. Its stderr goes to a file in `folder`
    unless `stderr` says otherwise (e.g. subprocess.PIPE, never read)."""
    stderr_path = None
    if stderr is None:
        stderr_path = folder / "emulator.stderr"
        stderr = open(stderr_path, "w")
    command = (prefix or []) + emulator_command() + ["up", "--port", "0", "--template", str(template), *args]
    try:
        proc = subprocess.Popen(
            command, cwd=folder, env=env if env is not None else dict(os.environ),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    finally:
        if stderr_path is not None:
            stderr.close()  # type: ignore[union-attr]
    try:
        url = read_url(proc, START_WAIT_S)
        running = RunningEmulator(proc, url, stderr_path)
        assert url.startswith("http://127.0.0.1:"), f"first stdout line is not the URL: {url!r}; {running.log}"
        yield running
    finally:
        stop(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- raw HTTP, many connections at once ------------------------------------------------------------
async def _invoke_raw(host: str, port: int, function: str, payload: bytes, timeout_s: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (
            f"POST /2015-03-31/functions/{function}/invocations HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


def invoke_many(url: str, function: str, payloads: list[dict], timeout_s: float = 120.0) -> "InvokeBurst":
    """Start `payloads` invocations at once, each on its own connection (in a thread);
    `.results()` waits for their (status, body)."""
    return InvokeBurst(url, function, payloads, timeout_s)


class InvokeBurst:
    def __init__(self, url: str, function: str, payloads: list[dict], timeout_s: float) -> None:
        import threading

        host, port = url.removeprefix("http://").split(":")
        self._results: list[tuple[int, bytes]] | None = None
        self._error: BaseException | None = None

        async def burst() -> list[tuple[int, bytes]]:
            calls = [_invoke_raw(host, int(port), function, json.dumps(p).encode(), timeout_s) for p in payloads]
            return list(await asyncio.gather(*calls))

        def run() -> None:
            try:
                self._results = asyncio.run(burst())
            except BaseException as exc:  # re-raised in results()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def results(self, timeout_s: float = 180.0) -> list[tuple[int, bytes]]:
        self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        assert self._results is not None, "the invocations did not finish in time"
        return self._results


def in_flight(emulator: RunningEmulator, function: str) -> int:
    return emulator.get_json("/_emulator/metrics")["functions"].get(function, {}).get("ConcurrentExecutions", 0)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (from /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

