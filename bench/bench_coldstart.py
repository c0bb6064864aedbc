"""Benchmark 3: cold-start latency and the emulator's own cold-start overhead.

A template declares many functions with the same tiny code folder; invoking each once is
one cold start each. The handler's own Init Duration (the REPORT line, from the base64
X-Amz-Log-Result that `X-Amz-Log-Type: Tail` asks for) is subtracted from the client's
latency: what remains is what the emulator adds (fork, environment setup, wiring, the
invoke itself). One unmeasured invoke first starts the runtime template process, which
happens once per interpreter, not per cold start.
"""

from __future__ import annotations

import base64
import gc
import re
import time
from pathlib import Path

from harness import TemplateBuilder, scratch_dir, start_emulator
from rawhttp import KeepAliveClient, invoke_request
from report import MISSED, Row, ms, percentile, verdict
from settings import Settings

TARGET_OVERHEAD_MS = 5.0
PEERS = "sls-offline 38; RIC+aiohttp 23; MiniStack 90-140 (latency)"
TRIVIAL_INIT_SOURCE = """\
READY = {"initialised": True}  # trivial init work

def handler(event, context):
    return {}
"""
_INIT_DURATION = re.compile(r"Init Duration: ([\d.]+) ms")
WARMUP_FUNCTION = "cold-warmup"


def init_duration_ms(log_result: str | None) -> float | None:
    if not log_result:
        return None
    match = _INIT_DURATION.search(base64.b64decode(log_result).decode(errors="replace"))
    return float(match.group(1)) if match else None


def one_cold_start(client: KeepAliveClient, name: str, settle_s: float) -> tuple[float, float] | None:
    """(latency, Init Duration) in ms of one invoke of `name` that starts it cold, or None when
    it fails or reports no Init Duration."""
    request = invoke_request(name, b"{}", {"X-Amz-Log-Type": "Tail"})
    gc.collect()
    time.sleep(settle_s)  # let the previous environment settle; one cold start at a time
    start = time.perf_counter_ns()
    response = client.send(request)
    elapsed_ms = (time.perf_counter_ns() - start) / 1e6
    init = init_duration_ms(response.header("X-Amz-Log-Result"))
    if response.status != 200 or init is None:
        return None
    return elapsed_ms, init


def run(settings: Settings) -> list[Row]:
    names = [f"cold-{i:03d}" for i in range(settings.cold_functions)]
    latencies: list[float] = []
    overheads: list[float] = []
    inits: list[float] = []
    failures = 0
    with scratch_dir("cold") as tmp:
        builder = TemplateBuilder(Path(tmp))
        for name in [WARMUP_FUNCTION, *names]:
            builder.add(name, TRIVIAL_INIT_SOURCE)
        with start_emulator(Path(tmp), builder.write()) as emulator:
            with KeepAliveClient(emulator.host, emulator.port) as client:
                # Starts the runtime template.
                client.send(invoke_request(WARMUP_FUNCTION, b"{}", {"X-Amz-Log-Type": "Tail"}))
                for name in names:
                    measured = one_cold_start(client, name, settle_s=0.02)
                    if measured is None:
                        failures += 1
                        continue
                    elapsed_ms, init = measured
                    latencies.append(elapsed_ms)
                    inits.append(init)
                    overheads.append(elapsed_ms - init)
    for values in (latencies, overheads, inits):
        values.sort()
    overhead_p50 = percentile(overheads, 0.5)
    name = f"3 cold start ({settings.cold_functions} fns)"
    return [
        Row(name, "overhead = latency - Init Duration, p50", ms(overhead_p50, 2), "-", f"<= {TARGET_OVERHEAD_MS:.0f} ms",
            PEERS, verdict(overhead_p50, TARGET_OVERHEAD_MS)),  # fmt: skip
        Row(name, "overhead p90", ms(percentile(overheads, 0.9), 2)),
        Row(name, "first-invoke latency p50 / p90", f"{percentile(latencies, 0.5):.2f} / {percentile(latencies, 0.9):.2f} ms"),
        Row(name, "handler Init Duration p50", ms(percentile(inits, 0.5), 2)),
        Row(name, "failed cold invokes", str(failures), "", "0", "", verdict(failures, 0) if latencies else MISSED),
    ]
