"""When each request of an open-loop run is due: phases of rate, and the arrivals they make.

A scenario is a list of phases, each a rate over time that is constant or linear in
pieces: `constant`, `ramp` (linear from one rate to another), `step` (a staircase of equal
steps), `spike` (a base rate with a burst at a peak rate). Together they form one
intensity curve r(t); its integral Λ(t) counts the requests due by time t. Arrivals are
then the inverse of Λ:

* **uniform**: request k is due at Λ⁻¹(k), evenly spaced at the rate of the moment; a phase
  of rate × duration requests has exactly that many;
* **poisson**: request k is due at Λ⁻¹(E₁ + … + E_k) with Eᵢ exponential(1) from a seeded
  RNG (an inhomogeneous Poisson process by time rescaling): random gaps, the same mean.

Open loop: these times are fixed before the run, whatever the responses do; a late send
still counts its latency from the time it was due (emulator/load/engine.py). Pure: times
are seconds from the start of the run, nothing here reads a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PHASE_KINDS = ("constant", "ramp", "step", "spike")
ARRIVALS = ("uniform", "poisson")


class ScheduleError(ValueError):
    """A phase that cannot be scheduled; the message says which and why."""


@dataclass(frozen=True)
class Segment:
    """A piece of the intensity curve: the rate goes linearly from r0 to r1 over [t0, t1)."""

    t0: float
    t1: float
    r0: float
    r1: float
    phase: int  # index of the phase it belongs to

    @property
    def length(self) -> float:
        return self.t1 - self.t0

    @property
    def area(self) -> float:
        return (self.r0 + self.r1) / 2.0 * self.length


@dataclass(frozen=True)
class Phase:
    name: str
    kind: str
    duration: float
    segments: tuple[tuple[float, float, float], ...]  # (length, rate at start, rate at end), in order

    @property
    def peak(self) -> float:
        return max(max(r0, r1) for _, r0, r1 in self.segments)


def _number(spec: Mapping[str, Any], key: str, where: str, *, default: float | None = None, minimum: float = 0.0) -> float:
    raw = spec.get(key, default)
    if raw is None:
        raise ScheduleError(f"{where}: '{key}' is required")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ScheduleError(f"{where}: '{key}' must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ScheduleError(f"{where}: '{key}' must be a number >= {minimum:g}, got {raw!r}")
    return value


def parse_duration(raw: Any, where: str) -> float:
    """Seconds from 30, "30", "30s", "2m", "1h", "500ms"."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().lower()
        units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
        value = math.nan
        for suffix, factor in units:
            if text.endswith(suffix) and _is_float(text[: -len(suffix)]):
                value = float(text[: -len(suffix)]) * factor
                break
        else:
            if _is_float(text):
                value = float(text)
    else:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ScheduleError(f"{where}: a duration must be a positive number of seconds (or 500ms, 30s, 2m, 1h), got {raw!r}")
    return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def phase_from_spec(spec: Mapping[str, Any], index: int) -> Phase:
    """One phase of a scenario's `phases:` list (docs/load-testing.md)."""
    kind = str(spec.get("kind") or ("ramp" if "to" in spec else "constant"))
    name = str(spec.get("name") or f"{kind} {index + 1}")
    where = f"phase {index + 1} ({name})"
    if kind not in PHASE_KINDS:
        raise ScheduleError(f"{where}: kind must be one of {', '.join(PHASE_KINDS)}, got {kind!r}")
    duration = parse_duration(spec.get("duration"), where)
    if kind == "constant":
        rate = _number(spec, "rate", where)
        segments = ((duration, rate, rate),)
    elif kind == "ramp":
        start, end = _number(spec, "from", where, default=spec.get("rate", 0)), _number(spec, "to", where)
        segments = ((duration, start, end),)
    elif kind == "step":
        start, end = _number(spec, "from", where), _number(spec, "to", where)
        steps = int(_number(spec, "steps", where, minimum=1))
        if steps < 1:
            raise ScheduleError(f"{where}: 'steps' must be at least 1")
        width = duration / steps
        rates = [start + (end - start) * i / (steps - 1) for i in range(steps)] if steps > 1 else [end]
        segments = tuple((width, rate, rate) for rate in rates)
    else:  # spike
        base, peak = _number(spec, "rate", where), _number(spec, "peak", where)
        length = parse_duration(spec.get("spike_duration", min(duration, 1.0)), where)
        at = float(parse_duration(spec["at"], where)) if spec.get("at") not in (None, 0, "0") else (duration - length) / 2
        if at + length > duration + 1e-9:
            raise ScheduleError(f"{where}: the spike ({at:g} s + {length:g} s) does not fit in {duration:g} s")
        pieces = [(at, base, base), (length, peak, peak), (duration - at - length, base, base)]
        segments = tuple(piece for piece in pieces if piece[0] > 1e-12)
    return Phase(name, kind, duration, segments)


