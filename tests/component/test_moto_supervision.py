"""The moto child under supervision (emulator/backend/moto_process.py), killed by its PID:
noticed at once, restarted on the same port with the restart hook run, given up on after
too many restarts in a row, and every child reaped."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from emulator.backend.moto_process import BackendState, MotoServer
from emulator.policy.restarts import RestartPolicy

pytestmark = pytest.mark.component

WAIT_S = 60.0  # bound for a moto start on a loaded machine


async def until(predicate, timeout_s: float = WAIT_S) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child any more: it was waited for
    return False


def test_restart_then_give_up_after_too_many_in_a_row() -> None:
    async def scenario() -> None:
        server = MotoServer(policy=RestartPolicy(max_restarts=1, first_delay_s=0.01, stable_after_s=3_600))
        hook_runs = []

        async def on_restart() -> None:
            assert server.state is BackendState.RESTARTING  # provisioned before it is reported running
            hook_runs.append(server.url)

        server.on_restart = on_restart
        await server.start()
        try:
            url, first = server.url, server.pid
            assert first is not None and server.unavailable_reason() is None
            os.kill(first, signal.SIGKILL)
            await until(lambda: server.state is not BackendState.RUNNING)
            assert server.last_exit == "killed by signal 9 (SIGKILL)"
            assert "restarted" in (server.unavailable_reason() or "")
            await until(lambda: server.state is BackendState.RUNNING)
            second = server.pid
            assert server.url == url and second not in (None, first) and server.restarts == 1
            assert hook_runs == [url]
            assert reaped(first)

            os.kill(second, signal.SIGKILL)  # a second death in a row: the policy allows one restart
            await until(lambda: server.state is BackendState.FAILED)
            assert server.last_exit == "killed by signal 9 (SIGKILL)"
            assert "not restarted again" in (server.unavailable_reason() or "")
            assert server.describe()["pid"] is None and hook_runs == [url]
            assert reaped(second)
        finally:
            await server.stop()
        assert server.state is BackendState.STOPPED

    asyncio.run(scenario())


def test_a_stopped_backend_is_not_restarted() -> None:
    async def scenario() -> None:
        server = MotoServer(policy=RestartPolicy(first_delay_s=0.01))
        await server.start()
        pid = server.pid
        assert pid is not None
        await server.stop()
        assert server.state is BackendState.STOPPED and reaped(pid)
        assert len(server._tasks) == 0 and server.restarts == 0  # its exit scheduled no restart

    asyncio.run(scenario())
