"""CPU per sequential warm invoke, control plane and environment apart, for an A/B of checkouts.

`.venv/bin/python bench/cpu_per_invoke.py DIR [DIR ...] [--rounds 8] [--invokes 15000]
[--pin spread|packed]` starts one emulator per checkout (as `bench/run.py --emulator-src`
stages it), then alternates rounds of sequential no-op invokes on one connection (the order
flipped every round) and reads each round's utime + stime of the control plane and of its
environments from /proc: robust to a shared machine's load, where p50 is not.

`--pin` fixes where the processes run, since on a VM whose idle vCPUs halt the figures
depend on it: `spread` puts the control plane and this client on CPU 0 and the environments
on CPU 1 (each hand-over wakes the other vCPU), `packed` puts all of them on CPU 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sources import cpu_seconds
from harness import (
    NOOP_SOURCE,
    ServerProcess,
    TemplateBuilder,
    environment_processes,
    stage_installed_tree,
    start_emulator,
)
from rawhttp import invoke_request, sequential_latencies

WARMUP = 2000
ROUND_WARMUP = 100


def pin(server: ServerProcess, mode: str) -> None:
    os.sched_setaffinity(0, {0})
    os.sched_setaffinity(server.pid, {0})
    for env in environment_processes(server.pid):
        os.sched_setaffinity(env, {1} if mode == "spread" else {0})


def one_round(server: ServerProcess, invokes: int) -> tuple[float, float, float, float]:
    """(control plane µs, environments µs) per invoke, p50 and p99 in ms."""
    envs = environment_processes(server.pid)
    plane, inside = cpu_seconds(server.pid), sum(cpu_seconds(env) for env in envs)
    times = sorted(sequential_latencies(server.host, server.port, invoke_request("noop", b"{}"), ROUND_WARMUP, invokes))
    count = invokes + ROUND_WARMUP
    return ((cpu_seconds(server.pid) - plane) / count * 1e6, (sum(cpu_seconds(env) for env in envs) - inside) / count * 1e6,
            times[len(times) // 2], times[int(len(times) * 0.99)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, metavar="DIR", help="checkouts to compare")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--invokes", type=int, default=15000, help="per round")
    parser.add_argument("--pin", choices=("spread", "packed"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cpu-per-invoke-") as scratch:
        workdir = Path(scratch)
        template = TemplateBuilder(workdir).add("noop", NOOP_SOURCE).write()
        servers: dict[str, ServerProcess] = {}
        try:
            for number, source in enumerate(args.sources):
                staged = workdir / f"src{number}"
                staged.mkdir()
                lib = stage_installed_tree(source.resolve(), staged)
                servers[str(source)] = start_emulator(workdir, template, name=f"emulator{number}", env={"PYTHONPATH": str(lib)})
            for server in servers.values():
                sequential_latencies(server.host, server.port, invoke_request("noop", b"{}"), WARMUP, 1)
                if args.pin:
                    pin(server, args.pin)
            figures: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in servers}
            for number in range(args.rounds):
                for name in (list(servers) if number % 2 == 0 else list(servers)[::-1]):
                    figures[name].append(one_round(servers[name], args.invokes))
                    plane, inside, p50, p99 = figures[name][-1]
                    print(f"round {number} {name}: control plane {plane:.1f} µs, environment {inside:.1f} µs, "
                          f"p50 {p50:.3f} ms, p99 {p99:.3f} ms (load average {os.getloadavg()[0]:.2f})", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    print(f"medians of {args.rounds} rounds of {args.invokes:,} invokes{', pinned ' + args.pin if args.pin else ''}:")
    for name, rows in figures.items():
        plane, inside, p50, p99 = (statistics.median(row[i] for row in rows) for i in range(4))
        print(f"  {name}: control plane {plane:.1f} µs, environment {inside:.1f} µs, p50 {p50:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
