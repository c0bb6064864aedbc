"""Supervised child processes: an exit noticed at once, an end with a grace, restarts within a budget.

Used for the moto backend (emulator/backend/moto_process.py) and the poller process
(sources/poller_process.py); `stop_process` also ends the fork server
(emulator/execution/forkserver_client.py). One implementation, so each child is waited
for the same way: no polling loop, every child reaped (never a zombie), and a child that
dies over and over is restarted after a growing delay and then given up on
(emulator/policy/restarts.py), instead of being restarted at once forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from emulator.policy.restarts import RestartHistory, RestartPolicy, after_death, started


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"killed by signal {-returncode} ({name})"
    return f"exit status {returncode}"


def log_output(proc: subprocess.Popen[Any], logger: logging.Logger, what: str) -> threading.Thread:
    """Log what `proc` writes on its stderr pipe (a warning per chunk, as it arrives), read in
    a thread that ends with the pipe: never on the event loop, and never left unread (a full
    pipe would block the child)."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()

    def pump() -> None:
        try:
            while chunk := os.read(fd, 65536):
                text = chunk.decode(errors="replace").rstrip()
                if text:
                    logger.warning("%s (pid %d): %s", what, proc.pid, text)
        except OSError:
            pass
        finally:
            proc.stderr.close()  # type: ignore[union-attr]

    reader = threading.Thread(target=pump, name=f"{what}-stderr-{proc.pid}", daemon=True)
    reader.start()
    return reader


class ExitWatch:
    """Calls `on_exit()` on the running loop as soon as `proc` exits: a pidfd the loop watches
    (Linux >= 5.3), else a thread blocked in waitpid. The exit is not reaped here unless the
    thread did it: the callback calls `proc.wait()`, which then returns at once."""

    def __init__(self, proc: subprocess.Popen[Any], on_exit: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_exit = on_exit
        self._pidfd: int | None = None
        self._closed = False
        if proc.returncode is not None:  # already reaped
            self._loop.call_soon(self._fire)
            return
        try:
            self._pidfd = os.pidfd_open(proc.pid)  # readable once the process exits
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_in_thread, args=(proc,), name=f"exit-watch-{proc.pid}",
                             daemon=True).start()
            return
        self._loop.add_reader(self._pidfd, self._fire)

    def _wait_in_thread(self, proc: subprocess.Popen[Any]) -> None:
        proc.wait()
        try:
            self._loop.call_soon_threadsafe(self._fire)
        except RuntimeError:  # the loop is closed: nobody supervises any more
            pass

    def _fire(self) -> None:
        if not self._closed:
            self.close()
            self._on_exit()

    def close(self) -> None:
        """Stop watching (idempotent); a waiter thread ends with its process."""
        self._closed = True
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(pidfd)
            os.close(pidfd)


async def stop_process(proc: subprocess.Popen[Any], grace_s: float, *, terminate: bool = True) -> int:
    """End `proc`: SIGTERM (unless the caller already asked it to exit its own way, e.g. by
    closing its socket), up to `grace_s` for it to exit, then SIGKILL; always reaped, also
    when the caller is cancelled meanwhile. Returns its exit status."""
    if proc.poll() is not None:
        return proc.returncode
    exited = asyncio.get_running_loop().create_future()
    watch = ExitWatch(proc, lambda: exited.done() or exited.set_result(None))
    try:
        if terminate:
            proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(exited), grace_s)
        except asyncio.TimeoutError:
            proc.kill()
            await exited
    except BaseException:  # cancelled: still leave nothing behind
        proc.kill()
        proc.wait()
        raise
    finally:
        watch.close()
    return proc.wait()


class SupervisedChild:
    """The current process of one kind of child, and its restart budget.

    The owner starts a process and hands it to `watch`; `on_exit` runs on the loop as soon as
    it exits, reaped. The owner then asks `restart_delay()`: how long to wait before starting
    the next one, or None when the child died too often in a row and must be given up on.
    """

    def __init__(self, name: str, policy: RestartPolicy | None = None) -> None:
        self.name = name
        self.policy = policy or RestartPolicy()
        self.proc: subprocess.Popen[Any] | None = None
        self._history = RestartHistory()
        self._watch: ExitWatch | None = None

    @property
    def in_a_row(self) -> int:
        """Restarts since the child last ran for the policy's stable_after_s."""
        return self._history.in_a_row

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def starting(self) -> None:
        """A start (or restart attempt) begins now."""
        self._history = started(self._history, self._now())

    def restart_delay(self) -> float | None:
        """A death (or a failed restart attempt) now: the delay before the next start, or None to give up."""
        delay, self._history = after_death(self.policy, self._history, self._now())
        return delay

    def watch(self, proc: subprocess.Popen[Any], on_exit: Callable[[subprocess.Popen[Any]], None] | None) -> None:
        """`proc` is the current child; `on_exit(proc)` runs once it exited and was reaped
        (None: the owner notices its death another way, e.g. the end of its socket)."""
        self.unwatch()
        self.proc = proc
        if on_exit is None:
            return

        def exited() -> None:
            proc.wait()  # reaped: the watch said it exited
            on_exit(proc)

        self._watch = ExitWatch(proc, exited)

    def unwatch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    async def stop(self, grace_s: float, *, terminate: bool = True) -> int | None:
        """End the current child (see stop_process) without calling its on_exit; None if there was none."""
        self.unwatch()
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        return await stop_process(proc, grace_s, terminate=terminate)
