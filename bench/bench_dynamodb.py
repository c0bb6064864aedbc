"""Benchmark 9: DynamoDB through the emulator's endpoint (`emulator up --backend moto`).

1. PutItem latency, the capacity layer on and off (A/B, interleaved rounds, each its own
   emulator: `--dynamodb-capacity true|false`): an on-demand table (the layer accounts every
   write, nothing throttles), one keep-alive connection, p50 and p99 of each call after a
   warm-up. The layer's cost is the difference of the medians. On a busy machine that
   difference drowns in scheduling noise, so the same A/B also runs in-process
   (bench/moto_dynamodb_inprocess.py: moto's WSGI application called directly, no HTTP).
2. Writes per second: PutItem (one item per call) and BatchWriteItem (25 items per call),
   each from 4 keep-alive client threads, for a few seconds.
3. A DynamoDB stream mapping keeping up: a table with a NEW_AND_OLD_IMAGES stream, a no-op
   function mapped to it (BatchSize 1,000, a 1 s batching window, LATEST), and writers
   paced at PACED_WRITES_PER_S items/s (BatchWriteItem of 25) for a while; then the time the
   mapping needs after the last write to have processed every record, and the records it
   processed per second over the whole run. It keeps up when it processes what is written
   as fast as it is written (every record within DRAIN_TARGET_S of the last write).

The client speaks DynamoDB's JSON protocol directly (prebuilt bodies on keep-alive
connections): boto3 would cost the benchmark more CPU than the servers it measures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_sources import AwsJsonClient
from client_threads import each_on_a_thread
from harness import BENCH_DIR, NOOP_SOURCE, TemplateBuilder, scratch_dir, start_emulator
from report import Row, percentile, run_alone, verdict
from settings import Settings

REGION, ACCOUNT = "us-east-1", "123456789012"
TARGET_ADDED_P50_MS = 0.2  # issue 9: PutItem through the capacity layer over the backend alone
TARGET_STREAM_PER_S = 2_000  # issue 9: a stream mapping keeps up with >= 2,000 writes/s
PACED_WRITES_PER_S = 2_500
DRAIN_TARGET_S = 2.0
CLIENT_THREADS = 4
BATCH = 25
DRAIN_TIMEOUT_S = 120.0
ITEM_BYTES = 100


@dataclass(frozen=True)
class Sizes:
    latency_calls: int
    latency_rounds: int
    rate_seconds: float
    stream_seconds: float


FULL = Sizes(latency_calls=5_000, latency_rounds=2, rate_seconds=5.0, stream_seconds=10.0)
QUICK = Sizes(latency_calls=2_000, latency_rounds=1, rate_seconds=3.0, stream_seconds=5.0)


def dynamodb_client(url: str) -> AwsJsonClient:
    return AwsJsonClient(url, "dynamodb", "DynamoDB_20120810", "application/x-amz-json-1.0")


def lambda_call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
    return json.loads(payload) if payload else {}


def metrics(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        return json.loads(response.read())


def create_table(url: str, name: str, stream: bool = False) -> str | None:
    request: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    }
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client = dynamodb_client(url)
    try:
        return client.call("CreateTable", request)["TableDescription"].get("LatestStreamArn")
    finally:
        client.close()


def item(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "data": {"S": "x" * ITEM_BYTES}, "n": {"N": "42"}}


# -- 1. PutItem latency, capacity on and off ----------------------------------------------------------
def put_latencies(url: str, table: str, calls: int, warmup: int = 500) -> list[float]:
    client = dynamodb_client(url)
    bodies = [json.dumps({"TableName": table, "Item": item(f"k{i}")}).encode() for i in range(calls + warmup)]
    try:
        for body in bodies[:warmup]:
            client.call("PutItem", body)
        times = []
        for body in bodies[warmup:]:
            began = time.perf_counter()
            client.call("PutItem", body)
            times.append((time.perf_counter() - began) * 1000)
        return sorted(times)
    finally:
        client.close()


def inprocess_ab(sizes: Sizes) -> dict[str, list[tuple[float, float]]]:
    """The same A/B with moto's application called in-process: (p50, p99) in ms per round."""
    found: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(sizes.latency_rounds + 1):
        for variant in ("off", "on"):
            out = subprocess.run([sys.executable, str(BENCH_DIR / "moto_dynamodb_inprocess.py"), "--capacity", variant,
                                  "--calls", str(sizes.latency_calls)], capture_output=True, text=True, check=True)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            found[variant].append((figures["p50_us"] / 1000, figures["p99_us"] / 1000))
    return found


