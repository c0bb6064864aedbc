"""The resident-memory watchdog's rules in virtual time, with scripted samples (the real
sampler and kills are exercised by tests/component/test_environment_processes.py and the
unprivileged-host scenario tests)."""

from __future__ import annotations

import pytest

from emulator.runtimes.proctree import TreeSample
from emulator.runtimes.watchdog import MAX_DUTY, MIN_INTERVAL_S, ZOMBIE_RECYCLE, MemoryWatchdog, Watched, reported_peak_kb

MB = 1024 * 1024


class Samples:
    """Scripted resident memory per PID, in KiB; a PID without a value has exited."""

    def __init__(self) -> None:
        self.rss_kb: dict[int, int] = {}
        self.zombies: dict[int, int] = {}

    def __call__(self, pid: int) -> TreeSample | None:
        return TreeSample(self.rss_kb[pid], self.zombies.get(pid, 0)) if pid in self.rss_kb else None


def test_nothing_is_due_until_something_is_watched_and_the_interval_passed() -> None:
    dog = MemoryWatchdog(Samples())
    assert dog.timeout(0.0) is None
    dog.watch(1, 128 * MB, now=10.0)
    assert dog.timeout(10.0) == pytest.approx(MIN_INTERVAL_S)
    assert dog.tick(10.0, lambda: 10.0).kill == []  # not due yet


def test_an_environment_over_its_size_is_killed_once_and_marked_out_of_memory() -> None:
    samples = Samples()
    dog = MemoryWatchdog(samples)
    dog.watch(1, 128 * MB, now=0.0)
    dog.watch(2, 128 * MB, now=0.0)
    samples.rss_kb.update({1: 100 * 1024, 2: 129 * 1024})
    now = MIN_INTERVAL_S
    assert dog.tick(now, lambda: now).kill == [2]
    assert dog.watched[2].oom and not dog.watched[1].oom
    samples.rss_kb[2] = 300 * 1024  # still dying: not killed twice
    now += MIN_INTERVAL_S
    assert dog.tick(now, lambda: now).kill == []
    assert dog.watched[2].peak_kb == 300 * 1024 and dog.watched[1].peak_kb == 100 * 1024


def test_measure_only_mode_records_peaks_but_kills_nothing() -> None:
    samples = Samples()
    dog = MemoryWatchdog(samples, enforce=False)
    dog.watch(1, 128 * MB, now=0.0)
    samples.rss_kb[1] = 500 * 1024
    assert dog.tick(1.0, lambda: 1.0).kill == []
    assert dog.watched[1].peak_kb == 500 * 1024 and not dog.watched[1].oom


def test_a_gone_environment_is_skipped_and_forgetting_the_last_stops_the_rounds() -> None:
    dog = MemoryWatchdog(Samples())
    dog.watch(7, 128 * MB, now=0.0)
    assert dog.tick(1.0, lambda: 1.0).kill == []
    forgotten = dog.forget(7)
    assert forgotten is not None and (forgotten.limit_kb, forgotten.peak_kb, forgotten.oom) == (128 * 1024, 0, False)
    assert dog.timeout(2.0) is None and dog.forget(7) is None


def test_slow_rounds_stretch_the_interval_to_keep_the_duty_cycle() -> None:
    samples = Samples()
    dog = MemoryWatchdog(samples)
    dog.watch(1, 128 * MB, now=0.0)
    samples.rss_kb[1] = 1024
    dog.tick(1.0, lambda: 1.01)  # a 10 ms round
    assert dog.interval_s == pytest.approx(0.01 / MAX_DUTY)
    assert dog.timeout(1.01) == pytest.approx(dog.interval_s)
    dog.tick(1.01 + dog.interval_s, lambda: 1.01 + dog.interval_s)  # an instant round
    assert dog.interval_s == MIN_INTERVAL_S


def test_reported_peak_is_the_larger_measure_and_at_most_memory_size_after_a_kill() -> None:
    assert reported_peak_kb(None, 5000) == 5000
    assert reported_peak_kb(Watched(limit_kb=131072, peak_kb=90000), 40000) == 90000
    assert reported_peak_kb(Watched(limit_kb=131072, peak_kb=200000, oom=True), 150000) == 131072


def test_an_environment_holding_too_many_exited_processes_is_replaced_once() -> None:
    samples = Samples()
    dog = MemoryWatchdog(samples, enforce=False)
    dog.watch(1, 128 * MB, now=0.0)
    samples.rss_kb[1] = 1024
    samples.zombies[1] = ZOMBIE_RECYCLE - 1
    assert dog.tick(1.0, lambda: 1.0).recycle == []
    samples.zombies[1] = ZOMBIE_RECYCLE
    assert dog.tick(2.0, lambda: 2.0).recycle == [1]
    assert dog.tick(3.0, lambda: 3.0).recycle == []  # asked once
