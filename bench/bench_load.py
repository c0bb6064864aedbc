"""Benchmarks 10 and 11: the load generator's own capacity, and what the timeline costs.

10 (`--only load`): `emulator load` against a sink that answers at once
(bench/sink_server.py), at a rate above what it can offer, with 1 and then 2 worker
processes: the rate it achieved (requests sent per second of the run), the requests it
dropped (all connections waiting), the delay of its sends behind schedule (p99), and its CPU
time per request (the CLI and its workers, from the kernel's accounting of the children):
1 / that is what one core offers.

11 (`--only timeline`): the timeline's cost on the invoke path, two ways, in one run:
* per invoke, in-process: what the Metrics calls an invocation makes (two concurrency
  changes and one record_invocation) cost with a timeline and without, interleaved;
* warm-invoke throughput: wrk against two emulators started alike but for `--timeline
  true|false`, rounds alternating, median round reported, like benchmark 2.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_kinesis import cpu_seconds
from bench_throughput import FUNCTION, invoke_url, median_run, wrk
from harness import BENCH_DIR, NOOP_SOURCE, ServerProcess, TemplateBuilder, emulator_command, scratch_dir, start_emulator
from report import Row, verdict
from settings import Settings

TARGET_OFFERED_RPS = 20_000
TARGET_TIMELINE_US = 2.0
TARGET_TIMELINE_THROUGHPUT_LOSS = 0.05
OFFER_RPS = 40_000  # above what one worker can send: the figure is its ceiling
MAX_IN_FLIGHT = 1000


def _generator_run(url: str, workers: int, seconds: int, out: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(emulator_command() + ["load", "--url", url, "--rate", str(OFFER_RPS), "--duration", str(seconds),
                                         "--workers", str(workers), "--max-in-flight", str(MAX_IN_FLIGHT),
                                         "--no-display", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads((out / "report.json").read_text())
    totals = report["client"]["totals"]
    sent_per_second = report["client"]["series"]["sent"]
    steady = sorted(sent_per_second[1:seconds])  # the first second opens connections
    return {"sent": totals["sent"], "rate": totals["sent"] / seconds, "steady": statistics.median(steady) if steady else 0.0,
            "dropped": totals["dropped"], "lag_p99": totals["send_lag_ms"].get("p99") or float("nan"),
            "cpu_us": cpu / max(1, totals["sent"]) * 1e6,
            "worker_cpu_us": report["run"]["generator"]["cpu_us_per_request"] or float("nan")}


def run_generator(settings: Settings) -> list[Row]:
    seconds = 3 if settings.quick else 5
    rows = []
    with scratch_dir("load-generator") as tmp:
        workdir = Path(tmp)
        with ServerProcess("sink", [sys.executable, str(BENCH_DIR / "sink_server.py")], workdir) as sink:
            for workers in (1, 2):
                figures = _generator_run(sink.url + "/load", workers, seconds, workdir / f"out-{workers}")
                name = f"10 load generator, {workers} worker(s)"
                one_core = 1e6 / figures["worker_cpu_us"]
                rows.append(Row(name, f"requests sent / s (offered {OFFER_RPS:,}/s for {seconds} s)",
                                f"{figures['rate']:,.0f} (median second {figures['steady']:,.0f})", "-",
                                f">= {TARGET_OFFERED_RPS:,}/s" if workers == 1 else "-", "",
                                verdict(figures["steady"], TARGET_OFFERED_RPS, at_least=True) if workers == 1 else ""))
                rows.append(Row(name, "workers' CPU per request -> one core's capacity; all processes' CPU per request",
                                f"{figures['worker_cpu_us']:.1f} µs -> {one_core:,.0f}/s; {figures['cpu_us']:.1f} µs"))
                rows.append(Row(name, "dropped (all connections busy) / send lag p99",
                                f"{figures['dropped']:,} / {figures['lag_p99']:.1f} ms"))
    return rows


# -- the timeline ------------------------------------------------------------------------------
def _per_invoke_us(iterations: int, with_timeline: bool) -> float:
    from emulator.clock import ScaledClock
    from emulator.functions.metrics import Metrics
    from emulator.telemetry.timeline import Timeline

    class Result:
        function_error = None
        error_type = None
        duration_ms = 0.21

    clock = ScaledClock()
    metrics = Metrics(Timeline(clock.wall) if with_timeline else None)
    result = Result()
    record, change = metrics.record_invocation, metrics.concurrency_changed
    started = time.perf_counter()
    for _ in range(iterations):
        change("fn", 1)
        record("fn", result, False)
        change("fn", -1)
    return (time.perf_counter() - started) / iterations * 1e6


def run_timeline(settings: Settings) -> list[Row]:
    iterations = 50_000 if settings.quick else 300_000
    on, off = [], []
    for _ in range(5):  # interleaved, so load changes hit both alike
        off.append(_per_invoke_us(iterations, False))
        on.append(_per_invoke_us(iterations, True))
    # The fastest of the interleaved repeats is the cost itself (timeit's advice: slower
    # repeats measure the other processes on the machine); the medians are shown too.
    added = min(on) - min(off)
    rows = [Row("11 timeline, per invoke (in-process)", "Metrics calls of one invoke: with / without timeline (best of 5)",
                f"{min(on):.2f} / {min(off):.2f} µs (+{added:.2f} µs)", "-",
                f"<= +{TARGET_TIMELINE_US:g} µs", "", verdict(added, TARGET_TIMELINE_US)),
            Row("11 timeline, per invoke (in-process)", "the same, medians of 5",
                f"{statistics.median(on):.2f} / {statistics.median(off):.2f} µs "
                f"(+{statistics.median(on) - statistics.median(off):.2f} µs)")]
    with scratch_dir("timeline") as tmp:
        workdir = Path(tmp)
        template = TemplateBuilder(workdir).add(FUNCTION, NOOP_SOURCE).write()
        with start_emulator(workdir, template, "--timeline", "true", name="timeline-on") as with_tl, \
                start_emulator(workdir, template, "--timeline", "false", name="timeline-off") as without_tl:
            for connections in settings.wrk_connections:
                for server in (with_tl, without_tl):
                    wrk(invoke_url(server), connections, 1, settings.wrk_threads)  # warm
                runs_on, runs_off = [], []
                cpu_on, cpu_off = [], []  # the control plane's CPU per invoke: less sensitive to other load than req/s
                for _ in range(max(3, settings.wrk_rounds)):
                    for server, runs, cpu in ((without_tl, runs_off, cpu_off), (with_tl, runs_on, cpu_on)):
                        before = cpu_seconds(server.pid)
                        figures = wrk(invoke_url(server), connections, settings.wrk_seconds, settings.wrk_threads)
                        cpu.append((cpu_seconds(server.pid) - before) / max(1, figures.requests) * 1e6)
                        runs.append(figures)
                a, b = median_run(runs_on), median_run(runs_off)
                loss = 1.0 - a.rps / b.rps if b.rps else float("nan")
                name = f"11 timeline, wrk -c{connections}"
                rows.append(Row(name, "warm invokes / s: timeline on (ours) / off (baseline)", f"{a.rps:,.0f}", f"{b.rps:,.0f}",
                                f"loss <= {TARGET_TIMELINE_THROUGHPUT_LOSS:.0%}", f"loss {loss:.1%}",
                                verdict(loss, TARGET_TIMELINE_THROUGHPUT_LOSS)))
                rows.append(Row(name, "latency p50 / p99", f"{a.p50_ms:.2f} / {a.p99_ms:.2f} ms", f"{b.p50_ms:.2f} / {b.p99_ms:.2f} ms"))
                on_us, off_us = statistics.median(cpu_on), statistics.median(cpu_off)
                rows.append(Row(name, "control plane CPU per invoke, median of rounds: on / off",
                                f"{on_us:.1f} µs", f"{off_us:.1f} µs", f"<= +{TARGET_TIMELINE_THROUGHPUT_LOSS:.0%}",
                                f"{on_us / off_us - 1:+.1%}", verdict(on_us / off_us - 1, TARGET_TIMELINE_THROUGHPUT_LOSS)))
                rows.append(Row(name, "req/s range over rounds", a.spread, b.spread))
    return rows
