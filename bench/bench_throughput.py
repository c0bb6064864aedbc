"""Benchmark 2: throughput of warm no-op invokes with 16 and 64 concurrent clients (wrk).

wrk (C, epoll) is the load generator: any Python client would saturate first
(docs/measurements.md). It shares the 2 CPUs with the server, as a real test suite would.
For each connection count, a short unmeasured run per server first creates the
environments (one per connection), so the figure is warm throughput; then the emulator and
the baseline alternate for `wrk_rounds` rounds and the median round is reported. "All 200"
is checked twice: wrk's non-2xx count and the emulator's own counters (Errors and
Throttles must not move).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness import BENCH_DIR, NOOP_SOURCE, ServerProcess, TemplateBuilder, scratch_dir, start_echo_baseline, start_emulator
from rawhttp import INVOKE_PATH
from report import MISSED, Row, verdict
from settings import Settings

TARGET_RPS = 10_000
PEERS = "sls-offline 7.5k; RIC+aiohttp 3-5k; MiniStack 580"
FUNCTION = "noop"
WARMUP_S = 1
LUA = BENCH_DIR / "wrk_invoke.lua"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkFigures:
    rps: float = 0.0
    requests: int = 0
    p50_ms: float = float("nan")
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")
    non_2xx: int = 0
    socket_errors: int = 0
    raw: str = ""
    spread: str = ""


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS_MS[match.group(2)] if match else float("nan")


def parse_wrk(output: str) -> WrkFigures:
    figures = WrkFigures(raw=output)
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        figures.rps = float(match.group(1))
    if match := re.search(r"(\d+) requests in", output):
        figures.requests = int(match.group(1))
    for label, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        if match := re.search(rf"^\s+{label}%\s+(\S+)", output, re.MULTILINE):
            setattr(figures, attr, _duration_ms(match.group(1)))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        figures.non_2xx = int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        figures.socket_errors = sum(int(g) for g in match.groups())
    return figures


def wrk(url: str, connections: int, seconds: int, threads: int) -> WrkFigures:
    wrk_binary = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk_binary, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def invoke_url(server: ServerProcess, function: str = FUNCTION) -> str:
    return server.url + INVOKE_PATH.format(name=function)


def function_metrics(server: ServerProcess, function: str) -> dict:
    with urllib.request.urlopen(server.url + "/_emulator/metrics", timeout=30) as response:
        return json.loads(response.read())["functions"].get(function, {})


def measure_server(server: ServerProcess, connections: int, settings: Settings, function: str = FUNCTION) -> WrkFigures:
    url = invoke_url(server, function)
    wrk(url, connections, WARMUP_S, settings.wrk_threads)
    return wrk(url, connections, settings.wrk_seconds, settings.wrk_threads)


def describe(figures: WrkFigures) -> str:
    return f"{figures.rps:,.0f} req/s"


def latency(figures: WrkFigures) -> str:
    return f"{figures.p50_ms:.2f} / {figures.p99_ms:.2f} ms"


def median_run(runs: list[WrkFigures]) -> WrkFigures:
    chosen = sorted(runs, key=lambda f: f.rps)[len(runs) // 2]
    chosen.non_2xx = sum(f.non_2xx for f in runs)
    chosen.socket_errors = sum(f.socket_errors for f in runs)
    chosen.requests = sum(f.requests for f in runs)
    chosen.spread = f"{min(f.rps for f in runs):,.0f}-{max(f.rps for f in runs):,.0f}" if len(runs) > 1 else ""
    return chosen


def run(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    ours: dict[int, WrkFigures] = {}
    base: dict[int, WrkFigures] = {}
    with scratch_dir("throughput") as tmp:
        workdir = Path(tmp)
        template = TemplateBuilder(workdir).add(FUNCTION, NOOP_SOURCE).write()
        with start_echo_baseline(workdir) as echo, start_emulator(workdir, template) as emulator:
            for connections in settings.wrk_connections:
                ours_runs, base_runs = [], []
                for url in (invoke_url(echo), invoke_url(emulator)):
                    wrk(url, connections, WARMUP_S, settings.wrk_threads)  # environments exist, caches hot
                for _ in range(settings.wrk_rounds):  # alternate, so load changes hit both alike
                    base_runs.append(wrk(invoke_url(echo), connections, settings.wrk_seconds, settings.wrk_threads))
                    before = function_metrics(emulator, FUNCTION)
                    figures = wrk(invoke_url(emulator), connections, settings.wrk_seconds, settings.wrk_threads)
                    after = function_metrics(emulator, FUNCTION)
                    figures.non_2xx += sum(after.get(k, 0) - before.get(k, 0) for k in ("Errors", "Throttles"))
                    ours_runs.append(figures)
                ours[connections], base[connections] = median_run(ours_runs), median_run(base_runs)
    for connections in settings.wrk_connections:
        o, b = ours[connections], base[connections]
        name = f"2 throughput, wrk -c{connections}"
        rounds = f", median of {settings.wrk_rounds}" if settings.wrk_rounds > 1 else ""
        rows.append(Row(name, f"req/s (-t{settings.wrk_threads}, {settings.wrk_seconds} s{rounds})", describe(o), describe(b),
                        f">= {TARGET_RPS:,}/s", PEERS, verdict(o.rps, TARGET_RPS, at_least=True)))  # fmt: skip
        if o.spread:
            rows.append(Row(name, "req/s range over rounds", o.spread, b.spread))
        rows.append(Row(name, "latency p50 / p99", latency(o), latency(b)))
        bad = o.non_2xx + o.socket_errors
        rows.append(Row(name, "non-200 + socket errors", f"{bad} of {o.requests:,}", f"{b.non_2xx + b.socket_errors}",
                        "0", "", verdict(bad, 0) if o.requests else MISSED))  # fmt: skip
    return rows
