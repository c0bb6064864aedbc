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
import os
import sys

from moto_launch import die_with_the_benchmark, parse_arguments, serve


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
    parser.add_argument("--stream", required=True)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--data-bytes", type=int, default=100)
    args, moto_argv = parse_arguments(parser)
    die_with_the_benchmark()
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
    serve(args.port, moto_argv)


if __name__ == "__main__":
    main()
