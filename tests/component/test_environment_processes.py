"""Every process a handler starts ends with its environment, on every host kind: a cgroup
(here: cgroup v1 as root), the resident-memory watchdog, or no memory limits at all.

Handlers start three kinds of processes that a process group does not hold: a grandchild
(behind a shell), a child in a new session, and a double-forked daemon (fork, setsid, fork,
the middle one exits, so the daemon is orphaned while the environment lives on). Then the
environment ends each way it can: timeout, crash, idle reaping, a code change, shutdown.
Memory is capped and reported in each mode; the frame limit holds on both sides.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio

from core_testkit import ProcessId
from environment_kit import Runtime, body, close_runtime, eventually, make_runtime, tail
from emulator.runtimes import protocol, watchdog

pytestmark = pytest.mark.component

# "auto" is a cgroup v1 memory group on this kind of host (root); the other two run as if
# no cgroup could be made.
MODES = ["auto", "watchdog", "none"]


@pytest_asyncio.fixture(params=MODES)
async def mode_rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await make_runtime(tmp_path, memory_limits=request.param)
    yield runtime
    await close_runtime(runtime)


SPAWNER = """
import json, os, subprocess, sys, time

def daemon():
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:  # the daemon: pure Python, never execs
            os.write(w, str(os.getpid()).encode())
            time.sleep(120)
            os._exit(0)
        os._exit(0)  # the middle process exits: the daemon is an orphan from now on
    os.close(w)
    os.waitpid(middle, 0)
    pid = int(os.read(r, 32))
    os.close(r)
    return pid

def handler(event, context):
    shell = subprocess.Popen(["sh", "-c", "sleep 120 & echo $!; wait"], stdout=subprocess.PIPE)
    grandchild = int(shell.stdout.readline())
    new_session = subprocess.Popen(["sleep", "120"], start_new_session=True).pid
    started = {"template": os.getppid(), "env": os.getpid(), "shell": shell.pid, "grandchild": grandchild, "new_session": new_session, "daemon": daemon()}
    with open(event["record"] + ".tmp", "w") as f:
        json.dump(started, f)
    os.rename(event["record"] + ".tmp", event["record"])
    if event.get("action"):  # wait until the test has seen the processes (a barrier it releases)
        for _ in range(1000):
            if os.path.exists(event["record"] + ".go"):
                break
            time.sleep(0.01)
    if event.get("action") == "hang":
        time.sleep(60)
    if event.get("action") == "crash":
        os._exit(3)
    return started
