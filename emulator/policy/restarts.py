"""When to restart a supervised process that died, and when to give up (pure, time passed in).

The moto backend (emulator/backend/moto_process.py) is restarted after an unexpected exit,
after a delay that doubles with each restart in a row, and given up on after
`max_restarts` restarts in a row: a backend that dies again at once (a broken install, a
port taken) is then reported as failed instead of being restarted forever. A process that
ran for `stable_after_s` since its last start (or restart attempt) is healthy again: its
next death starts the count anew. A restart attempt that fails counts as a death.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.policy.backoff import doubling_step


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5  # restarts in a row before giving up
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0
    stable_after_s: float = 60.0  # a run this long resets the count


@dataclass(frozen=True)
class RestartHistory:
    in_a_row: int = 0  # restarts since the process last ran for stable_after_s
    started_at: float = 0.0  # when the last start (or restart attempt) began


def after_death(policy: RestartPolicy, history: RestartHistory, now: float) -> tuple[float | None, RestartHistory]:
    """(delay before the restart, or None to give up; the history to keep) for a death at `now`."""
    in_a_row = 0 if now - history.started_at >= policy.stable_after_s else history.in_a_row
    if in_a_row >= policy.max_restarts:
        return None, RestartHistory(in_a_row, history.started_at)
    delay = doubling_step(in_a_row, policy.first_delay_s, policy.max_delay_s)
    return delay, RestartHistory(in_a_row + 1, history.started_at)


def started(history: RestartHistory, now: float) -> RestartHistory:
    """The history as a start or restart attempt begins at `now`."""
    return RestartHistory(history.in_a_row, now)
