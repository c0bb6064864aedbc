"""Where an asynchronous delivery's CPU goes: benchmark 15's emulator, one round per mode.

    .venv/bin/python bench/profile_async.py direct,plain,direct,plain [--messages 2000]
        [--py-spy out.txt] [--reserved 4] [--against CHECKOUT]
    .venv/bin/python bench/profile_async.py queue    # the queue's machinery alone, in-process
    .venv/bin/python bench/profile_async.py publish  # PublishBatch latency, with and without subscribers

Starts the emulator of bench/bench_sns.py (`--backend moto`, 10 no-op functions on two
topics), warms it with 100 messages, then runs the rounds in order: `plain` / `filtered`
publish `--messages` messages with PublishBatch (10 deliveries each), `direct` sends the
same number of deliveries as `InvocationType=Event` invokes. Per round it prints the
deliveries per second, the CPU each kind of process used (from /proc: the control plane,
the environments, moto, everything else on the machine) and the cold starts. `--py-spy`
records the control plane during the last round (`py-spy record -f raw`; `pip install
py-spy`). `--reserved N` gives every function reserved concurrency N.

`queue` measures, in-process on uvloop, µs per event of AsyncInvocationQueue (submit, the
scheduler, the lane, the attempt task, the retry decision, the metrics) with an invoke
port that answers after one loop turn, against a bare task per event calling the same
port; 50,000 events in bursts of 1,000 over 10 functions, three alternating rounds.

`publish` times each PublishBatch (10 messages, one keep-alive connection, 100 requests a
round) to a topic without subscriptions and to the one with the 10 Lambda subscriptions,
alternating; p50 and p90 per round.

Used for "Async path" in docs/benchmarks.md, "Where the time goes"; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sns  # noqa: E402
from harness import scratch_dir, start_emulator  # noqa: E402
from rawhttp import KeepAliveClient, invoke_request  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[str, float, int]]:
    """Every process's (command line, CPU seconds so far, parent)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        out[int(entry)] = (command, (int(fields[11]) + int(fields[12])) / TICK, int(fields[1]))
    return out


