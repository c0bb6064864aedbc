"""Benchmark 7: Kinesis writes and reads at depth, through the emulator's one endpoint.

1. The product: `emulator up --backend moto` (its moto child applies
   emulator/moto_child/fast_kinesis.py). A 4-shard stream filled from 0 to 1,000,000 records
   with PutRecords of 500 records × 100 bytes (random partition keys) from 4 client threads,
   records/s per segment of the fill, then 200,000 more beyond 1,000,000; the moto child's
   RSS; then GetRecords (Limit 10,000) from TRIM_HORIZON, one reader thread per shard, and
   the latency of one GetRecords(10,000) in the newest tenth of a shard.
2. A/B, interleaved: the moto child before this model (`--plain`: fast SQS and keep-alive,
   moto's own Kinesis) and with it (`--fast`), each started by bench/moto_kinesis_prefilled.py
   at the emulator's nice level and reached through `emulator up --aws-endpoint`: PutRecords
   on a fresh stream (0 -> 40,000 records), two rounds; then each with 1,000,000 records
   stored in-process first, a few PutRecords and GetRecords calls at that depth (plain moto's
   take seconds each).

The client speaks the JSON protocol directly (prebuilt bodies on keep-alive connections):
boto3 would cost the benchmark more CPU than the servers it measures.
"""

from __future__ import annotations

import base64
import json
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench_sources import AwsJsonClient, kinesis_client, per_s
from client_threads import each_on_a_thread
from harness import (BENCH_DIR, NOOP_SOURCE, ServerProcess, TemplateBuilder, children, cmdline, rss_kb, scratch_dir,
                     start_answering, start_emulator)
from report import Row, run_alone, verdict
from settings import Settings

from emulator.backend.moto_process import free_port

TARGET_PUT_PER_S = 50_000  # issue 7: with 1,000,000 records in the stream
PEER_PUT = "peer ~63k/s; before: 7.9k/s"
SHARDS = 4
RECORDS_PER_CALL = 500
DATA_BYTES = 100
CLIENT_THREADS = 4
BODIES = 16  # distinct prebuilt request bodies per stream, cycled
GET_LIMIT = 10_000
CALL_TIMEOUT_S = 300.0
STREAM = "bench-kinesis"


@dataclass(frozen=True)
class Sizes:
    depth: int  # records before "at depth"
    segment: int  # the fill's rate is reported per segment of this many records
    beyond: int  # records put after `depth`
    short: int  # the A/B fill of a fresh stream
    rounds: int  # A/B rounds on a fresh stream
    read_seconds: float
    deep_calls_plain: int  # PutRecords / GetRecords calls against plain moto at depth
    deep_seconds_fast: float


FULL = Sizes(depth=1_000_000, segment=100_000, beyond=200_000, short=40_000, rounds=2, read_seconds=8.0,
             deep_calls_plain=3, deep_seconds_fast=5.0)
QUICK = Sizes(depth=200_000, segment=50_000, beyond=50_000, short=20_000, rounds=1, read_seconds=4.0,
              deep_calls_plain=2, deep_seconds_fast=3.0)


# -- clients ---------------------------------------------------------------------------------------
def put_bodies(stream: str, seed: int) -> list[bytes]:
    data = base64.b64encode(b"y" * DATA_BYTES).decode()
    rng = random.Random(seed)
    return [json.dumps({"StreamName": stream, "Records": [
        {"Data": data, "PartitionKey": f"key-{rng.randrange(10**9)}"} for _ in range(RECORDS_PER_CALL)]}).encode()
        for _ in range(BODIES)]


def put_until(url: str, bodies: list[bytes], records: int, threads: int = CLIENT_THREADS,
              seconds: float = 3600.0) -> tuple[int, float]:
    """PutRecords from `threads` keep-alive connections until `records` are stored (or
    `seconds` pass); (records stored, elapsed seconds)."""
    lock = threading.Lock()
    state = {"issued": 0, "stored": 0}
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        client = kinesis_client(url)
        client.connection.timeout = CALL_TIMEOUT_S
        try:
            n = index
            while time.monotonic() < deadline:
                with lock:
                    if state["issued"] >= records:
                        return
                    state["issued"] += RECORDS_PER_CALL
                result = client.call("PutRecords", bodies[n % len(bodies)])
                if result.get("FailedRecordCount"):
                    raise RuntimeError(f"PutRecords: {result['FailedRecordCount']} records failed")
                with lock:
                    state["stored"] += RECORDS_PER_CALL
                n += threads
        finally:
            client.close()

    elapsed = each_on_a_thread(worker, range(threads))
    return state["stored"], elapsed


def shard_ids() -> list[str]:
    return [f"shardId-{i:012d}" for i in range(SHARDS)]


def shard_iterator(client: AwsJsonClient, shard: str, kind: str = "TRIM_HORIZON", **extra: Any) -> str:
    return client.call("GetShardIterator", {"StreamName": STREAM, "ShardId": shard, "ShardIteratorType": kind, **extra})["ShardIterator"]


