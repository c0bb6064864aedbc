"""The moto server that backs every non-Lambda AWS API, run as a child process.

A separate process rather than moto's ThreadedMotoServer: moto is GIL-bound and logs
every request (shared/measurements.md), so in-process it would slow the invoke path.
The child dies with us (PR_SET_PDEATHSIG) and is reaped on shutdown.

By default the child first applies emulator/moto_child/fast_sqs.py (an indexed SQS queue
model, a short path for SQS's JSON calls, keep-alive): moto's own SQS is O(queue depth)
per call. It is applied only on the moto versions it was verified with; on any other,
moto runs unpatched and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from typing import Mapping

import aiohttp

log = logging.getLogger("emulator.moto")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
# The backend runs at a lower CPU priority than the control plane and the handlers: when
# pollers keep both CPUs busy, moto (one GIL-bound process, most of the CPU of a queue
# drain) yields to the event loop instead of delaying it. Measured while a mapping drains
# 100,000 messages (2 CPUs, A/B runs): warm invoke p50 0.84 -> 0.68 ms, p99 6-6.6 -> 3-3.7 ms,
# and the drain itself 9,450 -> 11,200-11,750 msg/s (docs/benchmarks.md, "Event sources").
# Only matters when the CPUs are contended.
MOTO_NICE = 10
# What the moto child inherits of the emulator's environment: enough to run Python and
# moto's own settings (MOTO_*), never the user's secrets (AWS keys, tokens, ...).
_INHERITED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR"})


def moto_environment(environ: Mapping[str, str], home: str | None) -> dict[str, str]:
    """The moto child's whole environment."""
    env = {key: value for key, value in environ.items() if key in _INHERITED_ENV or key.startswith("MOTO_")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    if home is not None:
        env["HOME"] = home
    return env



def moto_command(host: str, port: int, fast_sqs: bool = True) -> list[str]:
    """argv of the moto child (emulator/moto_child/__main__.py)."""
    command = [sys.executable, "-m", "emulator.moto_child", f"--nice={MOTO_NICE}"]
    if not fast_sqs:
        command.append("--plain")
    return command + ["-H", host, "-p", str(port)]


def warn_if_unverified(fast_sqs: bool) -> None:
    from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, installed_moto_version, is_verified

    version = installed_moto_version()
    if fast_sqs and version is not None and not is_verified(version):
        log.warning("moto %s is not a version the fast SQS model was verified with (%s): the backend runs "
                    "moto's own SQS, which slows down as queues grow", version, ", ".join(VERIFIED_MOTO_VERSIONS))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, fast_sqs: bool = True, home: str | None = None) -> None:
        self.host = host
        self.port = port
        self.fast_sqs = fast_sqs
        self.home = home
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        warn_if_unverified(self.fast_sqs)
        try:
            self._proc = subprocess.Popen(
                moto_command(self.host, self.port, self.fast_sqs),
                env=moto_environment(os.environ, self.home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise RuntimeError(f"cannot start the moto server: {exc}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        "the moto server exited at start-up (is moto[server] installed? "
                        f"exit status {self._proc.returncode})"
                    )
                try:
                    async with session.get(self.url + "/moto-api/", timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status < 500:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                if loop.time() > deadline:
                    await self.stop()
                    raise RuntimeError(f"the moto server did not answer within {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.05)

    async def reset(self) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url + "/moto-api/reset") as response:
                await response.read()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_TIMEOUT_S
            while proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
        proc.wait()
