"""The Python of one warm request through the API Gateway front door, in process.

    .venv/bin/python bench/profile_apigw.py [--requests 20000] [--cprofile rest|http|direct]

An EmulatorServer on uvloop serves a no-op proxy function (bench/bench_apigw.py's template)
with one warm environment. wrk's request bytes are fed to the fast-path protocol of the
gateway port (REST `GET /Prod/noop`, HTTP API `GET /noop`) or of the Lambda API (direct
Invoke) over a fake transport; the environment's socket is a fake whose result frame
arrives one loop turn after the INVOKE frame was written. Prints the event loop thread's
CPU per request of each target (five repeats after 5,000 requests of warm-up, each target
on its own emulator: interleaving them on one made the second one's figure unsteady);
`--cprofile TARGET` prints cProfile's top functions for one. No socket I/O, no wake-ups,
caches hot: it shows only part of what a request costs under wrk (docs/benchmarks.md, API
Gateway throughput). It asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvloop
from bench_apigw import write_template
from rawhttp import invoke_request

from emulator.config import Config
from emulator.pytest_plugin import load_app
from emulator.runtimes import protocol
from emulator.server import EmulatorServer

REPEATS = 5
RESULT = protocol.result_frame(protocol.RESULT, 0.05, 30000, b'{"statusCode": 200, "body": "ok"}')
TARGETS = ("direct", "rest", "http")
WRK_HEAD = "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


class FakeEnvironmentSocket:
    def __init__(self, env: Any) -> None:
        self.env = env
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        self.loop.call_soon(self.env.data_received, RESULT)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class FakeClientSocket:
    def __init__(self) -> None:
        self.last = b""

    def write(self, data: bytes) -> None:
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def control_plane(target: str, requests: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-profile-apigw-") as scratch:
        template = write_template(Path(scratch))
        config = Config(host="127.0.0.1", port=0, api_port=0).replace(
            log_invocations=False, watch_code=False, backend="none", template=str(template))
        server = EmulatorServer(config, load_app(template, config))
        await server.start()
        try:
            direct = invoke_request("noop", b"{}")
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(direct)  # a real invoke first: one warm environment
            await reader.read(65536)
            writer.close()
            env = next(iter(server.invoker.pools.values())).idle[0]
            env._transport = FakeEnvironmentSocket(env)
            assert server.gateway is not None and server.gateway.http._server is not None
            targets = {
                "direct": (server._http, direct),
                "rest": (server.gateway.http._server, WRK_HEAD.format(path="/Prod/noop").encode()),
                "http": (server.gateway.http._server, WRK_HEAD.format(path="/noop").encode()),
            }
            factory, request = targets[target]
            client = FakeClientSocket()
            connection = factory()
            connection.connection_made(client)

            async def run(count: int) -> None:
                for _ in range(count):
                    connection.data_received(request)
                    await connection.busy

            await run(5000)
            assert client.last.startswith(b"HTTP/1.1 200"), client.last[:300]
            gc.collect()
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await run(requests)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
                return
            cpu = []
            for _ in range(REPEATS):
                started = time.thread_time()
                await run(requests)
                cpu.append((time.thread_time() - started) / requests * 1e6)
            print(f"{target:6} CPU per request: median {statistics.median(cpu):.1f} µs ("
                  + ", ".join(f"{value:.1f}" for value in cpu) + ")")
        finally:
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--cprofile", choices=TARGETS, help="profile this target instead")
    args = parser.parse_args()
    for target in [args.cprofile] if args.cprofile else TARGETS:
        uvloop.run(control_plane(target, args.requests, bool(args.cprofile)))


if __name__ == "__main__":
    main()