def latency_ab(workdir: Path, sizes: Sizes) -> dict[str, list[tuple[float, float]]]:
    template = TemplateBuilder(workdir).add("noop", NOOP_SOURCE).write("template-latency.json")
    found: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(sizes.latency_rounds):
        for variant in ("off", "on"):
            flag = "true" if variant == "on" else "false"
            with start_emulator(workdir, template, "--backend", "moto", "--dynamodb-capacity", flag,
                                name=f"emulator-capacity-{variant}") as emulator:
                create_table(emulator.url, "latency")
                times = put_latencies(emulator.url, "latency", sizes.latency_calls)
                found[variant].append((percentile(times, 0.50), percentile(times, 0.99)))
    return found


# -- 2. writes per second ------------------------------------------------------------------------------
def write_rate(url: str, table: str, seconds: float, batch: int) -> float:
    """Items written per second by CLIENT_THREADS writers (PutItem when batch is 1, else
    BatchWriteItem) for `seconds`."""
    written = [0] * CLIENT_THREADS
    deadline = time.monotonic() + seconds

    def writer(index: int) -> None:
        client = dynamodb_client(url)
        n = 0
        try:
            while time.monotonic() < deadline:
                keys = [f"w{index}-{n + i}" for i in range(batch)]
                n += batch
                if batch == 1:
                    client.call("PutItem", {"TableName": table, "Item": item(keys[0])})
                else:
                    answer = client.call("BatchWriteItem", {"RequestItems": {table: [
                        {"PutRequest": {"Item": item(key)}} for key in keys]}})
                    if answer.get("UnprocessedItems"):
                        raise RuntimeError(f"unprocessed items: {answer['UnprocessedItems']}")
                written[index] += batch
        finally:
            client.close()

    elapsed = each_on_a_thread(writer, range(CLIENT_THREADS))
    return sum(written) / elapsed


# -- 3. a stream mapping keeping up --------------------------------------------------------------------
def paced_writes(url: str, table: str, per_s: float, seconds: float) -> tuple[int, float]:
    """BatchWriteItem(25) at `per_s` items/s in total from CLIENT_THREADS writers; (items, seconds)."""
    written = [0] * CLIENT_THREADS
    started = time.monotonic()
    interval = BATCH * CLIENT_THREADS / per_s

    def writer(index: int) -> None:
        client = dynamodb_client(url)
        next_at = started + index * interval / CLIENT_THREADS
        n = 0
        try:
            while next_at < started + seconds:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
                keys = [f"s{index}-{n + i}" for i in range(BATCH)]
                n += BATCH
                answer = client.call("BatchWriteItem", {"RequestItems": {table: [
                    {"PutRequest": {"Item": item(key)}} for key in keys]}})
                if answer.get("UnprocessedItems"):
                    raise RuntimeError(f"unprocessed items: {answer['UnprocessedItems']}")
                written[index] += BATCH
        finally:
            client.close()

    each_on_a_thread(writer, range(CLIENT_THREADS))
    return sum(written), time.monotonic() - started


def stream_keep_up(workdir: Path, sizes: Sizes) -> dict[str, float]:
    template = TemplateBuilder(workdir).add("noop", NOOP_SOURCE).write("template-stream.json")
    with start_emulator(workdir, template, "--backend", "moto") as emulator:
        create_table(emulator.url, "rate")
        figures = {"put": write_rate(emulator.url, "rate", sizes.rate_seconds, 1)}
        figures["batch"] = write_rate(emulator.url, "rate", sizes.rate_seconds, BATCH)
        arn = create_table(emulator.url, "feed", stream=True)
        mapping = lambda_call(emulator.url, "POST", "/2015-03-31/event-source-mappings", {
            "FunctionName": "noop", "EventSourceArn": arn, "StartingPosition": "LATEST", "BatchSize": 1000,
            "MaximumBatchingWindowInSeconds": 1})
        uuid = mapping["UUID"]
        deadline = time.monotonic() + 30
        while metrics(emulator.url)["event_source_mappings"].get(uuid, {}).get("GetRecordsCalls", 0) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the stream mapping did not start polling")
            time.sleep(0.05)
        began = time.monotonic()
        written, seconds = paced_writes(emulator.url, "feed", PACED_WRITES_PER_S, sizes.stream_seconds)
        writes_ended = time.monotonic()
        processed_at_end = metrics(emulator.url)["event_source_mappings"][uuid]["RecordsProcessed"]
        ages = []
        while True:
            mapping_metrics = metrics(emulator.url)["event_source_mappings"][uuid]
            ages.append(mapping_metrics.get("IteratorAgeMilliseconds", 0))
            if mapping_metrics["RecordsProcessed"] >= written:
                break
            if time.monotonic() > writes_ended + DRAIN_TIMEOUT_S:
                raise RuntimeError(f"the mapping processed {mapping_metrics['RecordsProcessed']} of {written} records")
            time.sleep(0.02)
        done = time.monotonic()
        figures.update({
            "written per s": written / seconds, "processed per s": written / (done - began),
            "processed during writes": processed_at_end / written, "drain s": done - writes_ended,
            "max iterator age s": max(ages) / 1000, "written": written,
        })
    return figures


