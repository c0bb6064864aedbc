"""Benchmark 7: the moto child's memory under a steady SQS flow through the emulator.

`emulator up --backend moto` with one queue. One message is received first with a 12-hour
visibility timeout and never deleted (an old in-flight message at the head of the store's
heaps); then messages are sent (SendMessageBatch of 10), received (ReceiveMessage of 10)
and deleted (DeleteMessageBatch) through the emulator's endpoint at a steady rate, the
queue staying short. Every SAMPLE_EVERY messages the moto child's resident memory is read
from /proc, and, where the child serves it, `GET /_emulator/backend-stats` (Python heap
blocks, the model instances moto's dashboard holds, the SQS indexes' entries).

Memory is flat when the growth after the warm-up (which fills the bounded memory of deleted
receipt handles and the allocator's pools) stays under TARGET_GROWTH_MB. Before the fix
the child grew ~1.8-2.7 KB per message (moto kept every Message; the store kept deleted
ones behind an old in-flight message). A/B against another source tree: `bench/run.py
--only moto-memory --emulator-src PATH`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_sources import AwsJsonClient, send_batch_body, sqs_client
from harness import children, cmdline, rss_kb, scratch_dir, start_emulator
from report import MET, MISSED, Row
from settings import Settings

TARGET_GROWTH_MB = 5.0  # after the warm-up, over the rest of the run
RATE_PER_S = 2_000  # messages/s: steady, well below the backend's ceiling
SAMPLE_EVERY = 10_000
QUEUE = "memory-q"
OLD_IN_FLIGHT_VISIBILITY_S = 43_200  # SQS's maximum visibility timeout, 12 hours


@dataclass(frozen=True)
class Sizes:
    messages: int
    warmup: int  # messages before the baseline sample


FULL = Sizes(messages=200_000, warmup=50_000)
QUICK = Sizes(messages=60_000, warmup=30_000)


def moto_child(emulator_pid: int) -> tuple[int, str]:
    """(pid, url) of the emulator's moto child, read from /proc."""
    for pid in children(emulator_pid):
        argv = cmdline(pid).split()
        if "emulator.moto_child" in argv and "-p" in argv:
            host = argv[argv.index("-H") + 1] if "-H" in argv else "127.0.0.1"
            return pid, f"http://{host}:{argv[argv.index('-p') + 1]}"
    raise RuntimeError("no moto child under the emulator")


def child_stats(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "/_emulator/backend-stats", timeout=30) as response:
            if response.headers.get("Content-Type", "").startswith("application/json"):
                return json.loads(response.read())
    except (urllib.error.URLError, ValueError):
        pass
    return {}  # a child without the endpoint (an older source tree)


def sample(sent: int, pid: int, url: str) -> dict[str, Any]:
    stats = child_stats(url)
    return {"messages": sent, "rss_mb": rss_kb(pid) / 1024, "blocks": stats.get("python_allocated_blocks"),
            "tracked": stats.get("tracked_instances", {}).get("sqs.Message"), "sqs": stats.get("sqs", {})}


def steady_flow(client: AwsJsonClient, queue_url: str, sizes: Sizes, pid: int, child_url: str) -> list[dict[str, Any]]:
    send = send_batch_body(queue_url)
    receive = json.dumps({"QueueUrl": queue_url, "MaxNumberOfMessages": 10}).encode()
    samples = [sample(0, pid, child_url)]
    started = samples[0]["at"] = time.perf_counter()
    sent = 0
    while sent < sizes.messages:
        client.call("SendMessageBatch", send)
        got = client.call("ReceiveMessage", receive).get("Messages", [])
        if got:
            client.call("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]})
        sent += 10
        ahead = started + sent / RATE_PER_S - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)  # pacing a load generator, not a wait for an outcome
        if sent % SAMPLE_EVERY == 0:
            samples.append(sample(sent, pid, child_url))
            samples[-1]["at"] = time.perf_counter()
    return samples


def run(settings: Settings) -> list[Row]:
    sizes = QUICK if settings.quick else FULL
    with scratch_dir("moto-memory") as tmp:
        workdir = Path(tmp)
        template = workdir / "template.json"
        template.write_text(json.dumps({"Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": QUEUE}}}}))
        with start_emulator(workdir, template, "--backend", "moto") as emulator:
            pid, child_url = moto_child(emulator.pid)
            client = sqs_client(emulator.url)
            try:
                queue_url = client.call("GetQueueUrl", {"QueueName": QUEUE})["QueueUrl"]
                client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "old"})
                client.call("ReceiveMessage", {"QueueUrl": queue_url, "VisibilityTimeout": OLD_IN_FLIGHT_VISIBILITY_S})
                samples = steady_flow(client, queue_url, sizes, pid, child_url)
            finally:
                client.close()
    return rows(samples, sizes)


def rows(samples: list[dict[str, Any]], sizes: Sizes) -> list[Row]:
    name = "7 moto child memory"
    first, last = samples[0], samples[-1]
    warm = next(s for s in samples if s["messages"] >= sizes.warmup)
    growth = last["rss_mb"] - warm["rss_mb"]
    after = last["messages"] - warm["messages"]
    achieved = after / max(last["at"] - warm["at"], 1e-9)
    out = [
        Row(name, f"RSS at start / after {warm['messages']:,} (warm-up) / after {last['messages']:,} messages",
            f"{first['rss_mb']:.1f} / {warm['rss_mb']:.1f} / {last['rss_mb']:.1f} MB"),
        Row(name, f"RSS growth over the last {after:,} messages ({achieved:,.0f} msg/s, paced at most {RATE_PER_S:,}; "
                  "one message in flight for 12 h)",
            f"{growth:+.1f} MB ({growth * 1024 * 1024 / max(after, 1):+.0f} B/msg)",
            target=f"<= {TARGET_GROWTH_MB:.0f} MB", verdict=MET if growth <= TARGET_GROWTH_MB else MISSED),
        Row(name, "RSS by messages sent", ", ".join(f"{s['messages'] // 1000}k: {s['rss_mb']:.0f}" for s in samples) + " MB"),
    ]
    if warm["blocks"] is not None and last["blocks"] is not None:
        out.append(Row(name, "Python heap blocks after the warm-up / at the end",
                       f"{warm['blocks']:,} / {last['blocks']:,} ({last['blocks'] - warm['blocks']:+,})"))
    if last["sqs"]:
        indexes = {k: v for k, v in last["sqs"].items() if k != "queues"}
        out.append(Row(name, "sqs.Message instances moto tracks; store index entries at the end",
                       f"{last['tracked'] or 0:,}; " + ", ".join(f"{k} {v:,}" for k, v in indexes.items())))
    return out