def read_rate(url: str, seconds: float) -> tuple[int, float]:
    """Every shard read from TRIM_HORIZON by its own thread, GetRecords(Limit 10,000), for
    `seconds`; (records read, elapsed)."""
    totals: list[int] = []
    deadline = time.monotonic() + seconds

    def reader(shard: str) -> None:
        client = kinesis_client(url)
        client.connection.timeout = CALL_TIMEOUT_S
        read = 0
        try:
            token = shard_iterator(client, shard)
            while time.monotonic() < deadline:
                page = client.call("GetRecords", {"ShardIterator": token, "Limit": GET_LIMIT})
                read += len(page["Records"])
                token = page.get("NextShardIterator")
                if not page["Records"] or token is None:
                    break
        finally:
            totals.append(read)
            client.close()

    elapsed = each_on_a_thread(reader, shard_ids())
    return sum(totals), elapsed


def deep_read_ms(url: str, calls: int) -> float:
    """Median ms of one GetRecords(10,000) that starts in the newest tenth of shard 0."""
    client = kinesis_client(url)
    client.connection.timeout = CALL_TIMEOUT_S
    try:
        shard = shard_ids()[0]
        first = client.call("GetRecords", {"ShardIterator": shard_iterator(client, shard), "Limit": 1})["Records"][0]
        newest = newest_sequence(client, shard)
        start = int(first["SequenceNumber"]) + (newest - int(first["SequenceNumber"])) * 9 // 10
        times = []
        for _ in range(calls):
            token = shard_iterator(client, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=str(start))
            began = time.perf_counter()
            page = client.call("GetRecords", {"ShardIterator": token, "Limit": GET_LIMIT})
            times.append((time.perf_counter() - began) * 1000)
            if not page["Records"]:
                raise RuntimeError("the deep read found no records")
        return statistics.median(times)
    finally:
        client.close()


def newest_sequence(client: AwsJsonClient, shard: str) -> int:
    """The sequence number of a record put now into the shard (by an explicit hash key in
    its range): the newest one."""
    summary = client.call("ListShards", {"StreamName": STREAM})["Shards"]
    ranges = {s["ShardId"]: s for s in summary}
    result = client.call("PutRecord", {"StreamName": STREAM, "PartitionKey": "probe", "Data": "eA==",
                                       "ExplicitHashKey": ranges[shard]["HashKeyRange"]["StartingHashKey"]})
    return int(result["SequenceNumber"])