# -- the benchmark -------------------------------------------------------------------------------------
def run(settings: Settings) -> list[Row]:
    sizes = QUICK if settings.quick else FULL
    with scratch_dir("dynamodb") as tmp:
        workdir = Path(tmp)
        ab = latency_ab(workdir, sizes)
        inprocess = inprocess_ab(sizes)
        stream = stream_keep_up(workdir, sizes)
    return rows(ab, inprocess, stream)


def rows(ab: dict[str, list[tuple[float, float]]], inprocess: dict[str, list[tuple[float, float]]],
         stream: dict[str, float]) -> list[Row]:
    name = "9 DynamoDB, emulator up"
    off = statistics.median(p50 for p50, _ in ab["off"])
    on = statistics.median(p50 for p50, _ in ab["on"])
    inprocess_off = statistics.median(p50 for p50, _ in inprocess["off"])
    inprocess_on = statistics.median(p50 for p50, _ in inprocess["on"])
    out = [
        Row(name, "PutItem p50 / p99, capacity off, by round",
            ", ".join(f"{p50:.3f} / {p99:.3f} ms" for p50, p99 in ab["off"])),
        Row(name, "PutItem p50 / p99, capacity on (on-demand table), by round",
            ", ".join(f"{p50:.3f} / {p99:.3f} ms" for p50, p99 in ab["on"])),
        Row(name, "  capacity layer adds, p50 (median of rounds)", f"{on - off:+.3f} ms",
            target=f"<= {TARGET_ADDED_P50_MS} ms", verdict=verdict(on - off, TARGET_ADDED_P50_MS)),
        Row(name, "  in-process (moto's application, no HTTP): p50 off / on, by round", ", ".join(
            f"{a * 1000:.0f} / {b * 1000:.0f} us" for (a, _), (b, _) in zip(inprocess["off"], inprocess["on"]))),
        Row(name, "  capacity layer adds in-process, p50 (median of rounds)", f"{inprocess_on - inprocess_off:+.3f} ms",
            target=f"<= {TARGET_ADDED_P50_MS} ms", verdict=verdict(inprocess_on - inprocess_off, TARGET_ADDED_P50_MS)),
        Row(name, f"PutItem, {CLIENT_THREADS} clients", f"{stream['put']:,.0f} items/s"),
        Row(name, f"BatchWriteItem({BATCH}), {CLIENT_THREADS} clients", f"{stream['batch']:,.0f} items/s"),
        Row(name, f"stream mapping: writes paced at {PACED_WRITES_PER_S:,}/s, {stream['written']:,.0f} items",
            f"{stream['written per s']:,.0f} written/s"),
        Row(name, "  records processed per second, first write to last record processed",
            f"{stream['processed per s']:,.0f} rec/s", target=f">= {TARGET_STREAM_PER_S:,}/s",
            verdict=verdict(stream["processed per s"], TARGET_STREAM_PER_S, at_least=True)),
        Row(name, "  processed by the last write / drained after it / max iterator age",
            f"{stream['processed during writes']:.0%} / {stream['drain s']:.2f} s / {stream['max iterator age s']:.1f} s",
            target=f"drain <= {DRAIN_TARGET_S:.0f} s", verdict=verdict(stream["drain s"], DRAIN_TARGET_S)),
    ]
    return out


if __name__ == "__main__":
    run_alone(run, __doc__)
