"""Keep the user's secrets out of handlers' reach: the control plane's own process.

Handlers run as the same user as the emulator (often root), so a handler could read
`/proc/<emulator pid>/environ`: the environment of the shell that ran `emulator up`, with
its real AWS keys and tokens. Two measures, both at start-up:

* the process is made non-dumpable (`PR_SET_DUMPABLE` 0): another process of the same
  non-root user can no longer open its `/proc/<pid>/environ` or `/proc/<pid>/mem`;
* its initial environment block is wiped. The kernel serves `/proc/<pid>/environ` from
  the memory range `env_start..env_end` (fields 50 and 51 of `/proc/self/stat`), even to
  root. Every entry of the C `environ` array that points into that range is first moved
  to a heap copy, so getenv, os.environ and child processes see the same variables as
  before; then the range is zeroed.

Linux only; elsewhere (or if anything is unexpected) both are skipped.
"""

from __future__ import annotations

import ctypes
import logging

from emulator.runtimes import proctree

log = logging.getLogger("emulator.execution.process_hardening")

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
# 1-based field numbers of env_start and env_end in /proc/<pid>/stat (proc(5), Linux 3.5+).
_ENV_START_FIELD = 50
_ENV_END_FIELD = 51


def harden_control_plane() -> None:
    """Make this process non-dumpable and wipe its initial environment block (idempotent)."""
    make_non_dumpable()
    scrub_initial_environment()


def make_non_dumpable() -> bool:
    return proctree.prctl(PR_SET_DUMPABLE, 0)


def _environment_block() -> tuple[int, int] | None:
    try:
        with open("/proc/self/stat") as f:
            raw = f.read()
        # Fields after the command name (in parentheses, may hold spaces) start at field 3.
        fields = raw[raw.rindex(")") + 2 :].split()
        return int(fields[_ENV_START_FIELD - 3]), int(fields[_ENV_END_FIELD - 3])
    except (OSError, ValueError, IndexError):
        return None


def scrub_initial_environment() -> bool:
    """Move the C environment to the heap and zero the block /proc/<pid>/environ reads."""
    block = _environment_block()
    if block is None:
        return False
    start, end = block
    if not 0 < start < end:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.strdup.restype = ctypes.c_void_p
        libc.strdup.argtypes = [ctypes.c_void_p]
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    except (OSError, AttributeError, ValueError):
        return False
    index = 0
    while environ[index]:
        entry = environ[index]
        if start <= entry < end:
            copy = libc.strdup(entry)
            if not copy:  # out of memory: leave the block as it is rather than lose a variable
                log.warning("could not copy the environment; /proc/<pid>/environ still shows it")
                return False
            environ[index] = copy  # one aligned pointer store: readers see the old or the new copy
        index += 1
    ctypes.memset(start, 0, end - start)
    return True
