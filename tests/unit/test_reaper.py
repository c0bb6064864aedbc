"""The keep-alive reaper (emulator/execution/reaper.py) in virtual time.

A shell test with `looptime`: the reaper's sleeps return at once while `loop.time()`
advances, and both the clock and the environments' last-use stamps read `loop.time()`, so
the test says exactly when each environment goes. The environments are real
ExecutionEnvironment state machines in a real EnvironmentPool, without processes behind them
(a reaped one moves to STOPPING; closing its process is the component tests' business).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator, cast

import pytest

from emulator.clock import ScaledClock
from emulator.execution.environment import EnvState, ExecutionEnvironment
from emulator.execution.pool import EnvironmentFactory, EnvironmentPool
from emulator.execution.reaper import REAPER_INTERVAL_S, reap_idle_environments
from emulator.functions.registry import FunctionVersion
from emulator.template.specs import FunctionSpec

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]


def new_pool() -> EnvironmentPool:
    spec = FunctionSpec(name="Fn", code_dir=Path("/nonexistent"), handler="index.handler")
    version = FunctionVersion(spec, "$LATEST", "us-east-1", "123456789012", 0.0)
    return EnvironmentPool(cast(EnvironmentFactory, None), version)  # the factory only creates; nothing is created here


def ready_environment(pool: EnvironmentPool, name: str, *, provisioned: bool = False) -> ExecutionEnvironment:
    env = ExecutionEnvironment(name, on_log=lambda line: None)
    env.transition(EnvState.READY)
    env.provisioned = provisioned
    pool.members.add(env)
    return env


@contextlib.asynccontextmanager
async def reaping(pool: EnvironmentPool, keep_alive_s: float, scale: float) -> AsyncIterator[asyncio.AbstractEventLoop]:
    loop = asyncio.get_running_loop()
    assert loop.time() == 0.0
    clock = ScaledClock(scale, monotonic=loop.time)
    reaper = asyncio.create_task(reap_idle_environments(lambda: [pool], keep_alive_s, clock, monotonic=loop.time))
    try:
        yield loop
    finally:
        reaper.cancel()
        await asyncio.gather(reaper, return_exceptions=True)


async def test_an_idle_environment_goes_at_the_first_tick_past_its_keep_alive() -> None:
    pool = new_pool()
    early, late = ready_environment(pool, "early"), ready_environment(pool, "late")
    # --time-scale 60: the keep-alive of 300 emulated seconds is 5 real ones.
    async with reaping(pool, keep_alive_s=300, scale=60) as loop:
        pool.give_back(early, loop.time())  # idle from 0 s
        await asyncio.sleep(2.5)
        pool.give_back(late, loop.time())  # idle from 2.5 s
        await asyncio.sleep(3.0)  # 5.5 s: the tick at 5 s found `early` idle exactly 5 s: kept
        assert (early.state, late.state) == (EnvState.READY, EnvState.READY)
        await asyncio.sleep(1.0)  # 6.5 s: the tick at 6 s reaped it
        assert (early.state, late.state) == (EnvState.STOPPING, EnvState.READY)
        assert pool.idle == [late] and early not in pool.members
        await asyncio.sleep(1.0)  # 7.5 s: `late` has been idle 5 s at the tick at 7 s: kept
        assert late.state is EnvState.READY
        await asyncio.sleep(1.0)  # 8.5 s: gone at the tick at 8 s
        assert late.state is EnvState.STOPPING and pool.idle == []


async def test_use_restarts_the_keep_alive() -> None:
    pool = new_pool()
    env = ready_environment(pool, "reused")
    async with reaping(pool, keep_alive_s=300, scale=60) as loop:
        pool.give_back(env, loop.time())
        for _ in range(4):  # used every 4 s, forever inside its 5 s keep-alive
            await asyncio.sleep(4.0)
            assert pool.take_idle() is env
            pool.give_back(env, loop.time())
        assert env.state is EnvState.READY
        await asyncio.sleep(5.5)  # 21.5 s: idle exactly 5 s at the tick at 21 s: kept
        assert env.state is EnvState.READY
        await asyncio.sleep(1.0)
        assert env.state is EnvState.STOPPING


async def test_provisioned_environments_are_never_reaped() -> None:
    pool = new_pool()
    provisioned = ready_environment(pool, "provisioned", provisioned=True)
    async with reaping(pool, keep_alive_s=300, scale=1) as loop:
        pool.give_back(provisioned, loop.time())
        await asyncio.sleep(3 * 300)
        assert provisioned.state is EnvState.READY and pool.provisioned_idle == [provisioned]
        assert loop.time() == 900  # three keep-alives of ticks, in no real time


async def test_a_keep_alive_shorter_than_the_interval_is_checked_at_its_own_pace() -> None:
    pool = new_pool()
    env = ready_environment(pool, "brief")
    # 30 emulated seconds at scale 60: half a real second, less than REAPER_INTERVAL_S.
    assert REAPER_INTERVAL_S > 0.5
    async with reaping(pool, keep_alive_s=30, scale=60) as loop:
        pool.give_back(env, loop.time())
        await asyncio.sleep(0.75)  # the tick at 0.5 s saw it idle exactly 0.5 s: kept
        assert env.state is EnvState.READY
        await asyncio.sleep(0.5)  # the tick at 1.0 s reaped it
        assert env.state is EnvState.STOPPING