class Schedule:
    """The intensity curve of a run's phases, and the arrivals it makes."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ScheduleError("a scenario needs at least one phase")
        self.phases = tuple(phases)
        segments: list[Segment] = []
        t = 0.0
        for index, phase in enumerate(self.phases):
            for length, r0, r1 in phase.segments:
                segments.append(Segment(t, t + length, r0, r1, index))
                t += length
        self.segments = tuple(segments)
        self.duration = t
        # Λ at the start of each segment.
        self._base: list[float] = []
        total = 0.0
        for segment in self.segments:
            self._base.append(total)
            total += segment.area
        self.total_intensity = total
        self.phase_starts = []
        start = 0.0
        for phase in self.phases:
            self.phase_starts.append(start)
            start += phase.duration

    def rate_at(self, t: float) -> float:
        for segment in self.segments:
            if segment.t0 <= t < segment.t1:
                return segment.r0 + (segment.r1 - segment.r0) * (t - segment.t0) / segment.length
        return 0.0

    def phase_at(self, t: float) -> int:
        for index in range(len(self.phases) - 1, -1, -1):
            if t >= self.phase_starts[index]:
                return index
        return 0

    def intensity(self, t: float) -> float:
        """Λ(t): requests due in [0, t)."""
        if t <= 0:
            return 0.0
        for segment, base in zip(self.segments, self._base):
            if t < segment.t1:
                x = t - segment.t0
                slope = (segment.r1 - segment.r0) / segment.length
                return base + segment.r0 * x + slope * x * x / 2.0
        return self.total_intensity

    def expected(self, phase: int | None = None) -> int:
        """Uniform arrivals: how many requests the run (or one phase) makes, exactly."""
        if phase is None:
            return math.ceil(self.total_intensity - 1e-9)
        start = self.phase_starts[phase]
        end = start + self.phases[phase].duration
        return math.ceil(self.intensity(end) - 1e-9) - math.ceil(self.intensity(start) - 1e-9)

    def time_of(self, amount: float) -> float | None:
        """Λ⁻¹(amount): when the intensity reaches `amount`; None past the end of the run."""
        if amount >= self.total_intensity:
            return None
        for index in range(len(self.segments)):
            segment, base = self.segments[index], self._base[index]
            if amount < base + segment.area:
                need = amount - base
                if need <= 0:
                    return segment.t0
                slope = (segment.r1 - segment.r0) / segment.length
                if abs(slope) < 1e-12:
                    return segment.t0 + need / segment.r0
                # r0 x + slope x² / 2 = need  ->  the positive root.
                root = (-segment.r0 + math.sqrt(max(0.0, segment.r0 * segment.r0 + 2.0 * slope * need))) / slope
                return segment.t0 + min(max(root, 0.0), segment.length)
        return None

    def arrivals(self, kind: str = "uniform", seed: int | None = None) -> Iterator[float]:
        """The due times of every request, in order: Λ⁻¹ of 0, 1, 2 ... (uniform) or of the
        partial sums of exponential(1) draws (poisson). One pass over the segments, each
        time in closed form (the same as `time_of`, without its search)."""
        if kind not in ARRIVALS:
            raise ScheduleError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {kind!r}")
        rng = random.Random(seed)
        draw = rng.expovariate
        poisson = kind == "poisson"
        amount = draw(1.0) if poisson else 0.0
        k = 0
        sqrt = math.sqrt
        for segment, base in zip(self.segments, self._base):
            end = base + segment.area
            t0, r0, length = segment.t0, segment.r0, segment.length
            slope = (segment.r1 - r0) / length
            flat = abs(slope) < 1e-12
            while amount < end:
                need = amount - base
                if need <= 0:
                    t = t0
                elif flat:
                    t = t0 + need / r0
                else:
                    root = (-r0 + sqrt(max(0.0, r0 * r0 + 2.0 * slope * need))) / slope
                    t = t0 + min(max(root, 0.0), length)
                yield t
                k += 1
                amount = amount + draw(1.0) if poisson else float(k)
