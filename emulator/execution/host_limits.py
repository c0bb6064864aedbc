"""Open files: the control plane's descriptor budget (handlers get Lambda's own limit from
the fork server they are forked from: runtimes/forkserver.py).

The control plane holds descriptors for every execution environment (its socket, the pipe
of its output, its pidfd) and for every client connection. At the common default soft
limit of 1,024 that is not enough for a few hundred concurrent environments, while the
hard limit usually is (systemd's default is 524,288): so the soft limit is raised to the
hard one at start-up, and the number of environments is capped by what the limit allows.
When even the hard limit is too low for the account concurrency, start-up says so and new
environments beyond the cap are throttled (429) instead of failing with EMFILE.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger("emulator.execution.host_limits")

# Descriptors the control plane holds per execution environment: its socket, the read end
# of its output pipe, its pidfd (emulator/execution/pool.py, environment.py).
FDS_PER_ENVIRONMENT = 3
# Each invocation in flight has a client connection (one descriptor) besides its environment.
FDS_PER_CONNECTION = 1
# Everything else: listening socket, event loop, fork-server sockets, log and watcher
# descriptors, the interpreter's own files, connections to the backend at low load.
FDS_RESERVED = 128


@dataclass(frozen=True)
class DescriptorBudget:
    """How many execution environments the open-files limit leaves room for."""

    open_files_limit: int
    hard_limit: int
    environment_limit: int

    @classmethod
    def for_limit(cls, soft: int, hard: int) -> "DescriptorBudget":
        room = max(soft - FDS_RESERVED, 0) // (FDS_PER_ENVIRONMENT + FDS_PER_CONNECTION)
        return cls(soft, hard, max(room, 1))

    def enough_for(self, concurrency: int) -> bool:
        return self.environment_limit >= concurrency

    def snapshot(self) -> dict[str, int]:
        return {"open_files_limit": self.open_files_limit, "environment_limit": self.environment_limit}


def _as_int(limit: int) -> int:
    return 1 << 30 if limit == resource.RLIM_INFINITY else limit


def raise_open_files_limit() -> DescriptorBudget:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the budget that follows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard
        if hard == resource.RLIM_INFINITY:
            target = _nr_open()
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return DescriptorBudget.for_limit(_as_int(soft), _as_int(hard))


def _nr_open() -> int:
    # An unlimited hard limit still cannot exceed the kernel's per-process maximum.
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def warn_if_short(budget: DescriptorBudget, concurrency: int) -> None:
    """Say at start-up, with the fix, when the limit cannot hold the account concurrency."""
    if budget.enough_for(concurrency):
        return
    needed = FDS_RESERVED + concurrency * (FDS_PER_ENVIRONMENT + FDS_PER_CONNECTION)
    log.warning(
        "the open-files limit (%d, hard limit %d) leaves room for %d execution environments, fewer than "
        "the account concurrency (%d): beyond %d, new environments are throttled (429). Raise the hard limit to "
        "at least %d (ulimit -Hn, LimitNOFILE= in a systemd unit, --ulimit nofile= for a container) or lower "
        "--account-concurrency / raise --scale-factor.",
        budget.open_files_limit, budget.hard_limit, budget.environment_limit, concurrency,
        budget.environment_limit, needed,
    )
