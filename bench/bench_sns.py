"""Benchmark 15: SNS fan-out to Lambda, and the cost of filter policies.

1. end to end (`emulator up --backend moto`): a topic with 10 Lambda subscriptions (SAM
   `Events: Type: SNS`, no-op handlers); messages published with PublishBatch (10 per call)
   on one keep-alive connection, as fast as it goes; the rate is published messages per
   second from the first publish until every delivery has run (each message is 10 async
   invokes). Two topics on the same 10 functions, A/B in the same run, interleaved rounds:
   `plain` (no filter policies) and `filtered` (each subscription with a typical attribute
   policy that matches, so the same work follows). The baseline is the same number of
   asynchronous invokes sent straight to the functions (`InvocationType=Event`, one
   keep-alive connection): what the async queue does without SNS in front.
2. in-process, the filter languages themselves (emulator/patterns): µs per message and
   subscription for a typical SNS attribute policy, a payload policy, and a Lambda event
   filter on an SQS record; the baseline is the same loop deciding nothing.

The target (issue 9): >= 2,000 messages/s to a topic with 10 Lambda subscriptions; filter
matching <= 10 µs per message and subscription for a typical policy.
"""

from __future__ import annotations

import json
import time
import timeit
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from harness import NOOP_SOURCE, scratch_dir, start_emulator, wait_until
from rawhttp import KeepAliveClient, build_request, invoke_request
from report import Row, verdict
from settings import Settings

REGION, ACCOUNT = "us-east-1", "123456789012"
SUBSCRIBERS = 10
BATCH = 10  # PublishBatch's most entries
TARGET_MESSAGES_PER_S = 2_000
TARGET_MATCH_US = 10.0
MESSAGES_FULL, MESSAGES_QUICK = 4_000, 1_000
ROUNDS_FULL, ROUNDS_QUICK = 3, 1
SETTLE_TIMEOUT_S = 300.0
TYPICAL_POLICY = {"store": ["eu-1", "eu-2", "us-1"], "amount": [{"numeric": [">=", 0]}], "kind": [{"anything-but": "test"}]}
PAYLOAD_POLICY = {"order": {"shipping": {"region": [{"prefix": "eu-"}]}, "kind": ["sale", "refund"]}}
LAMBDA_FILTER = {"body": {"kind": ["sale"], "amount": [{"numeric": [">", 10]}]}}
AUTH = (f"AWS4-HMAC-SHA256 Credential=AKIAEMULATORBENCH000/20240101/{REGION}/sns/aws4_request, "
        "SignedHeaders=host, Signature=0")


def template(workdir: Path) -> Path:
    code = workdir / "code"
    code.mkdir()
    (code / "app.py").write_text(NOOP_SOURCE)
    resources: dict[str, Any] = {
        "Plain": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "plain"}},
        "Filtered": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "filtered"}},
    }
    for index in range(SUBSCRIBERS):
        resources[f"Fn{index}"] = {"Type": "AWS::Serverless::Function", "Properties": {
            "FunctionName": f"sub-{index}", "CodeUri": str(code), "Handler": "app.handler", "Runtime": "python3.11",
            "MemorySize": 128, "Timeout": 30, "Events": {
                "P": {"Type": "SNS", "Properties": {"Topic": {"Ref": "Plain"}}},
                "F": {"Type": "SNS", "Properties": {"Topic": {"Ref": "Filtered"}, "FilterPolicy": TYPICAL_POLICY}},
            }}}  # fmt: skip
    path = workdir / "template.json"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
    return path


