"""A moto server, with or without emulator/moto_child/fast_kinesis.py, with one Kinesis stream
filled in-process.

    python bench/moto_kinesis_prefilled.py --fast|--plain --stream NAME --shards K --records N -p PORT

Both variants apply emulator/moto_child/fast_sqs.py (keep-alive for JSON calls) and run at the
emulator's MOTO_NICE, as the emulator's own moto child does; `--plain` is therefore the moto
child as it was before the fast Kinesis model. Plain moto cannot be filled to 1,000,000
records through its API (each put copies the shard's keys: hours), so the records are
stored here, with moto's own `Record` objects in each shard's dict (plain) or through the
fast model's PutRecords (fast). Prints its URL on stdout once the stream is full, just
before moto starts listening (bench/harness.py's ServerProcess convention).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import os
import signal
import sys


def fill_plain(stream: object, records: int, data: str) -> None:
    from moto.kinesis.models import Record

    last: dict[str, int] = {}
    for i in range(records):
        key = f"key-{i}"
        shard = stream.get_shard_for_key(key, "")  # type: ignore[attr-defined]
        sequence = last.get(shard.shard_id, 0) + 1
        last[shard.shard_id] = sequence
        shard.records[sequence] = Record(key, data, sequence, "")


def fill_fast(backend: object, name: str, records: int, data: str) -> None:
    for start in range(0, records, 500):
        batch = [{"PartitionKey": f"key-{i}", "Data": data} for i in range(start, min(records, start + 500))]
        backend.put_records(None, name, batch)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fast", action="store_true")
    mode.add_argument("--plain", action="store_true")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--data-bytes", type=int, default=100)
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args, moto_argv = parser.parse_known_args()
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # die with the benchmark
    except Exception:
        pass
    from emulator.backend.moto_process import MOTO_NICE
    from emulator.moto_child import fast_kinesis, fast_sqs

    os.nice(MOTO_NICE)
    if not fast_sqs.apply():
        sys.exit("fast_sqs.apply() refused this moto version")
    if args.fast and not fast_kinesis.apply():
        sys.exit("fast_kinesis.apply() refused this moto version")
    from moto.kinesis.models import kinesis_backends

    backend = kinesis_backends[args.account][args.region]
    stream = backend.create_stream(args.stream, args.shards)
    data = base64.b64encode(b"y" * args.data_bytes).decode()
    if args.fast:
        fill_fast(backend, args.stream, args.records, data)
    else:
        fill_plain(stream, args.records, data)
    print(f"http://127.0.0.1:{args.port}", flush=True)
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port), *moto_argv])


if __name__ == "__main__":
    main()
