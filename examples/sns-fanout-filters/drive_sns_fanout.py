"""Drive the sns-fanout-filters example against a running emulator.

    emulator up --template examples/sns-fanout-filters/template.yaml
    python examples/sns-fanout-filters/drive_sns_fanout.py

Publishes orders to the `orders` topic (half with Publish, half with PublishBatch), each
with a `kind` and an `amount` attribute and a JSON body naming a shipping region. Then it
waits until every subscriber has settled and prints, per subscriber, how many orders its
filter let through and how many it filtered out, next to what AWS's rules predict (the
policies restated below in plain Python), and SNS's own counters for the topic (from
/_emulator/metrics, under CloudWatch's names). Exit status 0 when every count matches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any, Callable

import boto3

TOPIC = "orders"
KINDS = ("sale", "refund", "sale", "exchange")
REGIONS = ("eu-west-1", "us-east-1", "eu-central-1", "ap-south-1", "us-west-2")
BATCH = 10  # PublishBatch takes at most 10 entries
# Each subscriber's filter, as the template declares it, in plain Python.
DIRECT: dict[str, Callable[[dict[str, Any]], bool]] = {
    "audit": lambda o: True,
    "big-orders": lambda o: o["amount"] >= 500,
    "eu-orders": lambda o: o["shipping"]["region"].startswith("eu-"),
    "fulfilment": lambda o: o["kind"] != "refund",
}
REFUNDS_QUEUE: Callable[[dict[str, Any]], bool] = lambda o: o["kind"] == "refund"  # noqa: E731
REFUND_WORKER: Callable[[dict[str, Any]], bool] = lambda o: o["amount"] > 800  # noqa: E731


def orders(count: int) -> list[dict[str, Any]]:
    return [{"order": i, "kind": KINDS[i % len(KINDS)], "amount": (i * 137) % 1000,
             "shipping": {"region": REGIONS[i % len(REGIONS)]}} for i in range(count)]


def sns_client(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client("sns", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _attributes(order: dict[str, Any]) -> dict[str, Any]:
    return {"kind": {"DataType": "String", "StringValue": order["kind"]},
            "amount": {"DataType": "Number", "StringValue": str(order["amount"])}}


def publish(sns: Any, topic_arn: str, batch: list[dict[str, Any]]) -> None:
    """The first half one by one, the rest in batches of ten."""
    half = len(batch) // 2
    for order in batch[:half]:
        sns.publish(TopicArn=topic_arn, Message=json.dumps(order), MessageAttributes=_attributes(order))
    rest = batch[half:]
    for start in range(0, len(rest), BATCH):
        entries = [{"Id": str(order["order"]), "Message": json.dumps(order), "MessageAttributes": _attributes(order)}
                   for order in rest[start:start + BATCH]]
        answer = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        if answer["Failed"]:
            raise RuntimeError(f"PublishBatch refused entries: {answer['Failed']}")


def expected(batch: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out = {}
    for name, keeps in DIRECT.items():
        got = sum(1 for order in batch if keeps(order))
        out[name] = {"delivered": got, "filtered_out": len(batch) - got}
    refunds = [order for order in batch if REFUNDS_QUEUE(order)]
    out["refunds (queue)"] = {"delivered": len(refunds), "filtered_out": len(batch) - len(refunds)}
    worked = sum(1 for order in refunds if REFUND_WORKER(order))
    out["refund-worker"] = {"delivered": worked, "filtered_out": len(refunds) - worked}
    return out


def observed(metrics: dict[str, Any], topic_arn: str) -> dict[str, dict[str, int]]:
    """Per subscriber, from the emulator's metrics: a direct subscriber's deliveries are its
    asynchronous events that ran; the queue's are what SNS sent it; the worker's are its
    mapping's counters (InvokedEventCount, FilteredOutEventCount)."""
    topic = metrics.get("sns", {}).get("topics", {}).get(topic_arn, {})
    published = topic.get("NumberOfMessagesPublished", 0)
    out = {}
    for name in DIRECT:
        got = metrics.get("functions", {}).get(name, {}).get("AsyncEventsSucceeded", 0)
        out[name] = {"delivered": got, "filtered_out": published - got}
    sent_to_queues = topic.get("NumberOfNotificationsDelivered", 0) - sum(o["delivered"] for o in out.values())
    out["refunds (queue)"] = {"delivered": sent_to_queues, "filtered_out": published - sent_to_queues}
    worker = next((m for m in metrics.get("event_source_mappings", {}).values()
                   if m["FunctionArn"].split(":")[6] == "refund-worker"), {})
    out["refund-worker"] = {"delivered": worker.get("InvokedEventCount", 0),
                            "filtered_out": worker.get("FilteredOutEventCount", 0)}
    return out


def topic_counters(metrics: dict[str, Any], topic_arn: str) -> dict[str, int]:
    return metrics.get("sns", {}).get("topics", {}).get(topic_arn, {})


def fetch_metrics(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/metrics", timeout=10) as response:
        return json.loads(response.read())


def settle(read: Callable[[], dict[str, Any]], topic_arn: str, want: dict[str, dict[str, int]],
           timeout_s: float) -> dict[str, Any]:
    """The metrics once every subscriber shows the predicted counts (or the timeout ends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        metrics = read()
        if observed(metrics, topic_arn) == want or time.monotonic() >= deadline:
            return metrics
        time.sleep(0.1)


def report(metrics: dict[str, Any], topic_arn: str, want: dict[str, dict[str, int]]) -> bool:
    got = observed(metrics, topic_arn)
    print(f"{'subscriber':<18} {'delivered':>10} {'filtered out':>13}   {'AWS predicts':>14}")
    for name, counts in want.items():
        seen = got.get(name, {})
        mark = "" if seen == counts else "   <- differs"
        print(f"{name:<18} {seen.get('delivered', 0):>10} {seen.get('filtered_out', 0):>13}   "
              f"{counts['delivered']:>6} / {counts['filtered_out']:<6}{mark}")
    print("\nSNS's counters for the topic (CloudWatch's names):")
    for name, value in sorted(topic_counters(metrics, topic_arn).items()):
        print(f"  {name:<55} {value}")
    return got == want


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:3001"))
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30.0, help="how long to wait for every delivery")
    args = parser.parse_args(argv)

    sns = sns_client(args.endpoint)
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]  # idempotent: the template's topic
    batch = orders(args.orders)
    publish(sns, topic_arn, batch)
    print(f"published {len(batch)} orders to {topic_arn}\n")
    want = expected(batch)
    metrics = settle(lambda: fetch_metrics(args.endpoint), topic_arn, want, args.timeout)
    return 0 if report(metrics, topic_arn, want) else 1


if __name__ == "__main__":
    sys.exit(main())
