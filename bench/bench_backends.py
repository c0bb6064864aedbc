"""Benchmark 10: the execution backends side by side, in one run (`--only backends`).

For each backend that can run here, one emulator with the same no-op Python function:
warm invoke latency on one keep-alive connection (blocks interleaved between the
emulators, as in benchmark 1, so the shared machine's load hits them alike) and cold starts
(the client's latency minus the handler's Init Duration is what the emulator and the
backend add). `fork` is the baseline; `process-runtime-api` runs awslambdaric against the
Runtime API; `container` (when a Docker engine and the test image are there) runs the same
client in a container, with and without the pool of pre-created containers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import bench_coldstart
import bench_latency
from harness import NOOP_SOURCE, ServerProcess, TemplateBuilder, scratch_dir, start_emulator
from rawhttp import KeepAliveClient
from report import Row, ms, percentile
from settings import Settings

COLD_FUNCTIONS_QUICK, COLD_FUNCTIONS_FULL = 10, 30
CONTAINER_COLD_FUNCTIONS = 8  # each one is a container: slower, and memory-hungry
MEMORY_MB = 1769


def container_args(pool: int = 1) -> list[str] | None:
    """The emulator flags that run Python functions in containers, or None when no engine or
    image is available (EMULATOR_BENCH_RUNTIME_IMAGE names the image; see docs/containers.md)."""
    image = os.environ.get("EMULATOR_BENCH_RUNTIME_IMAGE")
    if not image or importlib.util.find_spec("docker") is None:
        return None
    return ["--execution", "container", "--runtime-image", f"python3.11={image}", "--container-pool", str(pool)]


def backends() -> dict[str, list[str]]:
    chosen = {"fork": []}
    if importlib.util.find_spec("awslambdaric") is not None:
        chosen["process-runtime-api"] = ["--execution", "process-runtime-api"]
    extra = container_args()
    if extra is not None:
        chosen["container"] = extra
        chosen["container, no pool"] = container_args(0) or []
    return chosen


def cold_starts(server: ServerProcess, names: list[str]) -> tuple[list[float], list[float]]:
    """(latencies, overheads) in ms of one cold start per function, one at a time."""
    latencies, overheads = [], []
    with KeepAliveClient(server.host, server.port) as client:
        for name in names:
            measured = bench_coldstart.one_cold_start(client, name, settle_s=0.05)
            if measured is not None:
                elapsed, init = measured
                latencies.append(elapsed)
                overheads.append(elapsed - init)
    return sorted(latencies), sorted(overheads)


def run(settings: Settings) -> list[Row]:
    chosen = backends()
    rows: list[Row] = []
    with scratch_dir("backends") as tmp:
        workdir = Path(tmp)
        count = COLD_FUNCTIONS_QUICK if settings.quick else COLD_FUNCTIONS_FULL
        # One vCPU (1,769 MB) each: a container gets CPU by Lambda's memory rule, a process does not.
        cold_names: dict[str, list[str]] = {}
        servers: dict[str, ServerProcess] = {}
        for index, (name, extra) in enumerate(chosen.items()):
            folder = workdir / f"backend{index}"
            folder.mkdir()
            builder = TemplateBuilder(folder).add(bench_latency.FUNCTION, NOOP_SOURCE, memory_mb=MEMORY_MB)
            cold_names[name] = [f"cold-{i}" for i in range(CONTAINER_COLD_FUNCTIONS if name.startswith("container") else count)]
            for function in cold_names[name]:
                builder.add(function, bench_coldstart.TRIVIAL_INIT_SOURCE, memory_mb=MEMORY_MB)
            servers[name] = start_emulator(folder, builder.write(), *extra, name=f"emulator-{index}")
        try:
            warm = bench_latency.interleaved(servers, settings)
            cold = {name: cold_starts(servers[name], cold_names[name]) for name in chosen}
        finally:
            for server in servers.values():
                server.stop()
    base = warm["fork"]
    n = f" (n={settings.latency_samples:,})"
    for name, figures in warm.items():
        rows.append(Row(f"10 backends: {name}", "warm p50 / p99" + n, f"{figures.p50:.3f} / {figures.p99:.3f} ms",
                        f"{base.p50:.3f} / {base.p99:.3f} ms", "", "baseline: fork, same run"))
        latencies, overheads = cold[name]
        if overheads:
            rows.append(Row(f"10 backends: {name}", f"cold overhead p50 / p90 ({len(overheads)} fns)",
                            f"{percentile(overheads, 0.5):.1f} / {percentile(overheads, 0.9):.1f} ms",
                            f"{percentile(cold['fork'][1], 0.5):.1f} ms", "", "latency - Init Duration"))
            rows.append(Row(f"10 backends: {name}", "cold first-invoke latency p50", ms(percentile(latencies, 0.5), 1)))
    return rows