def machine_cpu() -> tuple[float, float]:
    """(all CPU seconds, idle ones) of the machine so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values) / TICK, (values[3] + values[4]) / TICK


def kind(pid: int, command: str, parents: dict[int, int], control_plane: int) -> str:
    if pid == control_plane:
        return "control plane"
    if descends(pid, parents, control_plane):  # its moto, its fork server and environments
        return "environments" if "_lambda_emulator_runtime" in command else "moto" if "moto_child" in command else "other"
    return "other"


def descends(pid: int, parents: dict[int, int], ancestor: int) -> bool:
    """Whether `ancestor` started `pid`, however many processes lie between (the
    environments are the fork server's, or its template's, children; each its own session)."""
    while pid > 1:
        pid = parents.get(pid, 0)
        if pid == ancestor:
            return True
    return False


def cold_starts(url: str) -> tuple[int, int]:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        functions = json.loads(response.read())["functions"]
    names = [f"sub-{i}" for i in range(bench_sns.SUBSCRIBERS)]
    return (sum(functions[n]["ColdStarts"] for n in names), max(functions[n]["ConcurrentExecutionsPeak"] for n in names))


async def _queue_round(queued: bool, events: int = 50_000, burst: int = 1_000, functions: int = 10) -> float:
    """µs per event through the queue (`queued`) or a bare task per event."""
    import random

    from emulator.clock import ScaledClock
    from emulator.execution.invoker import InvokeResult
    from emulator.functions.metrics import Metrics
    from emulator.functions.registry import FunctionVersion
    from emulator.service.async_queue import AsyncInvocationQueue, AsyncQueuePorts, EventInvokeConfig
    from emulator.template.specs import FunctionSpec

    loop = asyncio.get_running_loop()
    versions = [FunctionVersion(FunctionSpec(name=f"f{i}", code_dir=Path("/nonexistent"), handler="app.handler"),
                                "$LATEST", "us-east-1", "123456789012", 0.0) for i in range(functions)]  # fmt: skip
    by_name = {version.name: version for version in versions}
    finished = asyncio.Event()
    done = 0

    async def invoke(version: Any, payload: bytes, qualifier: Any, request_id: str, **_: Any) -> Any:
        nonlocal done
        reply = loop.create_future()
        loop.call_soon(reply.set_result, None)  # one loop turn, as an environment's answer takes
        await reply
        done += 1
        if done == events:
            finished.set()
        return InvokeResult(b"{}", "$LATEST", request_id)

    config = EventInvokeConfig()
    ports = AsyncQueuePorts(invoke=invoke, resolve=lambda name, qualifier: by_name[name],
                            event_invoke_config=lambda name, qualifier: config, reserved_concurrency=lambda name: None,
                            concurrency_limit=lambda name: 1000, metrics=Metrics())  # fmt: skip
    queue = AsyncInvocationQueue(ports, ScaledClock(1.0, monotonic=loop.time), None, rng=random.Random(0))  # type: ignore[arg-type]
    runner = asyncio.create_task(queue.run())
    tasks = set()
    started = time.perf_counter()
    for first in range(0, events, burst):
        for i in range(first, first + burst):
            version = versions[i % functions]
            if queued:
                queue.submit(version, b"{}", None, f"r{i}")
            else:
                task = asyncio.ensure_future(invoke(version, b"{}", None, f"r{i}"))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.sleep(0)
    await finished.wait()
    elapsed = time.perf_counter() - started
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return elapsed / events * 1e6


def queue_cost() -> None:
    import uvloop

    for _ in range(3):
        bare = uvloop.run(_queue_round(False))
        queued = uvloop.run(_queue_round(True))
        print(f"bare task per event {bare:5.1f} us; through the queue {queued:5.1f} us; the queue's own {queued - bare:5.1f} us")


def publish_latency(emulator: Any) -> None:
    for topic in ("empty", "plain", "empty", "plain"):
        latencies = []
        with KeepAliveClient(emulator.host, emulator.port) as client:
            for request in bench_sns.publish_batch_requests(topic, 1_000):
                started = time.perf_counter()
                response = client.send(request)
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    raise RuntimeError(f"answered {response.status}: {response.body[:300]!r}")
        latencies.sort()
        print(f"{topic}: PublishBatch p50 {latencies[len(latencies) // 2] * 1000:.2f} ms, "
              f"p90 {latencies[int(len(latencies) * 0.9)] * 1000:.2f} ms", flush=True)  # fmt: skip
        if topic == "plain":  # let the deliveries finish before the next round
            time.sleep(3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modes", help="comma-separated rounds: direct, plain, filtered; or queue, or publish")
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--py-spy", dest="py_spy", help="record the control plane during the last round to this file")
    parser.add_argument("--reserved", type=int, help="reserved concurrency of every function")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="A/B: also start an emulator from the checkout in DIR (PYTHONPATH) and run each round on "
                             "both, alternating which goes first; its environments and moto share this venv, so "
                             "each emulator's processes are told apart by their ancestry")
    args = parser.parse_args()
    if args.modes == "queue":
        queue_cost()
        return
    modes = args.modes.split(",")
    deliveries = args.messages * bench_sns.SUBSCRIBERS
    direct = [invoke_request(f"sub-{i % bench_sns.SUBSCRIBERS}", json.dumps({"order": i}).encode(),
                             {"X-Amz-Invocation-Type": "Event"}) for i in range(deliveries)]  # fmt: skip
    with scratch_dir("profile-async") as tmp:
        workdir = Path(tmp)
        template = bench_sns.template(workdir)
        doc = json.loads(template.read_text())
        doc["Resources"]["Empty"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "empty"}}
        for resource in doc["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function" and args.reserved is not None:
                resource["Properties"]["ReservedConcurrentExecutions"] = args.reserved
        template.write_text(json.dumps(doc))
        with ExitStack() as stack:
            emulators = {"ours": stack.enter_context(start_emulator(workdir, template, "--backend", "moto"))}
            if args.against is not None:
                other = workdir / "against"  # its own working directory
                other.mkdir()
                (other / template.name).write_text(template.read_text())
                emulators["against"] = stack.enter_context(start_emulator(
                    other, other / template.name, "--backend", "moto", name="against",
                    env={"PYTHONPATH": str(args.against.resolve())}))
            for emulator in emulators.values():
                bench_sns.drive(emulator, bench_sns.publish_batch_requests("plain", 100), 200, 100 * bench_sns.SUBSCRIBERS)
            if args.modes == "publish":
                for label, emulator in emulators.items():
                    print(f"-- {label}")
                    publish_latency(emulator)
                return
            for index, mode in enumerate(modes):
                order = list(emulators.items())
                for label, emulator in order if index % 2 == 0 else order[::-1]:
                    spy_file = args.py_spy if index == len(modes) - 1 and label == "ours" else None
                    requests = direct if mode == "direct" else bench_sns.publish_batch_requests(mode, args.messages)
                    one_round(emulator, f"{mode}" if len(emulators) == 1 else f"{label} {mode}", requests,
                              202 if mode == "direct" else 200, deliveries, spy_file)


def one_round(emulator: Any, title: str, requests: list[bytes], status: int, deliveries: int,
              spy_file: str | None) -> None:
    spy = None
    if spy_file:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        spy = subprocess.Popen([py_spy, "record", "-r", "200", "-f", "raw", "-o", spy_file, "--pid",
                                str(emulator.pid), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1.0)
    before, (all0, idle0), (cold0, _) = process_cpu(), machine_cpu(), cold_starts(emulator.url)
    seconds, sending = bench_sns.drive(emulator, requests, status, deliveries)
    after, (all1, idle1), (cold1, peak) = process_cpu(), machine_cpu(), cold_starts(emulator.url)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    used: Counter[str] = Counter()
    parents = {pid: parent for pid, (_, _, parent) in after.items()}
    for pid, (command, cpu, _) in after.items():
        used[kind(pid, command, parents, emulator.pid)] += cpu - before.get(pid, (command, 0.0))[1]
    busy = (all1 - all0) - (idle1 - idle0)
    print(f"{title}: {deliveries / seconds:,.0f} deliveries/s ({seconds:.2f} s, {sending:.2f} s of it sending); "
          f"machine {busy / seconds:.2f} of {(all1 - all0) / seconds:.1f} CPUs busy; cold starts {cold1 - cold0}, "
          f"peak concurrency {peak} per function", flush=True)  # fmt: skip
    for name in ("control plane", "environments", "moto", "other"):
        print(f"    {name:14} {used[name] / seconds:.2f} CPU = {used[name] / deliveries * 1e6:5.0f} us per delivery")


if __name__ == "__main__":
    main()
