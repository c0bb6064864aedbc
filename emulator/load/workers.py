"""Worker processes: each runs an `Engine` on its own event loop (and core), sending every
`workers`-th request of the one schedule, so N workers together send exactly the
scenario's requests at their due times.

Workers are spawned (not forked: the parent may have threads, as a pytest process with an
emulator does), report `ready`, then all start at one monotonic instant the parent
chooses (CLOCK_MONOTONIC is the same for every process of the machine). Twice a second
each sends its figures since the last time (`ClientSeries.drain`), and at the end `done`.
A worker that fails sends the traceback; a worker that dies is noticed by its pipe.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from emulator.load.engine import Engine, EngineSettings
from emulator.load.payloads import PayloadSource, PayloadSpec
from emulator.load.schedule import Phase, Schedule
from emulator.load.series import ClientSeries
from emulator.load.targets import RequestBuilder, TargetSpec

FLUSH_S = 0.5
READY_TIMEOUT_S = 60.0
# Workers start together this long after the last one is ready.
START_DELAY_S = 0.3
POLL_S = 0.25
PRECONNECT_S = 0.005
MIN_PRECONNECT = 4
JOIN_TIMEOUT_S = 5.0


class WorkerFailed(RuntimeError):
    """A worker process failed; the message carries its traceback."""


@dataclass(frozen=True)
class WorkerJob:
    worker: int
    workers: int
    target: TargetSpec
    payload: PayloadSpec
    phases: tuple[Phase, ...]
    arrivals: str
    seed: int | None
    max_in_flight: int  # this worker's share
    timeout_s: float


def worker_main(job: WorkerJob, conn: multiprocessing.connection.Connection) -> None:
    """The child process's entry point."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:  # one descriptor per connection: max_in_flight may exceed the default 1,024
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        try:
            import uvloop

            uvloop.run(_work(job, conn))
        except ImportError:
            asyncio.run(_work(job, conn))
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        conn.close()


async def _work(job: WorkerJob, conn: multiprocessing.connection.Connection) -> None:
    series = ClientSeries()
    builder = RequestBuilder(job.target, PayloadSource(job.payload, job.worker, job.seed))
    engine = Engine(EngineSettings(job.target.host, job.target.port, job.max_in_flight, job.timeout_s, job.target.kind),
                    builder, series)
    schedule = Schedule(job.phases)
    await engine.preconnect(preconnections(schedule, job))
    conn.send(("ready",))
    message = conn.recv()
    if message[0] != "start":
        return
    start = float(message[1])
    arrivals = ((k, t) for k, t in enumerate(schedule.arrivals(job.arrivals, job.seed)) if k % job.workers == job.worker)

    async def flush() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            conn.send(("stats", series.drain()))

    flusher = asyncio.ensure_future(flush())
    try:
        await engine.run(arrivals, start)
    finally:
        flusher.cancel()
    conn.send(("stats", series.drain()))
    conn.send(("done", time.process_time()))  # this worker's CPU seconds, for the report


def preconnections(schedule: Schedule, job: WorkerJob) -> int:
    """Connections to open before the start: what PRECONNECT_S of the peak rate keeps busy
    when answers are quick (more open as needed, up to max_in_flight)."""
    peak = max(phase.peak for phase in schedule.phases) / job.workers
    return min(job.max_in_flight, max(MIN_PRECONNECT, int(peak * PRECONNECT_S)))


def jobs_for(base: WorkerJob, workers: int, max_in_flight: int) -> list[WorkerJob]:
    share = -(-max_in_flight // workers)  # each worker its part of the in-flight budget, rounded up
    return [replace(base, worker=i, workers=workers, max_in_flight=share) for i in range(workers)]


def run_workers(jobs: list[WorkerJob], series: ClientSeries, on_tick: Callable[[float], None]) -> list[float]:
    """Run the jobs to the end, merging their figures into `series`; `on_tick(start)` is
    called about every POLL_S. Returns each worker's CPU seconds."""
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = []
    conns: list[multiprocessing.connection.Connection] = []
    try:
        for job in jobs:
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(job, child), name=f"load-worker-{job.worker}", daemon=True)
            process.start()
            child.close()
            processes.append(process)
            conns.append(parent)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for conn in conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerFailed("a load worker did not start in time")
            _expect(conn.recv(), "ready")
        start = time.monotonic() + START_DELAY_S
        for conn in conns:
            conn.send(("start", start))
        running = set(conns)
        cpu: list[float] = []
        while running:
            for conn in multiprocessing.connection.wait(list(running), timeout=POLL_S):
                try:
                    message = conn.recv()
                except EOFError:
                    raise WorkerFailed("a load worker exited without finishing its requests") from None
                if message[0] == "stats":
                    series.merge(message[1])
                elif message[0] == "done":
                    running.discard(conn)  # type: ignore[arg-type]
                    cpu.append(float(message[1]))
                else:
                    _expect(message, "stats")
            on_tick(start)
        on_tick(start)
        return cpu
    finally:
        for process in processes:
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():
                process.terminate()
                process.join(JOIN_TIMEOUT_S)
        for conn in conns:
            conn.close()


def _expect(message: tuple[Any, ...], kind: str) -> None:
    if message[0] == "error":
        raise WorkerFailed(f"a load worker failed:\n{message[1]}")
    if message[0] != kind:
        raise WorkerFailed(f"a load worker said {message[0]!r} where {kind!r} was expected")
