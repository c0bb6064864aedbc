"""Send the same burst to both queues of the overpull example and count what reaches each DLQ.

    emulator up --template examples/sqs-overpull/template.yaml     # terminal 1
    python examples/sqs-overpull/drive.py                           # terminal 2

It talks to the emulator only through boto3 (SQS through the emulator's one endpoint) and
its metrics endpoint, as any client would. Run it again at will: DLQ counts are deltas.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any, Callable

SIDES = ("bug", "fix")
DEFAULT_ENDPOINT = "http://127.0.0.1:3001"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def depth(sqs: Any, name: str) -> int:
    """Messages in the queue: visible, in flight and delayed."""
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(int(attributes[key]) for key in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                "ApproximateNumberOfMessagesDelayed"))


def send_burst(sqs: Any, name: str, count: int) -> None:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps({"order": start + i})} for i in range(min(10, count - start))]
        failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"SendMessageBatch to {name} failed: {failed}")


def drive(sqs: Any, *, messages: int = 100, timeout_s: float = 120.0,
          progress: Callable[[str], None] = lambda line: None) -> dict[str, dict[str, int]]:
    """Send `messages` to each queue, wait until both are empty, return what went where."""
    dlq_before = {side: depth(sqs, f"overpull-{side}-dlq") for side in SIDES}
    for side in SIDES:
        send_burst(sqs, f"overpull-{side}", messages)
    progress(f"sent {messages} messages to overpull-bug and to overpull-fix; waiting for both to drain ...")
    deadline = time.monotonic() + timeout_s
    while any(depth(sqs, f"overpull-{side}") for side in SIDES):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the queues did not drain within {timeout_s:.0f} s")
        time.sleep(0.2)
    result = {}
    for side in SIDES:
        dead = depth(sqs, f"overpull-{side}-dlq") - dlq_before[side]
        # Not "sent - dead" processed: a batch that outlives its visibility timeout is handled
        # and dead-lettered too (report() shows the deletes SQS accepted).
        result[side] = {"sent": messages, "dead_lettered": dead}
    return result


def metrics(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/metrics", timeout=10) as response:
        return json.loads(response.read())


def report(result: dict[str, dict[str, int]], snapshot: dict[str, Any] | None) -> str:
    lines = [f"{'':14}{'sent':>6}{'deleted':>9}{'in DLQ':>8}{'throttled batches':>19}{'handler errors':>16}"]
    mappings = (snapshot or {}).get("event_source_mappings", {}).values()
    functions = (snapshot or {}).get("functions", {})
    for side in SIDES:
        function = f"overpull-{side}-consumer"
        stats = next((m for m in mappings if m["FunctionArn"].endswith(":" + function)), {})
        row = result[side]
        lines.append(f"{side + ' (' + ('no max' if side == 'bug' else 'max 2') + ')':14}{row['sent']:>6}"
                     f"{stats.get('MessagesDeleted', '-'):>9}{row['dead_lettered']:>8}{stats.get('BatchesThrottled', '-'):>19}"
                     f"{functions.get(function, {}).get('Errors', '-'):>16}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT),
                        help="the emulator's URL (default $AWS_ENDPOINT_URL or http://127.0.0.1:3001)")
    parser.add_argument("--messages", type=int, default=100, help="messages sent to each queue (default 100)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    import boto3

    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name=args.region, **DUMMY_CREDENTIALS)
    result = drive(sqs, messages=args.messages, progress=print)
    print(report(result, metrics(args.endpoint)))
    bug, fix = result["bug"]["dead_lettered"], result["fix"]["dead_lettered"]
    print(f"\nWithout MaximumConcurrency {bug} valid message(s) went to the DLQ; with it, {fix}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
