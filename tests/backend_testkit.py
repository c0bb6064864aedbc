"""Moto servers for tests: one the test owns (for `--aws-endpoint`), so a test can kill it
and start it again on the same port: what the emulator sees when its backend dies and comes
back; and the pair the parity tests compare, the emulator's moto child and plain moto.

Imported by tests/scenario and tests/component (pytest puts this folder on sys.path through
tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator

import boto3
from botocore.config import Config as BotoConfig

from emulator.backend.moto_process import MotoServer, free_port

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


@contextmanager
def fast_and_plain_moto() -> Iterator[dict[str, MotoServer]]:
    """Two moto servers started together: "fast" as the emulator starts it (its fast models
    applied) and "plain" (moto as it is), for tests that compare the two."""
    started = {"fast": MotoServer(fast_sqs=True), "plain": MotoServer(fast_sqs=False)}

    async def start_all() -> None:
        await asyncio.gather(*(server.start() for server in started.values()))

    asyncio.run(start_all())
    try:
        yield started
    finally:
        for server in started.values():
            asyncio.run(server.stop())


def moto_client(server: MotoServer, service: str) -> Any:
    """A boto3 client of `server` that does not retry (a retry would hide the first answer)."""
    return boto3.client(
        service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=BotoConfig(retries={"max_attempts": 1}),
    )