def moto_child(emulator: ServerProcess) -> int:
    for pid in children(emulator.pid):
        if "emulator.moto_child" in cmdline(pid):
            return pid
    raise RuntimeError("the emulator has no moto child")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_stream(url: str) -> None:
    client = kinesis_client(url)
    client.call("CreateStream", {"StreamName": STREAM, "ShardCount": SHARDS})
    deadline = time.monotonic() + 30
    while client.call("DescribeStreamSummary", {"StreamName": STREAM})["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError("the stream did not become ACTIVE")
        time.sleep(0.1)
    client.close()


# -- 1. the product ----------------------------------------------------------------------------------------
def product(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    template = TemplateBuilder(workdir).add("noop", NOOP_SOURCE).write()
    with start_emulator(workdir, template, "--backend", "moto") as emulator:
        create_stream(emulator.url)
        bodies = put_bodies(STREAM, seed=1)
        segments = []
        for start in range(0, sizes.depth, sizes.segment):
            stored, seconds = put_until(emulator.url, bodies, sizes.segment)
            segments.append(per_s(stored, seconds))
        figures["segments"] = segments
        figures["fill"] = sizes.depth / sum(sizes.segment / rate for rate in segments)
        moto_pid = moto_child(emulator)
        cpu_before = (cpu_seconds(emulator.pid), cpu_seconds(moto_pid))
        stored, seconds = put_until(emulator.url, bodies, sizes.beyond)
        calls = stored / RECORDS_PER_CALL
        figures["beyond"] = per_s(stored, seconds)
        figures["cpu per call"] = tuple((cpu_seconds(pid) - before) * 1000 / calls
                                        for pid, before in zip((emulator.pid, moto_pid), cpu_before))
        figures["rss"] = rss_kb(moto_pid) / 1024
        figures["read"] = per_s(*read_rate(emulator.url, sizes.read_seconds))
        figures["deep read ms"] = deep_read_ms(emulator.url, 20)
    return figures


# -- 2. A/B through --aws-endpoint ---------------------------------------------------------------------------
def start_moto(workdir: Path, variant: str, records: int) -> ServerProcess:
    argv = [sys.executable, str(BENCH_DIR / "moto_kinesis_prefilled.py"), f"--{variant}", "--stream", STREAM,
            "--shards", str(SHARDS), "--records", str(records), "--data-bytes", str(DATA_BYTES), "-p", str(free_port())]
    server = ServerProcess(f"moto-kinesis-{variant}", argv, workdir)
    # It prints its URL once the stream is full.
    return start_answering(server, lambda url: kinesis_client(url).call("ListStreams", {}), timeout_s=60)


def through_emulator(workdir: Path, variant: str, records: int,
                     measure: Callable[[ServerProcess, ServerProcess], Any]) -> Any:
    template = TemplateBuilder(workdir).add("noop", NOOP_SOURCE).write(f"template-{variant}.json")
    with start_moto(workdir, variant, records) as moto:
        with start_emulator(workdir, template, "--aws-endpoint", moto.url, name=f"emulator-{variant}") as emulator:
            return measure(emulator, moto)


def a_b(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    figures: dict[str, Any] = {"short plain": [], "short fast": [], "moto cpu plain": [], "moto cpu fast": []}
    bodies = put_bodies(STREAM, seed=2)

    def short(emulator: ServerProcess, moto: ServerProcess) -> tuple[float, float]:
        before = cpu_seconds(moto.pid)
        stored, seconds = put_until(emulator.url, bodies, sizes.short)
        return per_s(stored, seconds), (cpu_seconds(moto.pid) - before) * 1000 / (stored / RECORDS_PER_CALL)

    for _ in range(sizes.rounds):
        for variant in ("plain", "fast"):
            rate, cpu = through_emulator(workdir, variant, 0, short)
            figures[f"short {variant}"].append(rate)
            figures[f"moto cpu {variant}"].append(cpu)

    def deep(emulator: ServerProcess, moto: ServerProcess, variant: str) -> dict[str, float]:
        if variant == "plain":  # one call takes seconds: a few, from one connection
            calls = sizes.deep_calls_plain
            put = per_s(*put_until(emulator.url, bodies, calls * RECORDS_PER_CALL, threads=1))
            read_ms = deep_read_ms(emulator.url, calls)
        else:
            put = per_s(*put_until(emulator.url, bodies, 10**9, seconds=sizes.deep_seconds_fast))
            read_ms = deep_read_ms(emulator.url, 20)
        return {"put": put, "read ms": read_ms}

    for variant in ("plain", "fast"):
        figures[f"deep {variant}"] = through_emulator(workdir, variant, sizes.depth, lambda e, m, v=variant: deep(e, m, v))
    return figures


# -- the benchmark ---------------------------------------------------------------------------------------------
def run(settings: Settings) -> list[Row]:
    sizes = QUICK if settings.quick else FULL
    with scratch_dir("kinesis") as tmp:
        workdir = Path(tmp)
        ab = a_b(workdir, sizes)
        made = product(workdir, sizes)
    return rows(made, ab, sizes)


def rate(value: float) -> str:
    return f"{value:,.0f} rec/s" if value >= 10 else f"{value:.2f} rec/s"


def rows(made: dict[str, Any], ab: dict[str, Any], sizes: Sizes) -> list[Row]:
    out = []
    name = f"7 Kinesis, {SHARDS} shards, emulator up"
    segments = made["segments"]
    out.append(Row(name, f"PutRecords(500 x {DATA_BYTES} B), {CLIENT_THREADS} clients, fill 0 -> {sizes.depth:,}", rate(made["fill"])))
    out.append(Row(name, f"  per {sizes.segment:,}: first / slowest / last", " / ".join(
        rate(v) for v in (segments[0], min(segments), segments[-1]))))
    out.append(Row(name, f"PutRecords, {sizes.depth:,} -> {sizes.depth + sizes.beyond:,}", rate(made["beyond"]),
                   target=f">= {TARGET_PUT_PER_S:,}/s", peers=PEER_PUT,
                   verdict=verdict(made["beyond"], TARGET_PUT_PER_S, at_least=True)))
    out.append(Row(name, "  CPU per PutRecords call beyond: emulator (proxy) / moto child",
                   " / ".join(f"{value:.2f} ms" for value in made["cpu per call"])))
    out.append(Row(name, f"moto child RSS at {sizes.depth + sizes.beyond:,} records", f"{made['rss']:,.0f} MiB"))
    out.append(Row(name, f"GetRecords(Limit {GET_LIMIT:,}) from TRIM_HORIZON, a reader per shard", rate(made["read"])))
    out.append(Row(name, f"one GetRecords({GET_LIMIT:,}) in the newest tenth of a shard, p50", f"{made['deep read ms']:.1f} ms"))
    name = "7 Kinesis A/B, --aws-endpoint"
    out.append(Row(name, f"PutRecords, fresh stream 0 -> {sizes.short:,}: plain moto / fast, by round",
                   ", ".join(f"{rate(p)} / {rate(f)}" for p, f in zip(ab["short plain"], ab["short fast"]))))
    out.append(Row(name, "  moto CPU per PutRecords call, same runs: plain / fast",
                   ", ".join(f"{p:.1f} ms / {f:.2f} ms" for p, f in zip(ab["moto cpu plain"], ab["moto cpu fast"]))))
    plain, fast = ab["deep plain"], ab["deep fast"]
    out.append(Row(name, f"PutRecords with {sizes.depth:,} stored: plain / fast", f"{rate(plain['put'])} / {rate(fast['put'])}"))
    out.append(Row(name, f"one GetRecords({GET_LIMIT:,}) in the newest tenth, {sizes.depth:,} stored: plain / fast",
                   f"{plain['read ms']:,.0f} ms / {fast['read ms']:.1f} ms"))
    return out


if __name__ == "__main__":
    run_alone(run, __doc__)
