"""Benchmark 8: the async queue draining a backlog into a throttled function.

5,000 `InvocationType=Event` invokes (2,000 with --quick) of a 15 ms handler whose reserved
concurrency is 5, sent as fast as one keep-alive connection goes. The ideal settle time is
events x handler time / concurrency (15 s for 5,000): five environments busy all the time.
Reported: the settle time (first send to last handler end) against that ideal (target
<= 1.5x), the throttles the queue caused (/_emulator/metrics), the peak concurrency (must
stay <= 5), and the queue-to-start delay (send -> handler start), p50 and p99, which for a
FIFO backlog grows up to the settle time by nature.

Each handler appends "sent started ended" per event to a file of its environment; the
timestamps are the host's wall clock on both sides.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from harness import scratch_dir, start_emulator, wait_until
from rawhttp import KeepAliveClient, invoke_request
from report import MET, MISSED, Row, percentile, verdict
from settings import Settings

FUNCTION = "async-15ms"
RESERVED = 5
HANDLER_S = 0.015
EVENTS_FULL, EVENTS_QUICK = 5_000, 2_000
TARGET_RATIO = 1.5
SETTLE_TIMEOUT_S = 600.0  # the queue before lanes took 306 s for 5,000 events on a quiet machine
SOURCE = """\
import os, time

_out = None

def handler(event, context):
    global _out
    started = time.time()
    time.sleep(%r)
    if _out is None:  # one file per environment: no interleaved lines
        _out = open(os.path.join(os.environ["STARTS_DIR"], "%%d.txt" %% os.getpid()), "a", buffering=1)
    _out.write("%%r %%r %%r\\n" %% (event["t"], started, time.time()))
    return {}
""" % HANDLER_S


def template(workdir: Path, starts: Path) -> Path:
    code = workdir / "code"
    code.mkdir()
    (code / "app.py").write_text(SOURCE)
    path = workdir / "template.json"
    path.write_text(json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {
            "FunctionName": FUNCTION, "CodeUri": str(code), "Handler": "app.handler", "Runtime": "python3.11",
            "MemorySize": 128, "Timeout": 30, "ReservedConcurrentExecutions": RESERVED,
            "Environment": {"Variables": {"STARTS_DIR": str(starts)}},
        }}},
    }))  # fmt: skip
    return path


def function_metrics(url: str) -> dict:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        return json.loads(response.read())["functions"].get(FUNCTION, {})


def records(starts: Path) -> list[tuple[float, float, float]]:
    out = []
    for path in starts.glob("*.txt"):
        for line in path.read_text().splitlines():
            sent, started, ended = (float(x) for x in line.split())
            out.append((sent, started, ended))
    return out


def run(settings: Settings) -> list[Row]:
    events = EVENTS_QUICK if settings.quick else EVENTS_FULL
    with scratch_dir("async") as tmp:
        workdir = Path(tmp)
        starts = workdir / "starts"
        starts.mkdir()
        with start_emulator(workdir, template(workdir, starts)) as emulator:
            headers = {"X-Amz-Invocation-Type": "Event"}
            with KeepAliveClient(emulator.host, emulator.port) as client:
                for _ in range(events):
                    response = client.send(invoke_request(FUNCTION, json.dumps({"t": time.time()}).encode(), headers))
                    if response.status != 202:
                        raise RuntimeError(f"Event invoke answered {response.status}: {response.body[:200]!r}")

            def settled() -> bool:
                m = function_metrics(emulator.url)
                return m.get("AsyncEventsSucceeded", 0) + m.get("AsyncEventsDropped", 0) >= events

            done = wait_until(settled, SETTLE_TIMEOUT_S, interval_s=0.25)
            metrics = function_metrics(emulator.url)
        rows_seen = records(starts)
    first_sent = min(sent for sent, _, _ in rows_seen)
    settle_s = max(ended for _, _, ended in rows_seen) - first_sent
    ideal_s = events * HANDLER_S / RESERVED
    handler_s = sum(ended - started for _, started, ended in rows_seen) / len(rows_seen)
    delays = sorted(started - sent for sent, started, _ in rows_seen)
    ratio = settle_s / ideal_s
    peak = metrics.get("ConcurrentExecutionsPeak", 0)
    name = f"8 async backlog ({events:,} events, reserved {RESERVED}, {HANDLER_S * 1000:.0f} ms handler)"
    if done:
        settle = Row(name, "settle time (x ideal)", f"{settle_s:.1f} s ({ratio:.2f}x of {ideal_s:.1f} s)", "-",
                     f"<= {TARGET_RATIO}x ideal", "", verdict(ratio, TARGET_RATIO))  # fmt: skip
    else:  # still report what ran: the figures of a queue that cannot keep up are the point
        settle = Row(name, "settle time (x ideal)", f"not settled after {SETTLE_TIMEOUT_S:.0f} s (> {SETTLE_TIMEOUT_S / ideal_s:.0f}x)",
                     "-", f"<= {TARGET_RATIO}x ideal", "", MISSED)  # fmt: skip
    return [
        settle,
        Row(name, "measured handler time (ideal with it)", f"{handler_s * 1000:.1f} ms ({events * handler_s / RESERVED:.1f} s)"),
        Row(name, "throttles", f"{metrics.get('Throttles', 0):,}"),
        Row(name, "queue-to-start delay p50 (p99)", f"{percentile(delays, 0.5):.2f} s ({percentile(delays, 0.99):.2f} s)"),
        Row(name, "events run / peak concurrency", f"{len(rows_seen):,} / {peak}", "-", f"{events:,} / <= {RESERVED}", "",
            MET if len(rows_seen) == events and peak <= RESERVED else MISSED),  # fmt: skip
    ]
