"""Benchmark 5: admission control, alone and under a burst.

- The cost of one admission (ConcurrencyLedger.admit + ScalingRateModel.try_take +
  release), from bench_admission.py run as a subprocess.
- 10,000 concurrent invokes of a 50 ms handler against an account concurrency of 50
  (`--account-concurrency 50 --unreserved-minimum 0`): every request must come back as a
  200 or a 429 (none lost, none hung), and the function's ConcurrentExecutionsPeak from
  /_emulator/metrics must stay within 50.
- wrk throughput of the no-op function on that same tightly limited emulator (admission
  control is always on; benchmark 2 measures it with the default limits).
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import uvloop

from harness import BENCH_DIR, NOOP_SOURCE, SLEEP_SOURCE, TemplateBuilder, raise_open_files_limit, scratch_dir, start_emulator
from rawhttp import concurrent_requests, invoke_request
from report import MISSED, Row, verdict
from settings import THROTTLE_ACCOUNT_LIMIT, THROTTLE_SLEEP_S, Settings
import bench_throughput

TARGET_ADMISSION_US = 20.0
SLOW_FUNCTION = "sleep-50ms"
FAST_FUNCTION = "noop"
REQUEST_TIMEOUT_S = 60.0  # 429s come back at once; the 200s need burst / 50 x 50 ms at worst
FD_HEADROOM = 512
_ADMISSION_LINE = re.compile(r"^(?P<name>.+?)\s+median\s+(?P<median>[\d.]+) µs\s+p99\s+(?P<p99>[\d.]+) µs", re.MULTILINE)


def admission_micro(iterations: int) -> dict[str, tuple[float, float]]:
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "bench_admission.py"), str(iterations)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_admission.py failed: {done.stderr}")
    return {m["name"].strip(): (float(m["median"]), float(m["p99"])) for m in _ADMISSION_LINE.finditer(done.stdout)}


def reason_of(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return "unparsed"
    return str(value.get("Reason") or value.get("__type") or value.get("errorType") or "?") if isinstance(value, dict) else "?"


def metrics(url: str) -> dict:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        return json.loads(response.read())


def run(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    micro = admission_micro(settings.admission_iterations)
    for name, (median, p99) in micro.items():
        if "alone" in name:
            continue
        rows.append(Row("5 admission cost", f"{name}: median (p99)", f"{median:.2f} µs ({p99:.2f})", "-",
                        f"<= {TARGET_ADMISSION_US:.0f} µs", "", verdict(median, TARGET_ADMISSION_US)))  # fmt: skip
    burst = settings.throttle_burst
    raise_open_files_limit(burst + FD_HEADROOM)
    limit = THROTTLE_ACCOUNT_LIMIT
    with scratch_dir("throttle") as tmp:
        workdir = Path(tmp)
        template = TemplateBuilder(workdir).add(SLOW_FUNCTION, SLEEP_SOURCE).add(FAST_FUNCTION, NOOP_SOURCE).write()
        extra = ("--account-concurrency", str(limit), "--unreserved-minimum", "0")
        with start_emulator(workdir, template, *extra) as emulator:
            request = invoke_request(SLOW_FUNCTION, json.dumps({"sleep": THROTTLE_SLEEP_S}).encode())
            started = time.perf_counter()
            outcomes = uvloop.run(concurrent_requests(emulator.host, emulator.port, request, burst, REQUEST_TIMEOUT_S))
            elapsed = time.perf_counter() - started
            snapshot = metrics(emulator.url)
            wrk_figures = bench_throughput.measure_server(emulator, min(16, limit), settings, FAST_FUNCTION)
    statuses = collections.Counter(o.status for o in outcomes)
    ok, throttled = statuses.pop(200, 0), statuses.pop(429, 0)
    errors = sum(statuses.values())
    reasons = collections.Counter(reason_of(o.body) for o in outcomes if o.status == 429)
    peak = snapshot["functions"].get(SLOW_FUNCTION, {}).get("ConcurrentExecutionsPeak", -1)
    accounted = ok + throttled + errors
    name = f"5 burst {burst:,} vs account {limit}"
    detail = ", ".join(f"{status or 'conn error'}: {count}" for status, count in sorted(statuses.items()))
    rows += [
        Row(name, "200 + 429 + errors", f"{ok:,} + {throttled:,} + {errors}" + (f" ({detail})" if detail else ""), "",
            f"= {burst:,}", "", verdict(abs(accounted - burst), 0) if accounted else MISSED),  # fmt: skip
        Row(name, "ConcurrentExecutionsPeak (metrics)", str(peak), "", f"<= {limit}", "", verdict(peak, limit) if peak >= 0 else MISSED),
        Row(name, "429 Reasons", ", ".join(f"{r}: {c:,}" for r, c in reasons.most_common()) or "-"),
        Row(name, "burst wall time; answers/s", f"{elapsed:.2f} s; {burst / elapsed:,.0f}/s"),
        Row(f"5 wrk -c{min(16, limit)}, account {limit}", "no-op req/s (admission on)", bench_throughput.describe(wrk_figures),
            "", f">= {bench_throughput.TARGET_RPS:,}/s", "", verdict(wrk_figures.rps, bench_throughput.TARGET_RPS, at_least=True)),  # fmt: skip
    ]
    return rows