def publish_batch_requests(topic: str, messages: int) -> list[bytes]:
    """Prebuilt PublishBatch requests (SNS's query protocol) of 10 messages each."""
    requests = []
    for start in range(0, messages, BATCH):
        form: dict[str, str] = {"Action": "PublishBatch", "Version": "2010-03-31",
                                "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"}
        for n, i in enumerate(range(start, min(messages, start + BATCH)), start=1):
            entry = f"PublishBatchRequestEntries.member.{n}"
            form[f"{entry}.Id"] = str(i)
            form[f"{entry}.Message"] = json.dumps({"order": i})
            for a, (name, kind, value) in enumerate((("store", "String", "eu-1"), ("amount", "Number", str(i)),
                                                     ("kind", "String", "sale")), start=1):
                form[f"{entry}.MessageAttributes.entry.{a}.Name"] = name
                form[f"{entry}.MessageAttributes.entry.{a}.Value.DataType"] = kind
                form[f"{entry}.MessageAttributes.entry.{a}.Value.StringValue"] = value
        requests.append(build_request("POST", "/", urllib.parse.urlencode(form).encode(), {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Authorization": AUTH}))
    return requests


def succeeded(url: str) -> int:
    with urllib.request.urlopen(url + "/_emulator/metrics", timeout=30) as response:
        functions = json.loads(response.read())["functions"]
    return sum(functions.get(f"sub-{i}", {}).get("AsyncEventsSucceeded", 0) for i in range(SUBSCRIBERS))


def drive(emulator: Any, requests: list[bytes], expect_status: int, deliveries: int) -> tuple[float, float]:
    """Send every request, then wait until `deliveries` more async events have run; (seconds in
    all, seconds the sending took)."""
    before = succeeded(emulator.url)
    started = time.perf_counter()
    with KeepAliveClient(emulator.host, emulator.port) as client:
        for request in requests:
            response = client.send(request)
            if response.status != expect_status:
                raise RuntimeError(f"answered {response.status}: {response.body[:300]!r}")
    sent = time.perf_counter()
    if not wait_until(lambda: succeeded(emulator.url) - before >= deliveries, SETTLE_TIMEOUT_S, interval_s=0.05):
        raise RuntimeError(f"{deliveries} deliveries did not run within {SETTLE_TIMEOUT_S:.0f} s")
    return time.perf_counter() - started, sent - started


def end_to_end(settings: Settings) -> dict[str, list[float]]:
    messages = MESSAGES_QUICK if settings.quick else MESSAGES_FULL
    rounds = ROUNDS_QUICK if settings.quick else ROUNDS_FULL
    deliveries = messages * SUBSCRIBERS
    rates: dict[str, list[float]] = {"plain": [], "filtered": [], "direct": []}
    direct = [invoke_request(f"sub-{i % SUBSCRIBERS}", json.dumps({"order": i}).encode(),
                             {"X-Amz-Invocation-Type": "Event"}) for i in range(deliveries)]
    with scratch_dir("sns") as tmp:
        workdir = Path(tmp)
        with start_emulator(workdir, template(workdir), "--backend", "moto") as emulator:
            drive(emulator, publish_batch_requests("plain", BATCH * 10), 200, BATCH * 10 * SUBSCRIBERS)  # warm
            for _ in range(rounds):  # interleaved, so the machine's load falls on each alike
                for topic in ("plain", "filtered"):
                    seconds, _ = drive(emulator, publish_batch_requests(topic, messages), 200, deliveries)
                    rates[topic].append(messages / seconds)
                seconds, _ = drive(emulator, direct, 202, deliveries)
                rates["direct"].append(messages / seconds)  # the same invokes, per "message" of 10
    return rates


def matching_cost(settings: Settings) -> dict[str, float]:
    """µs per message and subscription, best of 5 repeats."""
    from emulator.patterns.event_filter import compile_filters
    from emulator.patterns.sns_policy import PublishedMessage, parse_policy

    number = 5_000 if settings.quick else 20_000
    attributes = {"store": {"Type": "String", "Value": "eu-2"}, "amount": {"Type": "Number", "Value": "150"},
                  "kind": {"Type": "String", "Value": "sale"}}
    body = json.dumps({"order": {"shipping": {"region": "eu-west-1"}, "kind": "sale", "lines": list(range(5))}})
    attribute_policy = parse_policy(json.dumps(TYPICAL_POLICY), "MessageAttributes")
    payload_policy = parse_policy(json.dumps(PAYLOAD_POLICY), "MessageBody")
    lambda_filter = compile_filters({"Filters": [{"Pattern": json.dumps(LAMBDA_FILTER)}]}, "sqs")
    assert lambda_filter is not None
    record = {"messageId": "m", "receiptHandle": "r", "body": json.dumps({"kind": "sale", "amount": 50}),
              "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}

    def per_call_us(fn: Any) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    # A message's attributes and body are decoded once, for its first subscription with a
    # policy of that scope; the others reuse them (sns_policy.PublishedMessage). So: the
    # first subscription's decision from the message as it arrives, and each further one.
    decoded = PublishedMessage(body, attributes)
    attribute_policy.decide(decoded)
    payload_policy.decide(decoded)
    return {
        "baseline": per_call_us(lambda: PublishedMessage(body, attributes) is None),
        "attributes first": per_call_us(lambda: attribute_policy.decide(PublishedMessage(body, attributes))),
        "attributes": per_call_us(lambda: attribute_policy.decide(decoded)),
        "payload first": per_call_us(lambda: payload_policy.decide(PublishedMessage(body, attributes))),
        "payload": per_call_us(lambda: payload_policy.decide(decoded)),
        "lambda": per_call_us(lambda: lambda_filter.keeps(record)),
    }


def run(settings: Settings) -> list[Row]:
    rates = end_to_end(settings)
    costs = matching_cost(settings)
    name = f"15 SNS fan-out ({SUBSCRIBERS} Lambda subscriptions)"
    best = {key: max(values) for key, values in rates.items()}
    rows = [
        Row(name, "Publish -> every delivery run, messages/s (no policies)", f"{best['plain']:,.0f}",
            f"{best['direct']:,.0f} (same invokes sent directly)", f">= {TARGET_MESSAGES_PER_S:,}", "",
            verdict(best["plain"], TARGET_MESSAGES_PER_S, at_least=True)),
        Row(name, "the same with a matching policy on each subscription", f"{best['filtered']:,.0f}",
            f"{best['plain']:,.0f} (no policies)", f">= {TARGET_MESSAGES_PER_S:,}", "",
            verdict(best["filtered"], TARGET_MESSAGES_PER_S, at_least=True)),
        Row(name, "rounds (plain / filtered / direct)",
            " / ".join(", ".join(f"{v:,.0f}" for v in rates[key]) for key in ("plain", "filtered", "direct"))),
    ]
    base = costs["baseline"]
    for key, label in (("attributes", "SNS attribute policy (3 keys), each subscription"),
                       ("attributes first", "SNS attribute policy, first subscription (decodes the attributes)"),
                       ("payload", "SNS payload policy (nested), each subscription"),
                       ("payload first", "SNS payload policy, first subscription (parses the body)"),
                       ("lambda", "Lambda event filter on an SQS record (parses the body)")):
        cost = costs[key] - base if key.endswith("first") else costs[key]
        rows.append(Row(name, f"{label}: us per message", f"{cost:.2f} us",
                        f"{base:.2f} us (message built, nothing decided)", f"<= {TARGET_MATCH_US:.0f} us", "",
                        verdict(cost, TARGET_MATCH_US)))
    return rows
