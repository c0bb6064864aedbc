"""Benchmark 1: warm invoke latency, one keep-alive connection, sequential requests.

The client is rawhttp.KeepAliveClient (prebuilt request bytes, no parsing beyond the status
line and Content-Length), so the figures are the server's, not a heavy client's. The same
loop against the echo baseline shows the floor set by aiohttp + loopback TCP + this client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import NOOP_SOURCE, ServerProcess, TemplateBuilder, scratch_dir, start_echo_baseline, start_emulator
from rawhttp import invoke_request, sequential_latencies
from report import Row, ms, percentile, verdict
from settings import Settings

TARGET_P50_MS = 0.25
TARGET_P99_MS = 1.0
# Shipping function logs to CloudWatch Logs may cost a warm invoke at most this share (issue 10).
CLOUDWATCH_BUDGET = 0.05
PEERS = "sls-offline 0.56/3.5; RIC+aiohttp 0.45/0.55; MiniStack 8"
FUNCTION = "noop"
ROUNDS = 5  # blocks per server, interleaved
WARMUP_PER_BLOCK = 50  # a fresh connection per block


@dataclass
class LatencyFigures:
    p50: float
    p90: float
    p99: float
    p999: float
    mean: float
    rate: float  # sequential requests per second
    non_200: int


def measure(host: str, port: int, warmup: int, samples: int) -> list[float]:
    """Latencies in ms of `samples` sequential invokes on one connection, after `warmup`."""
    return sequential_latencies(host, port, invoke_request(FUNCTION, b"{}"), warmup, samples)


def summarise(times: list[float]) -> LatencyFigures:
    ok = sorted(t for t in times if t >= 0)
    return LatencyFigures(
        p50=percentile(ok, 0.50),
        p90=percentile(ok, 0.90),
        p99=percentile(ok, 0.99),
        p999=percentile(ok, 0.999),
        mean=sum(ok) / len(ok) if ok else float("nan"),
        rate=1000.0 / (sum(ok) / len(ok)) if ok else 0.0,
        non_200=len(times) - len(ok),
    )


def interleaved(servers: dict[str, ServerProcess], settings: Settings) -> dict[str, LatencyFigures]:
    """Alternate blocks between the servers, so a change in the machine's load (it is shared)
    hits every server alike instead of whichever happened to run at that moment."""
    samples: dict[str, list[float]] = {name: [] for name in servers}
    block = max(1, settings.latency_samples // ROUNDS)
    for round_number in range(ROUNDS):
        for name, server in servers.items():
            warmup = settings.latency_warmup if round_number == 0 else WARMUP_PER_BLOCK
            samples[name] += measure(server.host, server.port, warmup, block)
    return {name: summarise(values) for name, values in samples.items()}


def run(settings: Settings) -> list[Row]:
    with scratch_dir("latency") as tmp:
        workdir = Path(tmp)
        template = TemplateBuilder(workdir).add(FUNCTION, NOOP_SOURCE).write()
        # With a moto backend and logs on, with and without CloudWatch Logs shipping. The
        # switch is an environment variable, so an older checkout (--emulator-src) that has
        # no shipping starts both alike: the pair is then a control.
        moto_logs = ("--log-invocations", "true", "--backend", "moto")
        with start_echo_baseline(workdir) as echo, start_emulator(workdir, template) as emulator, start_emulator(
            workdir, template, "--log-invocations", "true", name="emulator-logging"
        ) as logging_emulator, start_emulator(
            workdir, template, *moto_logs, name="emulator-cloudwatch", env={"EMULATOR_CLOUDWATCH_LOGS": "true"}
        ) as cloudwatch, start_emulator(
            workdir, template, *moto_logs, name="emulator-no-cloudwatch", env={"EMULATOR_CLOUDWATCH_LOGS": "false"}
        ) as no_cloudwatch:
            figures = interleaved({"echo": echo, "ours": emulator, "logging": logging_emulator,
                                   "cloudwatch": cloudwatch, "no-cloudwatch": no_cloudwatch}, settings)
    ours, base, logging_on = figures["ours"], figures["echo"], figures["logging"]
    shipped, plain = figures["cloudwatch"], figures["no-cloudwatch"]
    name = "1 warm invoke, 1 conn"
    n = f" (n={settings.latency_samples:,})"
    return [
        Row(name, "p50" + n, ms(ours.p50), ms(base.p50), f"<= {TARGET_P50_MS} ms", PEERS, verdict(ours.p50, TARGET_P50_MS)),
        Row(name, "p99", ms(ours.p99), ms(base.p99), f"<= {TARGET_P99_MS} ms", "", verdict(ours.p99, TARGET_P99_MS)),
        Row(name, "p50 added over the echo baseline", f"+{ours.p50 - base.p50:.3f} ms", "", "", "the emulator's own share"),
        Row(name, "p90 / p99.9", f"{ours.p90:.3f} / {ours.p999:.3f} ms", f"{base.p90:.3f} / {base.p999:.3f} ms"),
        Row(name, "sequential rate (1 / mean)", f"{ours.rate:,.0f} req/s", f"{base.rate:,.0f} req/s"),
        Row(name, "non-200 responses", str(ours.non_200), str(base.non_200), "0", "", verdict(ours.non_200, 0)),
        Row(name, "p50 / p99, --log-invocations true", f"{logging_on.p50:.3f} / {logging_on.p99:.3f} ms", "", "",
            "default setting; logs to a file here"),  # fmt: skip
        Row(name, "p50 / p99, moto backend + logs, CloudWatch Logs on", f"{shipped.p50:.3f} / {shipped.p99:.3f} ms",
            f"{plain.p50:.3f} / {plain.p99:.3f} ms", f"<= +{CLOUDWATCH_BUDGET:.0%}",
            "baseline column: the same with CloudWatch Logs off", verdict(shipped.p50, plain.p50 * (1 + CLOUDWATCH_BUDGET))),
    ]
