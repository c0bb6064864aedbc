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
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvloop
from bench_apigw import write_template
from inprocess import FakeClientSocket, FakeEnvironmentSocket, cpu_per_request, warm_emulator
from rawhttp import invoke_request

from emulator.runtimes import protocol

REPEATS = 5
RESULT = protocol.result_frame(protocol.RESULT, 0.05, 30000, b'{"statusCode": 200, "body": "ok"}')
TARGETS = ("direct", "rest", "http")
WRK_HEAD = "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


async def control_plane(target: str, requests: int, profile: bool) -> None:
    async with warm_emulator(write_template, "noop") as (server, env):
        env._transport = FakeEnvironmentSocket(env, RESULT)
        assert server.gateway is not None and server.gateway.http._server is not None
        targets = {
            "direct": (server._http, invoke_request("noop", b"{}")),
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

        cpu = await cpu_per_request(run, requests, REPEATS, profile)
        assert client.last.startswith(b"HTTP/1.1 200"), client.last[:300]
        if cpu is not None:
            print(f"{target:6} CPU per request: median {statistics.median(cpu):.1f} µs ("
                  + ", ".join(f"{value:.1f}" for value in cpu) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--cprofile", choices=TARGETS, help="profile this target instead")
    args = parser.parse_args()
    for target in [args.cprofile] if args.cprofile else TARGETS:
        uvloop.run(control_plane(target, args.requests, bool(args.cprofile)))


if __name__ == "__main__":
    main()
