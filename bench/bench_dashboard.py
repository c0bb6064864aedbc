"""Benchmark 12: what the live dashboard costs the control plane (target: <= 1 % of a core
with 50 series).

* in-process: one dashboard read (the timeline's newest seconds shaped into panels, what
  GET /_emulator/dashboard/panels does once a second) against a timeline holding 56 series
  with a full hour of history, and one 120 s slice (how a page fills its window);
* live: an emulator with 8 functions invoked every second (56 series), its CPU time over
  rounds without and with a poller doing exactly what an open dashboard does (one read a
  second, the last seconds again), interleaved so other load hits both alike.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from bench_kinesis import cpu_seconds
from harness import NOOP_SOURCE, TemplateBuilder, scratch_dir, start_emulator
from report import Row, verdict
from settings import Settings

TARGET_CPU = 0.01  # of one core, with 50 series
FUNCTIONS = 8
HISTORY_S = 3600
REREAD_S = 3  # as emulator/web/static/dashboard.js


def _timeline_with_history() -> tuple[object, int]:
    from emulator.telemetry.timeline import Timeline, series_key

    class Wall:
        now = 1.7e9

        def __call__(self) -> float:
            return self.now

    wall = Wall()
    timeline = Timeline(wall)
    functions = [timeline.function(f"f{i}") for i in range(FUNCTIONS)]
    for second in range(HISTORY_S):
        for fn in functions:
            fn.executions(1, 1)
            fn.invocation(3.0 + second % 7, error=False, cold=second == 0, init_ms=1.0 if second == 0 else None)
            fn.executions(0, -1)
        for i in range(FUNCTIONS):
            timeline.record_gauge(series_key("AWS/Lambda", "ConcurrencyLimit", {"FunctionName": f"f{i}"}), 100)
        for metric in ("ClaimedAccountConcurrency", "UnreservedConcurrentExecutions", "AccountConcurrencyLimit",
                       "UnreservedConcurrencyLimit"):
            timeline.record_gauge(series_key("AWS/Lambda", metric), 5)
        timeline.tick()
        wall.now += 1
    return timeline, len(timeline.keys())


def _read_ms(timeline: object, span: int, repeats: int) -> float:
    from emulator.telemetry import panels

    now = timeline.now()  # type: ignore[attr-defined]
    since = now - span
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        panels.build(timeline.export(since, now + 1), start=since, end=now + 1)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
    return min(times)  # timeit's advice: slower repeats measure the other processes


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _invoke(url: str, name: str) -> None:
    request = urllib.request.Request(f"{url}/2015-03-31/functions/{name}/invocations", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


class Traffic(threading.Thread):
    """Each function invoked once a second: every series stays live."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for i in range(FUNCTIONS):
                _invoke(self.url, f"f{i}")


class DashboardPoller(threading.Thread):
    """What an open dashboard page asks, once a second."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.reads = 0

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            since = -300 if last is None else last - REREAD_S
            model = _get(f"{self.url}/_emulator/dashboard/panels?since={since}")
            if model["t"]:
                last = model["t"][-1]
            self.reads += 1
            if model["end"] is None or model["end"] > model["now"]:
                self.stop.wait(1.0)


def run(settings: Settings) -> list[Row]:
    timeline, series = _timeline_with_history()
    repeats = 5 if settings.quick else 20
    incremental = _read_ms(timeline, REREAD_S, repeats)
    slice_ms = _read_ms(timeline, 119, 3)
    rows = [
        Row("12 dashboard, per read (in-process)", f"one read of the newest {REREAD_S + 1} s, {series} series, 1 h of history",
            f"{incremental:.2f} ms", "-", f"<= {TARGET_CPU * 1000:.0f} ms (1 % at 1 read/s)", f"{incremental / 10:.2f} % of a core",
            verdict(incremental / 1000, TARGET_CPU)),
        Row("12 dashboard, per read (in-process)", "one 120 s slice (a page filling its window)", f"{slice_ms:.1f} ms"),
    ]
    round_s = 5 if settings.quick else 15
    with scratch_dir("dashboard") as tmp:
        workdir = Path(tmp)
        builder = TemplateBuilder(workdir)
        for i in range(FUNCTIONS):
            builder.add(f"f{i}", NOOP_SOURCE)
        with start_emulator(workdir, builder.write()) as server:
            traffic = Traffic(server.url)
            traffic.start()
            time.sleep(3)  # every function warm and every series recorded
            live_series = len(_get(f"{server.url}/_emulator/timeline?since=-2")["series"])
            without, with_page, reads = [], [], 0
            try:
                for _ in range(3):
                    before = cpu_seconds(server.pid)
                    time.sleep(round_s)
                    without.append((cpu_seconds(server.pid) - before) / round_s)
                    poller = DashboardPoller(server.url)
                    before = cpu_seconds(server.pid)
                    poller.start()
                    time.sleep(round_s)
                    poller.stop.set()
                    poller.join()
                    with_page.append((cpu_seconds(server.pid) - before) / round_s)
                    reads += poller.reads
            finally:
                traffic.stop.set()
                traffic.join()
    a, b = statistics.median(with_page), statistics.median(without)
    added = a - b
    rows.append(Row(f"12 dashboard, live emulator ({live_series} series)",
                    f"control plane CPU, {FUNCTIONS} functions invoked each second: with a dashboard open / without "
                    f"(median of 3 rounds of {round_s} s; {reads} reads)",
                    f"{a:.2%}", f"{b:.2%}", f"added <= {TARGET_CPU:.0%}", f"{added:+.2%}", verdict(added, TARGET_CPU)))
    return rows