"""


def started_processes(record: Path) -> dict[str, ProcessId]:
    """What the handler started, and its environment (not the template, which lives on)."""
    pids = json.loads(record.read_text())
    return {name: ProcessId.of(pid) for name, pid in pids.items() if name != "template"}


async def invoke_and_end(runtime: Runtime, version: Any, record: Path, action: str) -> tuple[Any, dict[str, ProcessId]]:
    """Invoke with `action` (hang or crash), holding the handler until its processes are known."""
    call = asyncio.ensure_future(runtime.invoke(version, {"record": str(record), "action": action}))
    assert await eventually(record.exists), "the handler never recorded its processes"
    processes = started_processes(record)
    Path(f"{record}.go").touch()
    return await call, processes


async def assert_all_end(processes: dict[str, ProcessId]) -> None:
    assert await eventually(lambda: not any(p.alive for p in processes.values())), {
        name: p.pid for name, p in processes.items() if p.alive
    }


@pytest.mark.asyncio
async def test_timeout_ends_every_process_the_handler_started(mode_rt: Runtime, tmp_path: Path) -> None:
    version = mode_rt.function(SPAWNER, timeout_s=3)
    result, processes = await invoke_and_end(mode_rt, version, tmp_path / "started.json", "hang")
    assert result.error_type == "Sandbox.Timedout"
    await assert_all_end(processes)


@pytest.mark.asyncio
async def test_crash_ends_every_process_the_handler_started(mode_rt: Runtime, tmp_path: Path) -> None:
    version = mode_rt.function(SPAWNER)
    result, processes = await invoke_and_end(mode_rt, version, tmp_path / "started.json", "crash")
    assert result.error_type == "Runtime.ExitError"
    await assert_all_end(processes)


@pytest.mark.asyncio
async def test_processes_live_with_their_environment_and_end_when_it_is_reaped(mode_rt: Runtime, tmp_path: Path) -> None:
    version = mode_rt.function(SPAWNER)
    record = tmp_path / "started.json"
    assert (await mode_rt.invoke(version, {"record": str(record)})).function_error is None
    processes = started_processes(record)
    # Another environment ending (here: one that crashes) takes nothing of this one with it.
    other = mode_rt.function("import os\ndef handler(e, c):\n    os._exit(1)\n", name="other")
    assert (await mode_rt.invoke(other)).error_type == "Runtime.ExitError"
    # A cold start after it: the fork server handles requests in order, so by now it has
    # reaped the crashed environment and killed whatever it meant to kill.
    assert (await mode_rt.invoke(mode_rt.function("def handler(e, c):\n    return 1\n", name="third"))).cold
    await asyncio.sleep(0.1)  # signals are delivered at once; this only lets a wrong kill show
    assert all(p.alive for p in processes.values()), "a live environment lost its processes"
    pool = mode_rt.invoker.pool_for(version)
    assert pool.reap_idle(older_than=float("inf")) == 1
    await assert_all_end(processes)


@pytest.mark.asyncio
async def test_a_code_change_ends_the_old_environment_and_its_processes(mode_rt: Runtime, tmp_path: Path) -> None:
    version = mode_rt.function(SPAWNER)
    record = tmp_path / "started.json"
    assert (await mode_rt.invoke(version, {"record": str(record)})).function_error is None
    mode_rt.invoker.pool_for(version).new_code(version)
    await assert_all_end(started_processes(record))


@pytest.mark.asyncio
async def test_closing_the_factory_ends_every_process(tmp_path: Path) -> None:
    for mode in MODES:
        runtime = await make_runtime(tmp_path, memory_limits=mode)
        version = runtime.function(SPAWNER, name=f"fn-{mode}")
        record = tmp_path / f"started-{mode}.json"
        try:
            assert (await runtime.invoke(version, {"record": str(record)})).function_error is None
            processes = started_processes(record)
            processes["template"] = ProcessId.of(json.loads(record.read_text())["template"])
        finally:
            await close_runtime(runtime)
        await assert_all_end(processes)


# -- memory -----------------------------------------------------------------------------------------
HOG = """
import os, threading, time
def handler(event, context):
    if event.get("threads"):
        done = threading.Event()
        threads = [threading.Thread(target=done.wait) for _ in range(event["threads"])]
        for thread in threads:
            thread.start()
        done.set()
        for thread in threads:
            thread.join()
    block = bytearray(event.get("mb", 0) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page so it is really resident
    if event.get("hold"):
        time.sleep(event["hold"])  # give a sampler time to see it
    return {"pid": os.getpid(), "bytes": len(block)}
"""


def report_field(result_tail: str, field: str) -> int:
    report = [line for line in result_tail.splitlines() if line.startswith("REPORT ")][-1]
    return int(report.split(f"{field}: ")[1].split()[0])


@pytest.mark.parametrize("mode", ["auto", "watchdog"])
@pytest.mark.asyncio
async def test_exceeding_memory_size_is_out_of_memory_with_its_peak_in_report(tmp_path: Path, mode: str) -> None:
    runtime = await make_runtime(tmp_path, memory_limits=mode)
    try:
        assert runtime.factory.memory_mode == ("cgroup-v1" if mode == "auto" else "watchdog")
        version = runtime.function(HOG, memory_mb=128, timeout_s=30)
        fine = await runtime.invoke(version, {"mb": 40})
        assert fine.function_error is None
        hog = ProcessId.of(body(fine)["pid"])
        failed = await runtime.invoke(version, {"mb": 400, "hold": 5})
        assert failed.error_type == "Runtime.OutOfMemory"
        assert body(failed)["errorMessage"] == f"RequestId: {failed.request_id} Error: Runtime exited with error: signal: killed"
        assert "Error Type: Runtime.OutOfMemory" in tail(failed)
        # Lambda reports the memory the environment reached, at most its size.
        assert 100 <= report_field(tail(failed), "Max Memory Used") <= 128
        assert await eventually(lambda: not hog.alive)
        again = await runtime.invoke(version, {"mb": 40})
        assert again.function_error is None and again.cold
    finally:
        await close_runtime(runtime)


@pytest.mark.asyncio
async def test_a_128_mb_function_starts_20_threads_in_every_mode(mode_rt: Runtime) -> None:
    version = mode_rt.function(HOG, memory_mb=128)
    result = await mode_rt.invoke(version, {"threads": 20, "mb": 20})
    assert result.function_error is None, body(result)
    assert report_field(tail(result), "Max Memory Used") > 20


# -- frame limit ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_environment_sending_an_oversized_frame_is_killed_and_reported(rt: Runtime) -> None:
    version = rt.function(
        f"""
        import os, struct, sys
        def handler(event, context):
            if event.get("hostile"):
                # The socket our output travels on: claim a frame bigger than any allowed.
                sys.stdout._sock.sendall(struct.pack("!IB", {protocol.MAX_FRAME + 1}, {protocol.LOG}))
                sys.stdout._sock.sendall(b"x" * 1024)
                return "never delivered"
            return {{"pid": os.getpid()}}
        """,
        timeout_s=30,
    )
    env = ProcessId.of(body(await rt.invoke(version))["pid"])
    hostile = await rt.invoke(version, {"hostile": True})
    assert hostile.function_error == "Unhandled" and hostile.error_type == "Runtime.ExitError"
    assert f"sent a frame of {protocol.MAX_FRAME + 1} bytes" in tail(hostile)
    assert await eventually(lambda: not env.alive)
    assert (await rt.invoke(version)).cold  # the emulator goes on with a new environment


@pytest.mark.asyncio
async def test_an_environment_refuses_an_oversized_frame_from_the_control_plane(rt: Runtime) -> None:
    version = rt.function("def handler(event, context):\n    return 1\n")
    pool = rt.invoker.pool_for(version)
    env = await pool.create()
    assert (await env.wait_ready(10)).ok
    env._transport.write(protocol.HEADER.pack(protocol.MAX_FRAME + 1, protocol.INVOKE))  # type: ignore[union-attr]
    info = await asyncio.wait_for(asyncio.shield(env.exit_info), 10)
    assert info["status"] == f"exit status {protocol.EXIT_BAD_FRAME}"
    assert "exceeds" in rt.emulator_log()


@pytest.mark.asyncio
async def test_huge_output_and_results_stay_within_the_frame_limit(rt: Runtime) -> None:
    version = rt.function(
        f"""
        import os
        def handler(event, context):
            if event.get("print"):
                print("y" * {protocol.MAX_FRAME + 10})
            if event.get("result"):
                return "z" * {protocol.MAX_FRAME}
            return os.getpid()
        """,
        memory_mb=1024,
    )
    pid = body(await rt.invoke(version))
    printed = await rt.invoke(version, {"print": True})
    assert printed.function_error is None and body(printed) == pid  # output is split, not refused
    too_large = await rt.invoke(version, {"result": True})
    assert too_large.error_type == "Function.ResponseSizeTooLarge"
    assert body(await rt.invoke(version)) == pid  # the same environment, still warm
    assert os.path.exists(f"/proc/{pid}")


# -- exited processes -------------------------------------------------------------------------------
def zombie_children(pid: int) -> int:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    states = []
    for child in children:
        try:
            states.append(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
    return states.count("Z")


@pytest.mark.asyncio
async def test_background_processes_that_exit_do_not_pile_up(mode_rt: Runtime) -> None:
    # `cmd &` through a shell: the shell exits at once, cmd is orphaned, then exits too.
    version = mode_rt.function("import os, subprocess\ndef handler(e, c):\n    subprocess.run('true &', shell=True)\n    return os.getpid()\n")
    pool = mode_rt.invoker.pool_for(version)
    first = body(await mode_rt.invoke(version))
    for _ in range(watchdog.ZOMBIE_RECYCLE - 1):  # ZOMBIE_RECYCLE calls in all
        assert body(await mode_rt.invoke(version)) == first
        if mode_rt.factory.cgroups:
            assert zombie_children(first) == 0  # the fork server reaps orphans itself
    if mode_rt.factory.cgroups:
        assert not any(env.recycle for env in pool.members)
        return
    # Every call left one exited process; at ZOMBIE_RECYCLE of them the watchdog's next round
    # (a real-time sampler in the fork server: waited for, bounded) asks for a replacement...
    assert await eventually(lambda: zombie_children(first) == watchdog.ZOMBIE_RECYCLE)
    assert await eventually(lambda: any(env.recycle for env in pool.members)), "never asked to replace the environment"
    # ... so the next call is cold, in a new environment, and the old one ends with its pile.
    replaced = await mode_rt.invoke(version)
    assert replaced.cold and body(replaced) != first
    assert await eventually(lambda: not os.path.exists(f"/proc/{first}"))
