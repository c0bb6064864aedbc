"""API Gateway front door: what a request through the gateway costs over a direct Invoke.

Run alone: `python bench/bench_apigw.py [--samples N] [--seconds S]`. One emulator serves a
no-op function (answering a proxy response) directly and through a REST API and an HTTP
API; the same loop also runs against the bare aiohttp echo server (bench/echo_server.py),
the floor on this machine.

1. Warm latency: sequential requests on one keep-alive connection (bench/rawhttp.py's
   client), blocks interleaved between the four targets so a change in the machine's load
   hits all alike; p50 / p99.
2. Throughput with wrk at 16 and 64 connections (when wrk is installed): direct Invoke vs
   REST vs HTTP API, alternating, median of the rounds; every non-200 is reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import BENCH_DIR, scratch_dir, start_echo_baseline, start_emulator
from rawhttp import KeepAliveClient, build_request, invoke_request
from report import percentile

PROXY_NOOP = """\
def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
"""
FUNCTION = "noop"
ROUNDS = 5
WARMUP = 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_template(workdir: Path) -> Path:
    code = workdir / "code"
    code.mkdir()
    (code / "app.py").write_text(PROXY_NOOP)
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Noop": {
        "Type": "AWS::Serverless::Function",
        "Properties": {"FunctionName": FUNCTION, "CodeUri": str(code), "Handler": "app.handler", "Runtime": "python3.11",
                       "Events": {"Rest": {"Type": "Api", "Properties": {"Path": "/noop", "Method": "get"}},
                                  "Http": {"Type": "HttpApi", "Properties": {"Path": "/noop", "Method": "get"}}}}}}}
    path = workdir / "template.json"
    path.write_text(json.dumps(template))
    return path


def latencies(port: int, request: bytes, warmup: int, samples: int) -> list[float]:
    clock = time.perf_counter_ns
    times = []
    with KeepAliveClient("127.0.0.1", port) as client:
        for _ in range(warmup):
            client.send(request)
        gc.collect()
        gc.disable()  # a collection pause in the client is not server latency
        try:
            for _ in range(samples):
                start = clock()
                response = client.send(request)
                elapsed = (clock() - start) / 1e6
                times.append(elapsed if response.status == 200 else -1.0)
        finally:
            gc.enable()
    return times


def wrk(url: str, connections: int, seconds: int, lua: Path | None) -> dict[str, float]:
    argv = [shutil.which("wrk") or "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if lua is not None:
        argv += ["-s", str(lua)]
    output = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    from bench_throughput import parse_wrk  # the same parsing as benchmark 2

    figures = parse_wrk(output)
    return {"rps": figures.rps, "p50": figures.p50_ms, "p99": figures.p99_ms, "bad": figures.non_2xx + figures.socket_errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000, help="latency samples per target (default 5000)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per target, alternating (default 3)")
    args = parser.parse_args()
    api_port = free_port()
    with scratch_dir("apigw") as tmp:
        workdir = Path(tmp)
        template = write_template(workdir)
        with start_echo_baseline(workdir) as echo, start_emulator(workdir, template, "--api-port", str(api_port)) as emu:
            targets = {
                "bare aiohttp echo": (echo.port, invoke_request(FUNCTION, b"{}")),
                "direct Invoke": (emu.port, invoke_request(FUNCTION, b"{}")),
                "REST API (GET /Prod/noop)": (api_port, build_request("GET", "/Prod/noop")),
                "HTTP API (GET /noop)": (api_port, build_request("GET", "/noop")),
            }
            samples: dict[str, list[float]] = {name: [] for name in targets}
            block = max(1, args.samples // ROUNDS)
            for _ in range(ROUNDS):
                for name, (port, request) in targets.items():
                    samples[name] += latencies(port, request, WARMUP // ROUNDS, block)
            print(f"1. warm latency, sequential on one connection ({args.samples} samples each, interleaved):")
            for name, times in samples.items():
                ok = sorted(t for t in times if t >= 0)
                print(f"   {name:28s} p50 {percentile(ok, 0.5):.3f} ms   p99 {percentile(ok, 0.99):.3f} ms"
                      f"   non-200: {len(times) - len(ok)}")
            direct = sorted(t for t in samples["direct Invoke"] if t >= 0)
            for name in ("REST API (GET /Prod/noop)", "HTTP API (GET /noop)"):
                through = sorted(t for t in samples[name] if t >= 0)
                print(f"   {name} adds {percentile(through, 0.5) - percentile(direct, 0.5):+.3f} ms p50, "
                      f"{percentile(through, 0.99) - percentile(direct, 0.99):+.3f} ms p99 over a direct Invoke")
            if shutil.which("wrk") is None:
                print("2. wrk is not installed: no throughput figures (apt-get install -y wrk)")
                return 0
            urls = {"direct Invoke": (f"{emu.url}/2015-03-31/functions/{FUNCTION}/invocations", BENCH_DIR / "wrk_invoke.lua"),
                    "REST API": (f"http://127.0.0.1:{api_port}/Prod/noop", None),
                    "HTTP API": (f"http://127.0.0.1:{api_port}/noop", None)}
            print(f"2. throughput, wrk -t2, {args.seconds} s runs, median of {args.rounds} (alternating):")
            for connections in (16, 64):
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
                for url, lua in urls.values():
                    wrk(url, connections, 1, lua)  # environments for every connection, caches hot
                for _ in range(args.rounds):
                    for name, (url, lua) in urls.items():
                        runs[name].append(wrk(url, connections, args.seconds, lua))
                for name, results in runs.items():
                    median = sorted(results, key=lambda r: r["rps"])[len(results) // 2]
                    bad = sum(r["bad"] for r in results)
                    print(f"   -c{connections:<3d} {name:14s} {median['rps']:>9,.0f} req/s   p50 {median['p50']:.2f} ms"
                          f"   p99 {median['p99']:.2f} ms   non-2xx+errors: {bad}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
