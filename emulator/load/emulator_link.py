"""The generator's side of the emulator: start one (`emulator up` in a child process) or use
one that runs, and the few calls made around a run (resolve the target, read the
emulator's clock, its timeline and its metrics). Plain HTTP from the parent process; the
requests of the run itself come from the workers.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0
_AUTH = "AWS4-HMAC-SHA256 Credential=AKIALOADGENERATOR000/{day}/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"


class EmulatorUnavailable(RuntimeError):
    """The emulator could not be started or reached; the message says why."""


class LocalEmulator:
    """`emulator up --port 0` as a child process, for the length of a run."""

    def __init__(self, template: Path, options: dict[str, Any], log_path: Path) -> None:
        self.template = template
        self.options = options
        self.log_path = log_path
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> str:
        command = [sys.executable, "-m", "emulator.cli", "up", "--port", "0", "--template", str(self.template)]
        for name, value in self.options.items():
            command += ["--" + str(name).replace("_", "-"), str(value).lower() if isinstance(value, bool) else str(value)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL)
        assert self._process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            if self._process.poll() is not None:
                raise EmulatorUnavailable(f"the emulator exited at start-up (status {self._process.returncode}); "
                                          f"its log: {self.log_path}\n{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise EmulatorUnavailable(f"the emulator did not start within {STARTUP_TIMEOUT_S:.0f} s; its log: {self.log_path}")
            ready, _, _ = select.select([self._process.stdout], [], [], 0.1)
            if ready:
                line += os.read(self._process.stdout.fileno(), 4096)
        self.url = line.decode().strip().splitlines()[0]
        wait_healthy(self.url, deadline)
        return self.url

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
        self._process = None

    def __enter__(self) -> "LocalEmulator":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_healthy(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url + "/_emulator/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise EmulatorUnavailable(f"the emulator at {url} did not become healthy in time")
        time.sleep(0.05)


# -- calls ------------------------------------------------------------------------------------
def get_json(url: str, timeout: float = CALL_TIMEOUT_S) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def emulator_now(endpoint: str) -> int | None:
    """The emulator's clock (emulated epoch seconds), or None when its timeline is off."""
    try:
        return int(get_json(f"{endpoint}/_emulator/timeline?since=1e15")["now"])
    except (urllib.error.HTTPError, KeyError, ValueError):
        return None
    except OSError as exc:
        raise EmulatorUnavailable(f"cannot reach the emulator at {endpoint}: {exc}") from None


def timeline(endpoint: str, since: float, until: float | None = None) -> dict[str, Any] | None:
    query = f"since={since}" + (f"&until={until}" if until is not None else "")
    try:
        return get_json(f"{endpoint}/_emulator/timeline?{query}")
    except urllib.error.HTTPError:
        return None


def app_facts(endpoint: str) -> dict[str, Any] | None:
    """The app's settings for the limits advisor (`GET /_emulator/app`), or None from an
    emulator that does not serve them."""
    try:
        return get_json(f"{endpoint}/_emulator/app")
    except (urllib.error.HTTPError, OSError, ValueError):
        return None


def metrics(endpoint: str) -> dict[str, Any] | None:
    try:
        return get_json(f"{endpoint}/_emulator/metrics")
    except (urllib.error.HTTPError, OSError, ValueError):
        return None


def _aws(endpoint: str, service: str, region: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    day = time.strftime("%Y%m%d", time.gmtime())
    request = urllib.request.Request(endpoint + "/", data=body, method="POST",
                                     headers={**headers, "Authorization": _AUTH.format(day=day, region=region, service=service)})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def queue_url(endpoint: str, region: str, name: str) -> str:
    if name.startswith("http://") or name.startswith("https://"):
        return name
    status, body = _aws(endpoint, "sqs", region, json.dumps({"QueueName": name}).encode(),
                        {"X-Amz-Target": "AmazonSQS.GetQueueUrl", "Content-Type": "application/x-amz-json-1.0"})
    if status != 200:
        raise EmulatorUnavailable(f"queue {name!r}: GetQueueUrl answered {status}: {body[:300].decode(errors='replace')}")
    return str(json.loads(body)["QueueUrl"])


def topic_arn(endpoint: str, region: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    token = ""
    while True:
        form = "Action=ListTopics&Version=2010-03-31" + (f"&NextToken={urllib.parse.quote(token)}" if token else "")
        status, body = _aws(endpoint, "sns", region, form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise EmulatorUnavailable(f"topic {name!r}: ListTopics answered {status}: {body[:300].decode(errors='replace')}")
        text = body.decode()
        for arn in re.findall(r"<TopicArn>([^<]+)</TopicArn>", text):
            if arn.rsplit(":", 1)[-1] == name:
                return arn
        match = re.search(r"<NextToken>([^<]+)</NextToken>", text)
        if not match:
            raise EmulatorUnavailable(f"topic {name!r} does not exist in the emulator")
        token = match.group(1)


def check_function(endpoint: str, name: str) -> None:
    try:
        get_json(f"{endpoint}/2015-03-31/functions/{urllib.parse.quote(name, safe='')}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise EmulatorUnavailable(f"function {name!r} does not exist in the emulator") from None
        raise EmulatorUnavailable(f"function {name!r}: GetFunction answered {error.code}") from None
    except OSError as exc:
        raise EmulatorUnavailable(f"cannot reach the emulator at {endpoint}: {exc}") from None
