"""Arrival schedules of `emulator load` (emulator/load/schedule.py): exact times, no clock."""

from __future__ import annotations

import math

import pytest

from emulator.load.schedule import Schedule, ScheduleError, parse_duration, phase_from_spec


def schedule(*specs: dict) -> Schedule:
    return Schedule([phase_from_spec(spec, i) for i, spec in enumerate(specs)])


def per_second(times: list[float], seconds: int) -> list[int]:
    counts = [0] * seconds
    for t in times:
        counts[int(t)] += 1
    return counts


def test_constant_rate_is_evenly_spaced_and_exact() -> None:
    times = list(schedule({"rate": 10, "duration": 2}).arrivals())
    assert times == pytest.approx([k / 10 for k in range(20)])


def test_ramp_follows_the_integral_of_the_rate() -> None:
    s = schedule({"kind": "ramp", "from": 0, "to": 10, "duration": 2})
    times = list(s.arrivals())
    assert len(times) == 10 == s.expected()  # the area under 0 -> 10 over 2 s
    # The rate is 5 t, so request k is due where 5 t² / 2 = k.
    assert times == pytest.approx([math.sqrt(2 * k / 5) for k in range(10)])
    assert per_second(times, 2) == [3, 7]  # Λ(1) = 2.5


def test_step_is_a_staircase_of_equal_steps() -> None:
    times = list(schedule({"kind": "step", "from": 10, "to": 30, "steps": 3, "duration": 3}).arrivals())
    assert per_second(times, 3) == [10, 20, 30]


def test_spike_adds_a_burst_at_the_peak_rate() -> None:
    s = schedule({"kind": "spike", "rate": 10, "peak": 100, "duration": 10, "spike_duration": 1, "at": 4})
    times = list(s.arrivals())
    assert per_second(times, 10) == [10, 10, 10, 10, 100, 10, 10, 10, 10, 10]
    assert s.rate_at(4.5) == 100 and s.rate_at(3.9) == 10


def test_spike_is_centred_by_default() -> None:
    s = schedule({"kind": "spike", "rate": 1, "peak": 50, "duration": 9, "spike_duration": 1})
    assert per_second(list(s.arrivals()), 9)[4] == 50


def test_phases_follow_each_other_and_each_counts_exactly() -> None:
    s = schedule({"rate": 10, "duration": 1}, {"kind": "ramp", "from": 0, "to": 10, "duration": 2},
                 {"rate": 0, "duration": 1}, {"rate": 3, "duration": 1})
    times = list(s.arrivals())
    assert [s.expected(i) for i in range(4)] == [10, 10, 0, 3]
    assert len(times) == s.expected() == 23
    assert not [t for t in times if 3 <= t < 4]  # the pause
    assert s.phase_at(3.5) == 2 and s.phase_at(4.2) == 3
    assert s.duration == 5


def test_arrivals_match_the_inverse_of_the_intensity() -> None:
    s = schedule({"kind": "ramp", "from": 3, "to": 17, "duration": 4}, {"rate": 7, "duration": 2})
    times = list(s.arrivals())
    for k, t in enumerate(times):
        assert s.intensity(t) == pytest.approx(k, abs=1e-6)
        assert s.time_of(k) == pytest.approx(t)


def test_poisson_arrivals_are_seeded_increasing_and_keep_the_mean() -> None:
    s = schedule({"rate": 1000, "duration": 20})
    first = list(s.arrivals("poisson", seed=42))
    assert first == list(s.arrivals("poisson", seed=42))
    assert first != list(s.arrivals("poisson", seed=43))
    assert all(a < b for a, b in zip(first, first[1:]))
    assert abs(len(first) - 20_000) < 3 * math.sqrt(20_000)  # within three standard deviations
    gaps = [b - a for a, b in zip(first, first[1:])]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(0.001, rel=0.03)
    # Exponential gaps: about as many below the mean as e⁻¹ predicts above it.
    assert sum(1 for g in gaps if g > mean) / len(gaps) == pytest.approx(math.exp(-1), abs=0.02)


def test_poisson_follows_a_ramp() -> None:
    times = list(schedule({"kind": "ramp", "from": 0, "to": 2000, "duration": 10}).arrivals("poisson", seed=1))
    first_half = sum(1 for t in times if t < 5)
    assert first_half / len(times) == pytest.approx(0.25, abs=0.02)  # Λ(5) / Λ(10)


@pytest.mark.parametrize(("raw", "seconds"), [(30, 30.0), ("30", 30.0), ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0),
                                               ("1h", 3600.0), (0.25, 0.25)])
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw, "x") == seconds


@pytest.mark.parametrize("spec", [
    {"kind": "wave", "rate": 1, "duration": 1},
    {"rate": -1, "duration": 1},
    {"rate": "fast", "duration": 1},
    {"rate": 1, "duration": "soon"},
    {"rate": 1, "duration": 0},
    {"rate": 1},
    {"kind": "step", "from": 1, "to": 2, "steps": 0, "duration": 1},
    {"kind": "spike", "rate": 1, "peak": 9, "duration": 2, "spike_duration": 1, "at": 1.5},
])
def test_bad_phases_are_refused_with_the_phase_named(spec: dict) -> None:
    with pytest.raises(ScheduleError, match="phase 1"):
        phase_from_spec(spec, 0)


def test_no_phase_no_schedule() -> None:
    with pytest.raises(ScheduleError):
        Schedule([])
