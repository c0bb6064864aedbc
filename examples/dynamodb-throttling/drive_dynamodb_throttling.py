"""Drive the dynamodb-throttling example against a running emulator.

    emulator up --template examples/dynamodb-throttling/template.yaml --time-scale 30
    python examples/dynamodb-throttling/drive_dynamodb_throttling.py

Invokes the `order-writer` function at a steady rate for each of the three tables (each
invocation writes a batch of orders, one PutItem each) and prints, once a second, how many
writes each table took and throttled and its write capacity (from /_emulator/metrics). With
`--time-scale 30` two seconds of the run are a minute of DynamoDB's time: auto scaling,
whose alarm needs two minutes of high utilization, reacts within seconds. The exit status is 0
when the run shows the three behaviours: the provisioned table throttles to the end, the
auto-scaled one throttles until its capacity was raised and then no more, the on-demand one
never.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.config import Config

FUNCTION = "order-writer"
PROVISIONED, AUTOSCALED, ON_DEMAND = "orders-provisioned", "orders-autoscaled", "orders-on-demand"
TABLES = (PROVISIONED, AUTOSCALED, ON_DEMAND)


@dataclass
class Second:
    """One second of the run, per table."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    throttled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    capacity: dict[str, Any] = field(default_factory=dict)


def lambda_client(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client("lambda", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))


def fetch_metrics(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/metrics", timeout=10) as response:
        return json.loads(response.read())


def run(lam: Any, metrics: Callable[[], dict[str, Any]], *, seconds: float, rate: float, batch: int) -> list[Second]:
    """`rate` writes per second to each table for `seconds`; the run, second by second."""
    timeline = [Second() for _ in range(int(seconds) + 1)]
    started = time.monotonic()
    failures: list[BaseException] = []

    def load(table: str) -> None:
        interval = batch / rate
        next_at = started
        try:
            while (now := time.monotonic()) < started + seconds:
                if now < next_at:
                    time.sleep(next_at - now)
                next_at += interval
                answer = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"table": table, "count": batch}))
                result = json.load(answer["Payload"])
                if "FunctionError" in answer:
                    raise RuntimeError(f"{FUNCTION} failed: {result}")
                second = timeline[min(int(time.monotonic() - started), len(timeline) - 1)]
                second.written[table] += result["written"]
                second.throttled[table] += result["throttled"]
        except BaseException as exc:  # reported after the join
            failures.append(exc)

    workers = [threading.Thread(target=load, args=(table,), daemon=True) for table in TABLES]
    for worker in workers:
        worker.start()
    for index, second in enumerate(timeline):
        delay = started + index + 1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        tables = metrics().get("dynamodb", {}).get("tables", {})
        second.capacity = {table: tables.get(table, {}).get("ProvisionedWriteCapacityUnits") for table in TABLES}
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return timeline[: int(seconds)]


def report(timeline: list[Second]) -> str:
    header = f"{'s':>3}" + "".join(f"{table:>34}" for table in TABLES)
    lines = [header, f"{'':>3}" + "".join(f"{'written throttled   WCU':>34}" for _ in TABLES)]
    for index, second in enumerate(timeline, start=1):
        cells = []
        for table in TABLES:
            capacity = second.capacity.get(table)
            wcu = "on-demand" if table == ON_DEMAND else f"{capacity}"
            cells.append(f"{second.written[table]:>18} {second.throttled[table]:>9} {wcu:>5}")
        lines.append(f"{index:>3}" + "".join(f"{cell:>34}" for cell in cells))
    return "\n".join(lines)


def verdict(timeline: list[Second], tail: int = 3) -> dict[str, bool]:
    """What the run showed; `tail`: the last seconds, after auto scaling had time to act."""
    end = timeline[-tail:]
    return {
        "provisioned throttles to the end": all(s.throttled[PROVISIONED] for s in end),
        "auto scaling closed the throttle window": (sum(s.throttled[AUTOSCALED] for s in timeline) > 0
                                                    and not any(s.throttled[AUTOSCALED] for s in end)),
        "on-demand never throttled": not any(s.throttled[ON_DEMAND] for s in timeline),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:3001"))
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs (real seconds)")
    parser.add_argument("--rate", type=float, default=100.0, help="writes per second to each table")
    parser.add_argument("--batch", type=int, default=10, help="writes per invocation")
    args = parser.parse_args(argv)
    timeline = run(lambda_client(args.endpoint), lambda: fetch_metrics(args.endpoint), seconds=args.seconds,
                   rate=args.rate, batch=args.batch)
    print(report(timeline))
    activities = fetch_metrics(args.endpoint).get("dynamodb", {}).get("scaling_activities", [])
    for activity in activities:
        print(f"auto scaling {activity['ResourceId']}: {activity['From']} -> {activity['To']} WCU "
              f"({activity['StatusCode']}: {activity['Cause']})")
    shown = verdict(timeline)
    for what, seen in shown.items():
        print(f"{'yes' if seen else 'NO ':>3}  {what}")
    return 0 if all(shown.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
