"""emulator.policy.backoff: the doubling step and the two jitters every retry loop uses."""

from __future__ import annotations

import random

from emulator.policy.backoff import doubling_step, equal_jitter, full_jitter


def test_the_step_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [doubling_step(n, 1.0, 60.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert doubling_step(10**9, 0.5, 8.0) == 8.0  # a huge count is no huge integer
    assert doubling_step(-1, 0.5, 8.0) == 0.5


def test_full_jitter_draws_anywhere_up_to_the_step_and_equal_jitter_in_its_upper_half() -> None:
    rng = random.Random(3)
    full = [full_jitter(8.0, rng) for _ in range(2_000)]
    equal = [equal_jitter(8.0, rng) for _ in range(2_000)]
    assert 0.0 <= min(full) < 0.1 and 7.9 < max(full) <= 8.0
    assert 4.0 <= min(equal) < 4.1 and 7.9 < max(equal) <= 8.0
    assert full_jitter(1.0, rng, floor=1.0) == 1.0  # a step at its floor leaves nothing to draw
    assert 1.0 <= full_jitter(4.0, rng, floor=1.0) <= 4.0


def test_a_seeded_source_gives_the_same_delays() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [full_jitter(doubling_step(n, 1.0, 60.0), rng) for n in range(6)]

    assert delays(5) == delays(5) and delays(5) != delays(6)
