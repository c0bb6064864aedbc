"""Benchmark 4: memory per idle environment, and 1,000 concurrent environments.

Part A: N concurrent invokes of a handler that sleeps ~1 s force N environments to exist
at once; once they are idle, the unique memory (USS = Private_Clean + Private_Dirty from
/proc/<pid>/smaps_rollup) of every environment process (the children of the
`emulator.runtimes.forkserver` process) is summed and divided by N.

Part B: 1,000 concurrent invokes of another 1-second handler (so 1,000 new environments,
within the default account concurrency of 1,000 and the scaling rate of 1,000 per 10 s),
held and completed. Reports completion time, successes and the peak of the summed RSS
of the emulator's process tree (sampled every 0.25 s).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import uvloop

from harness import (
    SLEEP_SOURCE, RssSampler, ServerProcess, TemplateBuilder, environment_processes, raise_open_files_limit,
    scratch_dir, smaps_rollup, start_emulator, template_processes, wait_until,
)  # fmt: skip
from rawhttp import Outcome, concurrent_requests, invoke_request
from report import Row, percentile, verdict
from settings import Settings

TARGET_USS_MIB = 4.0
PEERS_MEMORY = "fork template measured 2.0 MiB; forkserver 5.9; spawn 11.6"
IDLE_FUNCTION = "sleep-idle"
BURST_FUNCTION = "sleep-burst"
SLEEP_S = 1.0
SETTLE_S = 0.5
FD_HEADROOM = 256


def fire(server: ServerProcess, function: str, count: int, timeout_s: float) -> tuple[list[Outcome], float]:
    request = invoke_request(function, json.dumps({"sleep": SLEEP_S}).encode())
    started = time.perf_counter()
    outcomes = uvloop.run(concurrent_requests(server.host, server.port, request, count, timeout_s))
    return outcomes, time.perf_counter() - started


def idle_memory(server: ServerProcess, expected: int) -> dict[str, float]:
    wait_until(lambda: len(environment_processes(server.pid)) >= expected, 10)
    time.sleep(SETTLE_S)
    envs = environment_processes(server.pid)
    rollups = [smaps_rollup(pid) for pid in envs]
    uss = [r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in rollups]
    templates = [smaps_rollup(pid) for pid in template_processes(server.pid)]
    control = smaps_rollup(server.pid)
    return {
        "envs": len(envs),
        "uss_mib": sum(uss) / len(uss) / 1024 if uss else float("nan"),
        "uss_max_mib": max(uss) / 1024 if uss else float("nan"),
        "pss_mib": sum(r.get("Pss", 0) for r in rollups) / len(rollups) / 1024 if rollups else float("nan"),
        "rss_mib": sum(r.get("Rss", 0) for r in rollups) / len(rollups) / 1024 if rollups else float("nan"),
        "template_rss_mib": sum(t.get("Rss", 0) for t in templates) / 1024,
        "control_rss_mib": control.get("Rss", 0) / 1024,
        "control_uss_mib": (control.get("Private_Clean", 0) + control.get("Private_Dirty", 0)) / 1024,
        "total_pss_mib": (sum(r.get("Pss", 0) for r in rollups + templates) + control.get("Pss", 0)) / 1024,
    }


def summarise(outcomes: list[Outcome]) -> tuple[int, int, str]:
    ok = sum(1 for o in outcomes if o.status == 200)
    failed = len(outcomes) - ok
    errors = sorted({o.error or f"HTTP {o.status}" for o in outcomes if o.status != 200})
    return ok, failed, "; ".join(errors[:3])


def run(settings: Settings) -> list[Row]:
    soft, _ = raise_open_files_limit(settings.big_burst * 4 + settings.idle_envs * 2 + FD_HEADROOM)
    rows: list[Row] = []
    with scratch_dir("memory") as tmp:
        workdir = Path(tmp)
        template = TemplateBuilder(workdir).add(IDLE_FUNCTION, SLEEP_SOURCE).add(BURST_FUNCTION, SLEEP_SOURCE).write()
        with start_emulator(workdir, template) as emulator:
            outcomes, elapsed = fire(emulator, IDLE_FUNCTION, settings.idle_envs, settings.burst_timeout_s)
            ok, failed, why = summarise(outcomes)
            idle = idle_memory(emulator, settings.idle_envs)
            with RssSampler(emulator.pid) as sampler:
                burst, burst_s = fire(emulator, BURST_FUNCTION, settings.big_burst, settings.burst_timeout_s)
            burst_ok, burst_failed, burst_why = summarise(burst)
            after = idle_memory(emulator, settings.idle_envs + settings.big_burst)
    n = settings.idle_envs
    name = f"4a memory, {n} idle envs"
    rows += [
        Row(name, "USS per idle environment", f"{idle['uss_mib']:.2f} MiB" + (f" (of {idle['envs']} envs)" if idle["envs"] < n else ""),
            "-", f"<= {TARGET_USS_MIB:.0f} MiB", PEERS_MEMORY, verdict(idle["uss_mib"], TARGET_USS_MIB)),  # fmt: skip
        Row(name, "PSS / RSS per idle env (mean)", f"{idle['pss_mib']:.2f} / {idle['rss_mib']:.2f} MiB"),
        Row(name, "env processes seen; USS max", f"{idle['envs']}; {idle['uss_max_mib']:.2f} MiB"),
        Row(name, "control plane RSS (USS); template RSS", f"{idle['control_rss_mib']:.0f} ({idle['control_uss_mib']:.0f}) MiB; "
            f"{idle['template_rss_mib']:.0f} MiB"),  # fmt: skip
        Row(name, f"{n} concurrent 1-s invokes: 200s, time", f"{ok} of {n}, {elapsed:.2f} s" + (f" ({why})" if why else ""),
            "", f"{n} of {n}", "", verdict(failed, 0)),  # fmt: skip
    ]
    b = settings.big_burst
    latencies = sorted(o.latency_s for o in burst if o.status == 200)
    name = f"4b {b:,} concurrent 1-s invokes"
    rows += [
        Row(name, "succeeded", f"{burst_ok} of {b}" + (f" ({burst_why})" if burst_why else ""), "", f"{b} of {b}", "",
            verdict(burst_failed, 0)),  # fmt: skip
        Row(name, "completion time (all done)", f"{burst_s:.2f} s", "", f"~{SLEEP_S:.0f} s + start-up"),
        Row(name, "latency min / p50 / max", f"{percentile(latencies, 0):.2f} / {percentile(latencies, 0.5):.2f} / "
            f"{percentile(latencies, 1):.2f} s"),  # fmt: skip
        Row(name, "peak RSS, summed over the tree", f"{sampler.peak_kb / 1024:,.0f} MiB ({sampler.peak_processes} processes)"),
        Row(name, "total PSS after, all processes", f"{after['total_pss_mib']:,.0f} MiB ({after['envs']} envs, "
            f"USS {after['uss_mib']:.2f} MiB/env)"),  # fmt: skip
        Row(name, "open-files limit (bench, inherited)", str(soft)),
    ]
    return rows
