"""The one clock of the emulator.

Every time-dependent policy takes its `now` from a `Clock`, never from `time.*` directly,
so the same code runs on a time-scaled clock in fast scenarios and on a `VirtualClock`
in unit tests that advance time by hand and never sleep.

Two timelines exist: *emulated* seconds (what the AWS rules are written in: "retry after
60 s", "1,000 environments every 10 s") and *real* seconds (what `asyncio.sleep` waits).
`to_real` is the only bridge from the first to the second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

# Epoch seconds a VirtualClock reports at its start: a fixed date keeps timestamps in
# test output stable (2023-11-14T22:13:20Z).
DEFAULT_VIRTUAL_WALL_START = 1_700_000_000.0


class Clock(Protocol):
    """Emulated time. `now` is monotonic; `wall` is epoch seconds on the same timeline."""

    # How many emulated seconds pass per real second.
    scale: float

    def now(self) -> float: ...

    def wall(self) -> float: ...

    def to_real(self, emulated_seconds: float) -> float: ...


class ScaledClock:
    """Emulated time runs `scale` times faster than real time, counted from creation.

    Both readings derive from the one monotonic source, so `wall` never jumps when the
    host's clock is adjusted; only its starting point comes from the real wall clock.

    Another process shares this timeline by building its clock with this one's `origin`:
    the monotonic clock is the system's (CLOCK_MONOTONIC), the same in every process.
    """

    __slots__ = ("scale", "_monotonic", "_t0", "_wall0")

    def __init__(
        self,
        scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        origin: tuple[float, float] | None = None,
    ) -> None:
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"clock scale must be a finite number > 0, got {scale!r}")
        self.scale = float(scale)
        self._monotonic = monotonic
        if origin is None:
            self._t0 = monotonic()
            self._wall0 = wall()
        else:
            self._t0, self._wall0 = float(origin[0]), float(origin[1])

    @property
    def origin(self) -> tuple[float, float]:
        """(monotonic, wall) at the start of this timeline: what another process needs to share it."""
        return self._t0, self._wall0

    def _elapsed(self) -> float:
        return (self._monotonic() - self._t0) * self.scale

    def now(self) -> float:
        return self._t0 + self._elapsed()

    def wall(self) -> float:
        # _elapsed() written out: the timeline reads this once per invocation.
        return self._wall0 + (self._monotonic() - self._t0) * self.scale

    def to_real(self, emulated_seconds: float) -> float:
        # Callers pass `deadline - now`, which is negative once a deadline has passed:
        # that means "do not wait", not an error.
        return max(0.0, emulated_seconds) / self.scale


class VirtualClock:
    """Time that moves only when a test says so; emulated delays cost no real time.

    `scale` is infinite: consistent with `to_real` returning 0 for every delay.
    """

    __slots__ = ("scale", "_now", "_start", "_wall_start")

    def __init__(
        self, start: float = 0.0, wall_start: float = DEFAULT_VIRTUAL_WALL_START
    ) -> None:
        self.scale = math.inf
        self._start = float(start)
        self._now = float(start)
        self._wall_start = float(wall_start)

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_start + (self._now - self._start)

    def to_real(self, emulated_seconds: float) -> float:
        return 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds!r} s)")
        self._now += seconds

    def set(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"a monotonic clock cannot go back (from {self._now!r} to {t!r})")
        self._now = float(t)
