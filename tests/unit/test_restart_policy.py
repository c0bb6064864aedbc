"""When a dead backend is restarted, and when it is given up on (emulator/policy/restarts.py), in virtual time."""

from __future__ import annotations

from emulator.policy.restarts import RestartHistory, RestartPolicy, after_death, started

POLICY = RestartPolicy(max_restarts=3, first_delay_s=0.5, max_delay_s=1.5, stable_after_s=60.0)


def deaths(times: list[float], restarted_after: float = 0.1) -> list[float | None]:
    """The delays chosen for deaths at `times`, each restart attempt beginning after its delay."""
    history = started(RestartHistory(), 0.0)
    delays = []
    for now in times:
        delay, history = after_death(POLICY, history, now)
        delays.append(delay)
        if delay is not None:
            history = started(history, now + delay + restarted_after)
    return delays


def test_delays_double_up_to_the_cap_then_give_up() -> None:
    assert deaths([1.0, 3.0, 6.0, 9.0]) == [0.5, 1.0, 1.5, None]


def test_a_stable_run_starts_the_count_anew() -> None:
    assert deaths([1.0, 3.0, 100.0, 102.0, 300.0]) == [0.5, 1.0, 0.5, 1.0, 0.5]


def test_failed_restart_attempts_count_even_after_a_long_run() -> None:
    # The backend ran for an hour, then every restart attempt fails at once.
    history = started(RestartHistory(), 0.0)
    now, delays = 3_600.0, []
    for _ in range(5):
        delay, history = after_death(POLICY, history, now)
        delays.append(delay)
        if delay is None:
            break
        history = started(history, now + delay)
        now += delay + 0.2  # the attempt fails 0.2 s after it began
    assert delays == [0.5, 1.0, 1.5, None]

