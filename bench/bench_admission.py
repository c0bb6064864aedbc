"""Cost of one admission: ConcurrencyLedger.admit + ScalingRateModel.try_take + release.

Target: median <= 20 µs. Timing is measured here, never asserted in tests (a loaded
machine would make such tests flaky). Run: `.venv/bin/python bench/bench_admission.py [iterations]`.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable

from emulator.policy.concurrency import ConcurrencyLedger
from emulator.policy.scaling import ScalingMode, ScalingRateConfig, ScalingRateModel

DEFAULT_ITERATIONS = 200_000
# Virtual time step per iteration: 10 ms lets the default bucket refill one token per
# admission, so every iteration takes the cold-start path and spends a token.
STEP_S = 0.01
FUNCTIONS = [f"fn-{i}" for i in range(64)]  # spread over many dict keys, like a real app


def measure(name: str, one: Callable[[int], None], iterations: int) -> None:
    samples = [0] * iterations
    clock = time.perf_counter_ns
    gc.disable()  # a collection pause is not admission cost
    try:
        for i in range(iterations):
            start = clock()
            one(i)
            samples[i] = clock() - start
    finally:
        gc.enable()
    samples.sort()
    median_us = statistics.median(samples) / 1000
    p99_us = samples[int(iterations * 0.99)] / 1000
    print(f"{name:<34} median {median_us:6.2f} µs   p99 {p99_us:6.2f} µs   (n={iterations})")


def admission_cycle(mode: ScalingMode, qualifier: str | None, reserved: int | None) -> Callable[[int], None]:
    ledger = ConcurrencyLedger()
    model = ScalingRateModel(ScalingRateConfig(mode=mode))
    for function in FUNCTIONS:
        if reserved is not None:
            ledger.set_reserved(function, reserved)
        if qualifier is not None:
            ledger.set_provisioned(function, qualifier, 1)
    count = len(FUNCTIONS)

    def one(i: int) -> None:
        function = FUNCTIONS[i % count]
        admission = ledger.admit(function, qualifier)
        if admission.admitted and not admission.provisioned:
            model.try_take(function, i * STEP_S)
        ledger.release(admission)

    return one


def take_only() -> Callable[[int], None]:
    model = ScalingRateModel()
    count = len(FUNCTIONS)

    def one(i: int) -> None:
        model.try_take(FUNCTIONS[i % count], i * STEP_S)

    return one


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ITERATIONS
    print(f"Python {sys.version.split()[0]}; per iteration: admit + try_take + release")
    measure("unreserved, current model", admission_cycle(ScalingMode.CURRENT, None, None), iterations)
    measure("reserved 10, current model", admission_cycle(ScalingMode.CURRENT, None, 10), iterations)
    measure("provisioned slot (no token)", admission_cycle(ScalingMode.CURRENT, "live", 10), iterations)
    measure("unreserved, legacy model", admission_cycle(ScalingMode.LEGACY, None, None), iterations)
    measure("ScalingRateModel.try_take alone", take_only(), iterations)


if __name__ == "__main__":
    main()
