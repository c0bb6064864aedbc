"""Benchmark 6: event sources. The SQS path through moto, SQS and Kinesis mappings, and
invoke latency while pollers are busy. Everything in one run:

1. raw backend ceiling: moto's server called directly (no emulator), plain moto and moto
   with emulator/moto_child/fast_sqs.py, on a short queue and with 100,000 messages queued
   (filled in-process by bench/moto_prefilled.py: plain moto cannot be filled through its
   API). SendMessageBatch(10) and ReceiveMessage(10) + DeleteMessageBatch, messages/s,
   4 keep-alive client threads. The short queue holds at most 500 messages (rounds of 500
   sent, then received and deleted); plain moto at 100,000 gets one call of each.
2. through the emulator (`emulator up --backend moto`): SendMessageBatch through its one
   endpoint while 100,000+ messages are queued; then an SQS mapping (BatchSize 10, no-op
   handler) created on the full queue, messages deleted per second; warm invoke latency
   of another no-op function on one keep-alive connection (bench_latency's client) before
   the mapping exists, while it drains, and after, its pollers idle in long polls;
3. a 4-shard Kinesis stream filled first, then a mapping (BatchSize 100, TRIM_HORIZON),
   records processed per second;
4. side by side: two emulators on the machine at once, one draining a queue at full speed,
   the other quiet; blocks of warm invokes of the no-op function alternate between them,
   each on a blocking keep-alive `http.client` connection. Both see the same machine (the
   drain's CPU load included), so the ratio of their tails is what sharing the draining
   emulator's event loop costs an unrelated invocation.

The clients speak the AWS JSON protocols directly (prebuilt bodies on keep-alive
connections): boto3 would cost the benchmark more CPU than the servers it measures.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import bench_latency
from client_threads import each_on_a_thread
from harness import (BENCH_DIR, NOOP_SOURCE, ServerProcess, TemplateBuilder, children, cmdline, scratch_dir, start_answering,
                     start_emulator)
from report import Row, percentile, verdict
from settings import Settings

from emulator.backend.moto_process import free_port

# Targets (issue 4, "Benchmarks"): messages/s with 100,000 queued, records/s, latency ratio.
TARGET_SEND_PER_S = 3_000
TARGET_DRAIN_PER_S = 3_000
TARGET_KINESIS_PER_S = 5_000
LATENCY_TOLERANCE = 0.20
PEER_SEND = "moto server ~960/s (short queue)"
PEER_DRAIN = "Python peer ~700/s"
PEER_KINESIS = "peer ~1,500/s"

DEEP = 100_000
SHORT_QUEUE = 500  # most messages in the "short" queue
CLIENT_THREADS = 4
BODY = "x" * 100
REGION, ACCOUNT = "us-east-1", "123456789012"
NOOP_NONE = "def handler(event, context):\n    return None\n"
BUSY_AFTER_S = 2.0  # after the first delete, before the busy latency block
STEADY_UNTIL = 0.95
# A steady load the mapping keeps up with (pollers busy, the machine not saturated): the
# second "busy" condition of the latency comparison.
PACED_PER_S = 1_000
PACED_WARMUP_S = 3.0
PACED_SECONDS_PER_SAMPLE = 0.002  # the producer outlasts the latency block  # the steady drain rate ends when this share of the queue is deleted
CALL_TIMEOUT_S = 180.0  # one plain-moto ReceiveMessage at 100,000 messages takes tens of seconds
DRAIN_TIMEOUT_S = 150.0


@dataclass(frozen=True)
class Sizes:
    short_seconds: float  # each short-queue measurement
    deep_seconds: float  # each 100,000-message measurement of the fast model
    extra_sends: int  # messages sent through the emulator once 100,000 are queued
    latency_samples: int
    kinesis_records: int
    side_by_side_messages: int  # queued in the draining emulator of the side-by-side comparison
    side_by_side_rounds: int  # blocks per emulator, alternating


FULL = Sizes(short_seconds=4, deep_seconds=5, extra_sends=20_000, latency_samples=5_000, kinesis_records=40_000,
             side_by_side_messages=100_000, side_by_side_rounds=10)
QUICK = Sizes(short_seconds=2, deep_seconds=3, extra_sends=10_000, latency_samples=2_000, kinesis_records=20_000,
              side_by_side_messages=60_000, side_by_side_rounds=6)
SIDE_BY_SIDE_BLOCK = 300  # invokes per block
SIDE_BY_SIDE_WARMUP = 200


# -- a lean AWS JSON client ------------------------------------------------------------------
class AwsJsonClient:
    """One keep-alive connection speaking an AWS JSON protocol; reconnects after a close."""

    def __init__(self, url: str, service: str, target_prefix: str, content_type: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=CALL_TIMEOUT_S)
        self.target_prefix = target_prefix
        self.headers = {
            "Content-Type": content_type,
            "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIAEMULATORBENCH000/20240101/{REGION}/{service}/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        }

    def call(self, action: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.connection.request("POST", "/", data, {**self.headers, "X-Amz-Target": f"{self.target_prefix}.{action}"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{action} answered {response.status}: {payload[:300]!r}")
        return json.loads(payload) if payload else {}

    def close(self) -> None:
        self.connection.close()


def sqs_client(url: str) -> AwsJsonClient:
    return AwsJsonClient(url, "sqs", "AmazonSQS", "application/x-amz-json-1.0")


def kinesis_client(url: str) -> AwsJsonClient:
    return AwsJsonClient(url, "kinesis", "Kinesis_20131202", "application/x-amz-json-1.1")


def send_batch_body(queue_url: str) -> bytes:
    return json.dumps({"QueueUrl": queue_url, "Entries": [{"Id": str(i), "MessageBody": BODY} for i in range(10)]}).encode()


def in_parallel(url: str, step: Callable[[AwsJsonClient], int], *, seconds: float, max_items: int,
                threads: int = CLIENT_THREADS) -> tuple[int, float]:
    """Run `step` (returns messages handled, 0 = nothing left) on `threads` connections until
    `seconds` pass or `max_items` are handled; returns (items, elapsed seconds)."""
    lock = threading.Lock()
    done = [0]
    deadline = time.monotonic() + seconds

    def worker(_: int) -> None:
        client = sqs_client(url)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if done[0] >= max_items:
                        return
                handled = step(client)
                if not handled:
                    return
                with lock:
                    done[0] += handled
        finally:
            client.close()

    elapsed = each_on_a_thread(worker, range(threads))
    return done[0], elapsed


def sender(queue_url: str) -> Callable[[AwsJsonClient], int]:
    body = send_batch_body(queue_url)
    return lambda client: 10 - len(client.call("SendMessageBatch", body).get("Failed", []))


def receiver_deleter(queue_url: str) -> Callable[[AwsJsonClient], int]:
    receive = json.dumps({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "MessageSystemAttributeNames": ["All"],
                          "MessageAttributeNames": ["All"]}).encode()

    def step(client: AwsJsonClient) -> int:
        messages = client.call("ReceiveMessage", receive).get("Messages", [])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            client.call("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
        return len(messages)

    return step


def per_s(items: int, seconds: float) -> float:
    return items / seconds if seconds > 0 else float("nan")


def rate(value: float) -> str:
    return f"{value:,.0f} msg/s" if value >= 10 else f"{value:.2f} msg/s"


# -- 1. the raw backend ceiling ------------------------------------------------------------------
def start_moto(workdir: Path, fast: bool, deep_queue: str) -> ServerProcess:
    argv = [sys.executable, str(BENCH_DIR / "moto_prefilled.py"), "--fast" if fast else "--plain", "--queue", deep_queue,
            "--messages", str(DEEP), "-p", str(free_port())]  # fmt: skip
    server = ServerProcess("moto-fast" if fast else "moto-plain", argv, workdir)
    # It prints its URL once the queue is full.
    return start_answering(server, lambda url: sqs_client(url).call("ListQueues", {}), timeout_s=30)


def short_queue_rounds(url: str, queue_url: str, sizes: Sizes) -> tuple[float, float]:
    """Rounds of SHORT_QUEUE messages sent, then received and deleted, so the queue stays
    short; (send, drain) messages/s over every round that fits in the time budget."""
    sent = drained = 0
    send_s = drain_s = 0.0
    while send_s + drain_s < sizes.short_seconds or not sent:
        count, seconds = in_parallel(url, sender(queue_url), seconds=60, max_items=SHORT_QUEUE)
        sent, send_s = sent + count, send_s + seconds
        count, seconds = in_parallel(url, receiver_deleter(queue_url), seconds=60, max_items=SHORT_QUEUE)
        drained, drain_s = drained + count, drain_s + seconds
    return per_s(sent, send_s), per_s(drained, drain_s)


def backend_ceiling(workdir: Path, sizes: Sizes) -> dict[str, float]:
    figures: dict[str, float] = {}
    for fast in (False, True):
        kind = "fast" if fast else "plain"
        with start_moto(workdir, fast, "deep") as server:
            control = sqs_client(server.url)
            short_url = control.call("CreateQueue", {"QueueName": "short"})["QueueUrl"]
            deep_url = control.call("GetQueueUrl", {"QueueName": "deep"})["QueueUrl"]
            control.close()
            figures[f"{kind} short send"], figures[f"{kind} short drain"] = short_queue_rounds(server.url, short_url, sizes)
            if fast:
                figures["fast deep send"] = per_s(*in_parallel(server.url, sender(deep_url), seconds=sizes.deep_seconds,
                                                               max_items=10**9))
                figures["fast deep drain"] = per_s(*in_parallel(server.url, receiver_deleter(deep_url),
                                                                seconds=sizes.deep_seconds, max_items=10**9))
            else:  # one call each: a call takes tens of seconds
                figures["plain deep send"] = per_s(*in_parallel(server.url, sender(deep_url), seconds=0.001, max_items=1,
                                                                threads=1))
                figures["plain deep drain"] = per_s(*in_parallel(server.url, receiver_deleter(deep_url), seconds=0.001,
                                                                 max_items=1, threads=1))
    return figures


# -- 2. SQS through the emulator ---------------------------------------------------------------------
def metrics(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        return json.loads(response.read())


def mapping_of(url: str, function: str) -> dict[str, Any]:
    for mapping in metrics(url).get("event_source_mappings", {}).values():
        if mapping["FunctionArn"].endswith(":" + function):
            return mapping
    return {}


def queue_depth(client: AwsJsonClient, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = client.call("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names})["Attributes"]
    return sum(int(attributes[name]) for name in names)


def create_mapping(url: str, function: str, source_arn: str, **extra: Any) -> None:
    request = urllib.request.Request(
        url + "/2015-03-31/event-source-mappings/", method="POST",
        data=json.dumps({"FunctionName": function, "EventSourceArn": source_arn, **extra}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def latency(emulator: ServerProcess, samples: int) -> bench_latency.LatencyFigures:
    return bench_latency.summarise(bench_latency.measure(emulator.host, emulator.port, 200, samples))


class DeletedSampler:
    """Samples a mapping's MessagesDeleted (and pollers) on a thread, every 0.25 s."""

    def __init__(self, url: str, function: str) -> None:
        self.url, self.function = url, function
        self.samples: list[tuple[float, int, int]] = []  # (time, deleted, pollers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            mapping = mapping_of(self.url, self.function)
            self.samples.append((time.perf_counter(), int(mapping.get("MessagesDeleted", 0)), int(mapping.get("Pollers", 0))))
            self._stop.wait(0.25)

    def deleted(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def __enter__(self) -> "DeletedSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sqs_through_emulator(emulator: ServerProcess, sizes: Sizes) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    control = sqs_client(emulator.url)
    queue_url = control.call("CreateQueue", {"QueueName": "bench-drain"})["QueueUrl"]
    count, seconds = in_parallel(emulator.url, sender(queue_url), seconds=600, max_items=DEEP)
    figures["fill"] = per_s(count, seconds)
    count, seconds = in_parallel(emulator.url, sender(queue_url), seconds=600, max_items=sizes.extra_sends)
    figures["send at depth"] = per_s(count, seconds)
    total = queue_depth(control, queue_url)
    figures["queued"] = total
    figures["latency idle, no pollers"] = latency(emulator, sizes.latency_samples)
    create_mapping(emulator.url, "sqs-noop", f"arn:aws:sqs:{REGION}:{ACCOUNT}:bench-drain", BatchSize=10)
    with DeletedSampler(emulator.url, "sqs-noop") as sampler:
        started = time.perf_counter()
        while sampler.deleted() == 0 and time.perf_counter() - started < 30:
            time.sleep(0.05)
        time.sleep(BUSY_AFTER_S)  # pollers up to speed
        before = sampler.deleted()
        figures["latency busy"] = latency(emulator, sizes.latency_samples)
        busy_until = time.perf_counter()
        figures["deleted while measuring"] = sampler.deleted() - before
        cpu_from, deleted_from = drain_cpu(emulator.pid), sampler.deleted()
        deadline = time.perf_counter() + DRAIN_TIMEOUT_S
        while sampler.deleted() < total and time.perf_counter() < deadline:
            time.sleep(0.1)
        cpu_to, deleted_to = drain_cpu(emulator.pid), sampler.deleted()
        time.sleep(0.3)  # one more sample after the last delete
    moving = [(t, n) for t, n, _ in sampler.samples if n > 0]
    (t_first, n_first), (_, drained) = moving[0], moving[-1]
    t_last = next(t for t, n in moving if n == drained)  # when the last delete was seen
    figures["drain overall"] = per_s(drained - n_first, t_last - t_first)
    steady = [(t, n) for t, n in moving if busy_until <= t and n <= STEADY_UNTIL * total]
    figures["drain steady"] = per_s(steady[-1][1] - steady[0][1], steady[-1][0] - steady[0][0]) if len(steady) > 1 else float("nan")
    figures["drained"] = drained
    figures["peak pollers"] = max((p for _, _, p in sampler.samples), default=0)
    per_thousand = 1000 / max(1, deleted_to - deleted_from)
    figures["cpu per 1,000"] = {name: (cpu_to[name] - cpu_from.get(name, 0.0)) * per_thousand for name in cpu_to}
    time.sleep(1.0)  # pollers settle into their idle long polls
    figures["latency idle, pollers idle"] = latency(emulator, sizes.latency_samples)
    figures["paced"] = paced_busy_latency(emulator, queue_url, sizes)
    control.close()
    return figures


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_cpu(emulator_pid: int) -> dict[str, float]:
    """CPU seconds so far of the control plane, of its poller process (if the pollers run in
    one, sources/poller_process.py) and of the moto child."""
    found = {"control plane": cpu_seconds(emulator_pid)}
    for pid in children(emulator_pid):
        command = cmdline(pid)
        if "emulator.sources.poller_host" in command:
            found["poller process"] = cpu_seconds(pid)
        elif "emulator.moto_child" in command:
            found["moto"] = cpu_seconds(pid)
    return found


def produce(url: str, queue_url: str, per_s: float, seconds: float) -> int:
    """Send SendMessageBatch(10) at a steady `per_s` messages per second; returns messages sent."""
    client = sqs_client(url)
    body = send_batch_body(queue_url)
    interval = 10 / per_s
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        client.call("SendMessageBatch", body)
        sent += 10
        pause = started + (sent / 10) * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    client.close()
    return sent


def paced_busy_latency(emulator: ServerProcess, queue_url: str, sizes: Sizes) -> dict[str, Any]:
    """Invoke latency while the mapping keeps up with a steady PACED_PER_S messages/s (sent
    by a separate process, so the latency client has its process to itself)."""
    seconds = PACED_WARMUP_S + sizes.latency_samples * PACED_SECONDS_PER_SAMPLE
    producer = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--produce", emulator.url, queue_url, str(PACED_PER_S), str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        before = int(mapping_of(emulator.url, "sqs-noop").get("MessagesDeleted", 0))
        time.sleep(PACED_WARMUP_S)
        during = int(mapping_of(emulator.url, "sqs-noop").get("MessagesDeleted", 0))
        started = time.perf_counter()
        figures = latency(emulator, sizes.latency_samples)
        elapsed = time.perf_counter() - started
        deleted = int(mapping_of(emulator.url, "sqs-noop").get("MessagesDeleted", 0)) - during
    finally:
        out, err = producer.communicate(timeout=seconds + 60)
    if producer.returncode != 0:
        raise RuntimeError(f"the producer failed: {err[-500:]}")
    return {"latency": figures, "deleted per s": per_s(deleted, elapsed), "warm-up deleted": during - before}


# -- 3. Kinesis ---------------------------------------------------------------------------------
def kinesis_through_emulator(emulator: ServerProcess, sizes: Sizes) -> dict[str, float]:
    kinesis = kinesis_client(emulator.url)
    kinesis.call("CreateStream", {"StreamName": "bench-stream", "ShardCount": 4})
    deadline = time.monotonic() + 30
    while kinesis.call("DescribeStreamSummary", {"StreamName": "bench-stream"})["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError("the stream did not become ACTIVE")
        time.sleep(0.1)
    data = base64.b64encode(b"y" * 100).decode()
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, sizes.kinesis_records, 500):
        records = [{"Data": data, "PartitionKey": f"key-{rng.randrange(10**9)}"} for _ in range(min(500, sizes.kinesis_records - start))]
        result = kinesis.call("PutRecords", {"StreamName": "bench-stream", "Records": records})
        if result.get("FailedRecordCount"):
            raise RuntimeError(f"PutRecords failed: {result['FailedRecordCount']} records")
    put_rate = per_s(sizes.kinesis_records, time.perf_counter() - started)
    kinesis.close()
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/bench-stream"
    create_mapping(emulator.url, "kinesis-noop", arn, BatchSize=100, StartingPosition="TRIM_HORIZON")
    samples: list[tuple[float, int]] = []
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        processed = int(mapping_of(emulator.url, "kinesis-noop").get("RecordsProcessed", 0))
        samples.append((time.perf_counter(), processed))
        if processed >= sizes.kinesis_records:
            break
        time.sleep(0.1)
    moving = [s for s in samples if s[1] > 0]
    if len(moving) < 2:
        return {"put": put_rate, "processed": float("nan"), "records": samples[-1][1] if samples else 0}
    (t0, n0), (t1, n1) = moving[0], moving[-1]
    return {"put": put_rate, "processed": per_s(n1 - n0, t1 - t0), "records": n1}


# -- 4. side by side ----------------------------------------------------------------------------------
def blocking_latencies(server: ServerProcess, count: int, warmup: int = 20) -> list[float]:
    """ms per warm invoke, `count` of them in a row on one blocking keep-alive connection."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=CALL_TIMEOUT_S)
    path = f"/2015-03-31/functions/{bench_latency.FUNCTION}/invocations"
    headers = {"Content-Type": "application/json"}
    times = []
    try:
        for index in range(warmup + count):
            started = time.perf_counter()
            connection.request("POST", path, b"{}", headers)
            response = connection.getresponse()
            response.read()
            if index >= warmup:
                times.append((time.perf_counter() - started) * 1000 if response.status == 200 else -1.0)
    finally:
        connection.close()
    return times


def side_by_side(workdir: Path, template: Path, sizes: Sizes) -> dict[str, Any]:
    with start_emulator(workdir, template, "--backend", "moto", name="emulator-quiet") as quiet, \
            start_emulator(workdir, template, "--backend", "moto", name="emulator-draining") as draining:
        control = sqs_client(draining.url)
        queue_url = control.call("CreateQueue", {"QueueName": "side-by-side"})["QueueUrl"]
        in_parallel(draining.url, sender(queue_url), seconds=600, max_items=sizes.side_by_side_messages)
        control.close()
        for server in (quiet, draining):
            blocking_latencies(server, SIDE_BY_SIDE_WARMUP)
        create_mapping(draining.url, "sqs-noop", f"arn:aws:sqs:{REGION}:{ACCOUNT}:side-by-side", BatchSize=10)
        samples: dict[str, list[float]] = {"quiet": [], "draining": []}
        with DeletedSampler(draining.url, "sqs-noop") as sampler:
            started = time.perf_counter()
            while sampler.deleted() == 0 and time.perf_counter() - started < 30:
                time.sleep(0.05)
            time.sleep(BUSY_AFTER_S)
            first, began = sampler.deleted(), time.perf_counter()
            for round_number in range(sizes.side_by_side_rounds):
                order = (("quiet", quiet), ("draining", draining))
                for name, server in order if round_number % 2 == 0 else order[::-1]:
                    samples[name] += blocking_latencies(server, SIDE_BY_SIDE_BLOCK)
            deleted, elapsed = sampler.deleted() - first, time.perf_counter() - began
    still_draining = deleted < sizes.side_by_side_messages - first
    figures = {name: sorted(t for t in values if t >= 0) for name, values in samples.items()}
    return {"figures": figures, "drained per s": per_s(deleted, elapsed), "drain outlasted": still_draining,
            "errors": sum(1 for values in samples.values() for t in values if t < 0)}


# -- the benchmark -------------------------------------------------------------------------------------
def run(settings: Settings) -> list[Row]:
    sizes = QUICK if settings.quick else FULL
    with scratch_dir("sources") as tmp:
        workdir = Path(tmp)
        ceiling = backend_ceiling(workdir, sizes)
        template = (TemplateBuilder(workdir).add(bench_latency.FUNCTION, NOOP_SOURCE).add("sqs-noop", NOOP_NONE)
                    .add("kinesis-noop", NOOP_NONE).write())
        with start_emulator(workdir, template, "--backend", "moto") as emulator:
            sqs = sqs_through_emulator(emulator, sizes)
            kinesis = kinesis_through_emulator(emulator, sizes)
        pair = side_by_side(workdir, template, sizes)
    return rows(ceiling, sqs, kinesis, sizes) + side_by_side_rows(pair, sizes)


def side_by_side_rows(pair: dict[str, Any], sizes: Sizes) -> list[Row]:
    name = "6 side by side, blocking client"
    quiet, busy = pair["figures"]["quiet"], pair["figures"]["draining"]
    n = f" (n={len(busy):,} each, {sizes.side_by_side_rounds} alternating blocks)"
    out = [Row(name, "quiet emulator: p50 / p99 / max" + n,
               f"{percentile(quiet, 0.5):.3f} / {percentile(quiet, 0.99):.3f} / {quiet[-1]:.2f} ms"),
           Row(name, f"draining emulator ({pair['drained per s']:,.0f} msg/s deleted meanwhile"
                     f"{'' if pair['drain outlasted'] else '; the queue ran dry'}): p50 / p99 / max",
               f"{percentile(busy, 0.5):.3f} / {percentile(busy, 0.99):.3f} / {busy[-1]:.2f} ms")]
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        ratio = percentile(busy, fraction) / percentile(quiet, fraction)
        out.append(Row(name, f"{label}, draining / quiet", f"{ratio:.2f}x", target=f"<= {1 + LATENCY_TOLERANCE:.2f}x",
                       verdict=verdict(ratio, 1 + LATENCY_TOLERANCE)))
    out.append(Row(name, "failed invokes", str(pair["errors"]), target="0", verdict=verdict(pair["errors"], 0)))
    return out


def rows(ceiling: dict[str, float], sqs: dict[str, Any], kinesis: dict[str, float], sizes: Sizes) -> list[Row]:
    out = []
    name = "6 SQS backend ceiling"
    for depth, label in (("short", "short queue"), ("deep", f"{DEEP:,} queued")):
        out.append(Row(name, f"SendMessageBatch, {label}: plain moto / fast", f"{rate(ceiling[f'plain {depth} send'])} / "
                       f"{rate(ceiling[f'fast {depth} send'])}"))
        out.append(Row(name, f"Receive(10)+DeleteBatch, {label}: plain / fast", f"{rate(ceiling[f'plain {depth} drain'])} / "
                       f"{rate(ceiling[f'fast {depth} drain'])}"))
    name = "6 SQS through the emulator"
    out.append(Row(name, f"SendMessageBatch, fill 0 -> {DEEP:,}", rate(sqs["fill"])))
    out.append(Row(name, f"SendMessageBatch, {DEEP:,}+ queued", rate(sqs["send at depth"]), target=f">= {TARGET_SEND_PER_S:,}/s",
                   peers=PEER_SEND, verdict=verdict(sqs["send at depth"], TARGET_SEND_PER_S, at_least=True)))
    out.append(Row(name, f"mapping drain, BatchSize 10: all {sqs['drained']:,} of {sqs['queued']:,}, first to last delete",
                   rate(sqs["drain overall"]), target=f">= {TARGET_DRAIN_PER_S:,}/s", peers=PEER_DRAIN,
                   verdict=verdict(sqs["drain overall"], TARGET_DRAIN_PER_S, at_least=True)))
    out.append(Row(name, f"mapping drain, steady (after the latency block, to {STEADY_UNTIL:.0%})", rate(sqs["drain steady"])))
    out.append(Row(name, "peak pollers", str(sqs["peak pollers"])))
    cpu = sqs["cpu per 1,000"]
    out.append(Row(name, "CPU per 1,000 messages drained: control plane / poller process / moto",
                   " / ".join(f"{cpu[part] * 1000:.0f} ms" if part in cpu else "-"
                              for part in ("control plane", "poller process", "moto"))))
    idle, busy, after = sqs["latency idle, no pollers"], sqs["latency busy"], sqs["latency idle, pollers idle"]
    name = "6 invoke latency, 1 conn"
    n = f" (n={sizes.latency_samples:,})"
    out.append(Row(name, "p50 / p99, no mapping yet" + n, f"{idle.p50:.3f} / {idle.p99:.3f} ms"))
    out.append(Row(name, f"p50 / p99, pollers busy ({sqs['deleted while measuring']:,} deleted meanwhile)",
                   f"{busy.p50:.3f} / {busy.p99:.3f} ms"))
    out.append(Row(name, "p50 / p99, pollers idle (queue empty)", f"{after.p50:.3f} / {after.p99:.3f} ms"))
    paced = sqs["paced"]["latency"]
    out.append(Row(name, f"p50 / p99, pollers busy at a steady {PACED_PER_S:,} msg/s "
                         f"({sqs['paced']['deleted per s']:,.0f} deleted/s)", f"{paced.p50:.3f} / {paced.p99:.3f} ms"))
    lower_idle = (min(idle.p50, after.p50), min(idle.p99, after.p99))
    for condition, figures in (("full-speed drain", busy), (f"steady {PACED_PER_S:,} msg/s", paced)):
        for label, value, reference in (("p50", figures.p50, lower_idle[0]), ("p99", figures.p99, lower_idle[1])):
            ratio = value / reference if reference else float("nan")
            out.append(Row(name, f"{label}, {condition} / lower idle", f"{ratio:.2f}x",
                           target=f"<= {1 + LATENCY_TOLERANCE:.2f}x", verdict=verdict(ratio, 1 + LATENCY_TOLERANCE)))
    name = "6 Kinesis, 4 shards"
    out.append(Row(name, f"PutRecords, fill {sizes.kinesis_records:,}", f"{kinesis['put']:,.0f} rec/s"))
    out.append(Row(name, f"processed, BatchSize 100 ({int(kinesis['records']):,} records)", f"{kinesis['processed']:,.0f} rec/s",
                   target=f">= {TARGET_KINESIS_PER_S:,}/s", peers=PEER_KINESIS,
                   verdict=verdict(kinesis["processed"], TARGET_KINESIS_PER_S, at_least=True)))
    return out


if __name__ == "__main__":
    import argparse

    from report import plain_table
    from settings import FULL as FULL_SETTINGS, QUICK as QUICK_SETTINGS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--side-by-side", action="store_true", help="run only part 4 (a quick A/B of the loop's share)")
    parser.add_argument("--produce", nargs=4, metavar=("URL", "QUEUE_URL", "PER_S", "SECONDS"),
                        help="internal: the steady producer of the paced latency measurement")
    arguments = parser.parse_args()
    if arguments.produce:
        url, queue, per_second, duration = arguments.produce
        print(produce(url, queue, float(per_second), float(duration)))
    elif arguments.side_by_side:
        chosen = QUICK if arguments.quick else FULL
        with scratch_dir("side-by-side") as tmp:
            template = (TemplateBuilder(Path(tmp)).add(bench_latency.FUNCTION, NOOP_SOURCE).add("sqs-noop", NOOP_NONE)
                        .write())
            print(plain_table(side_by_side_rows(side_by_side(Path(tmp), template, chosen), chosen)))
    else:
        print(plain_table(run(QUICK_SETTINGS if arguments.quick else FULL_SETTINGS)))
