"""Drive the kinesis-poison example against a running emulator.

    emulator up --template examples/kinesis-poison/template.yaml
    python examples/kinesis-poison/drive_kinesis_poison.py

Puts orders on the `orders` stream with one malformed record among them, then prints, once
a second, how far each consumer got: records processed, function errors, retries and the
iterator age of the shard (from the emulator's /_emulator/metrics). At the end it prints
what reached the `orders-poison` queue. The exit status is 0 when the emulator shows the bug
(the buggy consumer stuck) and the fix (the fixed consumer past the poison record).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any

import boto3

STREAM = "orders"
POISON_QUEUE = "orders-poison"
CONSUMERS = ("buggy-consumer", "fixed-consumer")
POISON = b"{this is not an order"


def clients(endpoint: str, region: str = "us-east-1") -> tuple[Any, Any]:
    options = {"endpoint_url": endpoint, "region_name": region, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("kinesis", **options), boto3.client("sqs", **options)


def put_orders(kinesis: Any, count: int, poison_at: int) -> list[dict[str, Any]]:
    """`count` orders on one partition key (one shard, in order); record `poison_at` is malformed."""
    entries = []
    for index in range(count):
        data = POISON if index == poison_at else json.dumps({"order": index, "amount": 100 + index}).encode()
        entries.append({"Data": data, "PartitionKey": "store-1"})
    result = kinesis.put_records(StreamName=STREAM, Records=entries)
    if result["FailedRecordCount"]:
        raise RuntimeError(f"PutRecords failed for {result['FailedRecordCount']} record(s)")
    return result["Records"]


def consumer_stats(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per consumer function: the counters of its Kinesis mapping."""
    stats = {}
    for mapping in metrics.get("event_source_mappings", {}).values():
        if ":kinesis:" not in mapping["EventSourceArn"]:
            continue
        name = mapping["FunctionArn"].split(":")[6]
        stats[name] = {
            "processed": mapping.get("RecordsProcessed", 0),
            "errors": mapping.get("FunctionErrors", 0),
            "retries": mapping.get("Retries", 0),
            "bisections": mapping.get("Bisections", 0),
            "iterator_age_ms": mapping.get("IteratorAgeMilliseconds", 0),
            "on_failure": mapping.get("OnFailureRecordsSent", 0),
        }
    return stats


def fetch_metrics(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/metrics", timeout=10) as response:
        return json.loads(response.read())


def poison_reports(sqs: Any) -> list[dict[str, Any]]:
    """The on-failure records in the poison queue (received, not deleted)."""
    url = sqs.get_queue_url(QueueName=POISON_QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:3001"))
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--poison-at", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to watch")
    args = parser.parse_args(argv)

    kinesis, sqs = clients(args.endpoint)
    put = put_orders(kinesis, args.orders, args.poison_at)
    print(f"put {args.orders} orders on {STREAM}; order {args.poison_at} is malformed "
          f"(sequence number {put[args.poison_at]['SequenceNumber']})")
    print(f"{'t':>4}  " + "  ".join(f"{name:>42}" for name in CONSUMERS))
    started = time.monotonic()
    stats: dict[str, dict[str, Any]] = {}
    while time.monotonic() - started < args.seconds:
        time.sleep(1)
        stats = consumer_stats(fetch_metrics(args.endpoint))
        cells = []
        for name in CONSUMERS:
            s = stats.get(name, {})
            cells.append(f"processed {s.get('processed', 0):>3} errors {s.get('errors', 0):>3} "
                         f"age {s.get('iterator_age_ms', 0) / 1000:>6.1f}s")
        print(f"{time.monotonic() - started:>4.0f}  " + "  ".join(f"{cell:>42}" for cell in cells))

    reports = poison_reports(sqs)
    print(f"\n{len(reports)} on-failure record(s) in {POISON_QUEUE}:")
    for report in reports:
        print(json.dumps({"condition": report["requestContext"]["condition"], **report["KinesisBatchInfo"]}, indent=2))
    buggy, fixed = stats.get("buggy-consumer", {}), stats.get("fixed-consumer", {})
    stuck = buggy.get("processed", 0) <= args.poison_at and buggy.get("errors", 0) > 0
    recovered = fixed.get("processed", 0) == args.orders - 1 and len(reports) >= 1
    print(f"\nbuggy consumer stuck behind the poison record: {stuck}")
    print(f"fixed consumer processed every other order and reported the poison one: {recovered}")
    return 0 if stuck and recovered else 1


if __name__ == "__main__":
    sys.exit(main())
