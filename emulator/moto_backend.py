"""The moto server that backs every non-Lambda AWS API, run as a child process.

A separate process rather than moto's ThreadedMotoServer: moto is GIL-bound and logs
every request (shared/measurements.md), so in-process it would slow the invoke path.
The child dies with us (PR_SET_PDEATHSIG) and is reaped on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys

import aiohttp

log = logging.getLogger("emulator.moto")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0

_LAUNCHER = (
    "import ctypes, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "except Exception:\n"
    "    pass\n"
    "from moto.server import main\n"
    "main(sys.argv[1:])\n"
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, "-H", self.host, "-p", str(self.port)],
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
