"""The keep-alive reaper: stops environments that stayed idle longer than the keep-alive.

AWS keeps an idle environment "for some time" and does not say how long
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html); the
emulator keeps it `--keep-alive` emulated seconds (README, "Choices where AWS is ambiguous").
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Iterable

from emulator.clock import Clock
from emulator.execution.pool import EnvironmentPool

# How often idle environments are looked at (real seconds): an environment goes at most
# this much later than its keep-alive says.
REAPER_INTERVAL_S = 1.0


async def reap_idle_environments(
    pools: Callable[[], Iterable[EnvironmentPool]],
    keep_alive_s: float,
    clock: Clock,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    interval_s: float = REAPER_INTERVAL_S,
) -> None:
    """Run until cancelled. `keep_alive_s` is emulated time, on the one clock.

    Environments record when they were last used on the real `monotonic` timeline (the
    invoker stamps them), so the keep-alive is turned into real seconds once and compared
    there; tests pass the event loop's (virtual) time as `monotonic`.
    """
    keep_alive_real = clock.to_real(keep_alive_s)
    period = min(interval_s, keep_alive_real) or interval_s
    while True:
        await asyncio.sleep(period)
        horizon = monotonic() - keep_alive_real
        for pool in list(pools()):
            pool.reap_idle(horizon)
