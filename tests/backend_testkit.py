"""A moto server the test owns (for `--aws-endpoint`), so a test can kill it and start it
again on the same port: what the emulator sees when its backend dies and comes back.

Imported by tests/scenario (pytest puts this folder on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

from emulator.backend.moto_process import free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class RestartableMoto:
    """`python -m emulator.moto_child` (moto with the fast SQS model) on a fixed port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.moto_child", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited at start-up with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2) as response:
                    response.read()
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"moto did not answer on {self.url} within {START_TIMEOUT_S:.0f} s") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash: open connections are dropped mid-request."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    def __enter__(self) -> "RestartableMoto":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
