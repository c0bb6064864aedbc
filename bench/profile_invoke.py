"""The Python of one warm invoke, in process: no system calls, no wake-ups.

    .venv/bin/python bench/profile_invoke.py [--invokes 20000] [--cprofile]

Control plane: an EmulatorServer on uvloop with one warm environment of a no-op function;
the request bytes are fed to a fast-path HTTP protocol with a fake transport, and the
environment's socket is replaced by a fake whose result frame arrives one loop turn after
the INVOKE frame was written. Prints the CPU per invoke (five repeats) and the median wall
time of three stretches: parsing the request, request to the INVOKE frame's write, result
frame to the response's write. `--cprofile` prints cProfile's top functions instead.

Environment: `Runner.invoke` of runtimes/bootstrap.py on a socket pair, a no-op handler.

Used for "Where the time goes" in docs/benchmarks.md; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvloop
from harness import NOOP_SOURCE, TemplateBuilder
from inprocess import FakeClientSocket, FakeEnvironmentSocket, cpu_per_request, warm_emulator
from rawhttp import invoke_request

from emulator.runtimes import bootstrap, protocol

REPEATS = 5
RESULT = protocol.result_frame(protocol.RESULT, 0.05, 30000, b"{}")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:noop"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


class Stretches:
    """Wall-clock marks of the invoke under way (ns)."""

    def __init__(self) -> None:
        self.request = self.result = 0
        self.parse: list[int] = []
        self.to_invoke: list[int] = []
        self.to_response: list[int] = []


async def control_plane(invokes: int, profile: bool) -> None:
    def write_template(folder: Path) -> Path:
        return TemplateBuilder(folder).add("noop", NOOP_SOURCE).write()

    async with warm_emulator(write_template, "noop") as (server, env):
        marks = Stretches()

        def written() -> None:
            marks.to_invoke.append(time.perf_counter_ns() - marks.request)

        def answered() -> None:
            marks.result = time.perf_counter_ns()

        def responded() -> None:
            marks.to_response.append(time.perf_counter_ns() - marks.result)

        env._transport = FakeEnvironmentSocket(env, RESULT, on_write=written, on_answer=answered)
        http = server._http()
        client = FakeClientSocket(on_write=responded)
        http.connection_made(client)
        request = invoke_request("noop", b"{}")

        async def run(count: int) -> None:
            for _ in range(count):
                marks.request = time.perf_counter_ns()
                http.data_received(request)
                marks.parse.append(time.perf_counter_ns() - marks.request)
                await http.busy

        cpu = await cpu_per_request(run, invokes, REPEATS, profile, clock=time.process_time)
        assert client.last.startswith(b"HTTP/1.1 200"), client.last[:100]
        if cpu is not None:
            print("control plane, CPU per invoke: " + ", ".join(f"{value:.1f}" for value in cpu) + " µs")
            print(f"  median wall: parse {statistics.median(marks.parse) / 1e3:.1f} µs, "
                  f"request to INVOKE write {statistics.median(marks.to_invoke) / 1e3:.1f} µs, "
                  f"result to response write {statistics.median(marks.to_response) / 1e3:.1f} µs")


def environment(invokes: int) -> None:
    ours, theirs = socket.socketpair()
    spec = {"function_name": "noop", "function_version": "$LATEST", "memory_mb": 128,
            "log_group": "/aws/lambda/noop", "log_stream": "2026/12/01/[$LATEST]0"}
    runner = bootstrap.Runner(theirs, lambda event, context: event, spec, bootstrap.LambdaLogHandler())
    frame = protocol.invoke_frame("522eaafc-4ce5-40aa-8d3e-123456789012", int(time.time() * 1000) + 30000,
                                  json.dumps(ARN), "null", b"{}", TRACE)
    body = frame[protocol.HEADER.size:]
    cpu = []
    for _ in range(REPEATS):
        started = time.process_time()
        for _ in range(invokes):
            runner.invoke(body)
            ours.recv(65536)
        cpu.append((time.process_time() - started) / invokes * 1e6)
    print("environment, Runner.invoke and reading its result: " + ", ".join(f"{value:.1f}" for value in cpu) + " µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=20000)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    uvloop.run(control_plane(args.invokes, args.cprofile))
    if not args.cprofile:
        environment(args.invokes)


if __name__ == "__main__":
    main()
