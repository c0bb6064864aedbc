"""How long and how large each benchmark runs: a full run and a --quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    quick: bool
    latency_warmup: int  # requests before measuring (environment warm, caches hot)
    latency_samples: int
    wrk_seconds: int
    wrk_connections: tuple[int, ...]
    wrk_threads: int
    wrk_rounds: int  # alternating emulator / baseline runs per connection count; the median is reported
    cold_functions: int
    idle_envs: int  # environments held at once, then measured idle (USS)
    big_burst: int  # concurrent 1-second invokes held and completed
    burst_timeout_s: float  # per request of the 1-second bursts: a hang shows as a failure, not a stall
    throttle_burst: int  # concurrent invokes against an account concurrency of THROTTLE_ACCOUNT_LIMIT
    admission_iterations: int  # bench_admission.py micro-benchmark


FULL = Settings(
    quick=False,
    latency_warmup=1_000,
    latency_samples=20_000,
    wrk_seconds=5,
    wrk_connections=(16, 64),
    wrk_threads=2,
    wrk_rounds=3,
    cold_functions=100,
    idle_envs=200,
    big_burst=1_000,
    burst_timeout_s=30.0,
    throttle_burst=10_000,
    admission_iterations=200_000,
)

QUICK = Settings(
    quick=True,
    latency_warmup=300,
    latency_samples=3_000,
    wrk_seconds=3,
    wrk_connections=(16, 64),
    wrk_threads=2,
    wrk_rounds=1,
    cold_functions=30,
    idle_envs=100,
    big_burst=1_000,
    burst_timeout_s=15.0,
    throttle_burst=10_000,
    admission_iterations=30_000,
)

# Benchmark 5: the account concurrency the throttling burst runs against, and its handler time.
THROTTLE_ACCOUNT_LIMIT = 50
THROTTLE_SLEEP_S = 0.05
