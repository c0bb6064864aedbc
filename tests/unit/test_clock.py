"""emulator.clock: scaled and virtual time, driven by fake time sources (no sleeps)."""

from __future__ import annotations

import math

import pytest

from emulator.clock import Clock, ScaledClock, VirtualClock


class FakeMonotonic:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_scaled_clock_runs_scale_times_faster_from_creation() -> None:
    real = FakeMonotonic(500.0)
    clock = ScaledClock(scale=20.0, monotonic=real, wall=lambda: 1_000_000.0)
    assert clock.now() == 500.0
    assert clock.wall() == 1_000_000.0
    real.t = 502.5  # 2.5 real seconds
    assert clock.now() == 550.0
    assert clock.wall() == 1_000_050.0


def test_scaled_clock_wall_follows_monotonic_not_the_host_clock() -> None:
    real = FakeMonotonic(0.0)
    host_wall = iter([1_000.0, 9_999_999.0])  # a later host clock jump must be ignored
    clock = ScaledClock(scale=2.0, monotonic=real, wall=lambda: next(host_wall))
    real.t = 10.0
    assert clock.wall() == 1_020.0


def test_scaled_clock_to_real_divides_by_scale_and_never_goes_negative() -> None:
    clock = ScaledClock(scale=20.0, monotonic=FakeMonotonic(0.0), wall=lambda: 0.0)
    assert clock.to_real(60.0) == 3.0
    assert clock.to_real(-5.0) == 0.0
    assert clock.scale == 20.0


def test_default_scaled_clock_is_real_time() -> None:
    clock = ScaledClock()
    assert clock.scale == 1.0
    assert clock.to_real(1.5) == 1.5
    assert clock.now() <= clock.now()


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_scaled_clock_rejects_bad_scale(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        ScaledClock(scale=scale)


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(start=100.0, wall_start=1_700_000_000.0)
    assert clock.now() == 100.0
    assert clock.wall() == 1_700_000_000.0
    clock.advance(0.25)
    assert clock.now() == 100.25
    assert clock.wall() == 1_700_000_000.25
    clock.set(160.0)
    assert clock.now() == 160.0
    assert clock.wall() == 1_700_000_060.0


def test_virtual_clock_delays_cost_no_real_time() -> None:
    clock = VirtualClock()
    assert clock.to_real(3600.0) == 0.0
    assert clock.scale == math.inf


def test_virtual_clock_is_monotonic() -> None:
    clock = VirtualClock(start=10.0)
    with pytest.raises(ValueError):
        clock.advance(-1.0)
    with pytest.raises(ValueError):
        clock.set(9.0)
    clock.set(10.0)  # standing still is allowed
    assert clock.now() == 10.0


def test_both_clocks_satisfy_the_protocol() -> None:
    def reading(clock: Clock) -> tuple[float, float, float]:
        return clock.now(), clock.wall(), clock.to_real(1.0)

    assert reading(VirtualClock()) == (0.0, 1_700_000_000.0, 0.0)
    scaled = ScaledClock(scale=4.0, monotonic=FakeMonotonic(1.0), wall=lambda: 2.0)
    assert reading(scaled) == (1.0, 2.0, 0.25)


def test_a_clock_built_from_another_clocks_origin_shares_its_timeline() -> None:
    """The poller process builds its clock from the control plane's origin
    (sources/poller_host.py): both read the same emulated now() and wall(), whenever the
    child started, so a restarted child's timers neither jump nor drift."""
    real = FakeMonotonic(100.0)
    parent = ScaledClock(scale=10.0, monotonic=real, wall=lambda: 1_000_000.0)
    real.t = 130.0  # the child starts 30 real seconds later, its wall clock elsewhere
    child = ScaledClock(scale=10.0, monotonic=real, wall=lambda: 5.0, origin=parent.origin)
    assert (child.now(), child.wall()) == (parent.now(), parent.wall()) == (400.0, 1_000_300.0)
    real.t = 131.5
    assert (child.now(), child.wall()) == (parent.now(), parent.wall()) == (415.0, 1_000_315.0)


def test_the_poller_process_keeps_the_control_planes_timeline() -> None:
    from emulator.sources.base import SourcesConfig
    from emulator.sources.poller_host import PollerHostSettings

    parent = ScaledClock(scale=30.0)
    settings = PollerHostSettings("http://127.0.0.1:1", "us-east-1", "123456789012", parent.scale, SourcesConfig(),
                                  clock_origin=parent.origin)
    child = PollerHostSettings.from_json(settings.to_json()).clock()
    assert child.origin == parent.origin and child.scale == parent.scale
    # Read in either order, each reading of one lies within the other's two readings.
    first, middle, last = parent.now(), child.now(), parent.now()
    assert first <= middle <= last
    first, middle, last = parent.wall(), child.wall(), parent.wall()
    assert first <= middle <= last
