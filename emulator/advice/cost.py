"""What a run would cost on AWS: usage (requests, billed milliseconds, shard hours ...) times
the price table (`prices.json`, or a file of the same shape). Pure: the usage is built by
the caller (`usage_from_run`), the prices are a dict.

Lambda bills requests and GB-seconds of duration rounded up to the millisecond
(https://aws.amazon.com/lambda/pricing/); SQS bills every API request, each 64 KiB of
payload one request (https://aws.amazon.com/sqs/pricing/); provisioned Kinesis streams
shard hours and 25 KB PUT payload units (https://aws.amazon.com/kinesis/data-streams/pricing/);
API Gateway REST and HTTP API requests and cache hours (https://aws.amazon.com/api-gateway/pricing/);
DynamoDB provisioned capacity hours (https://aws.amazon.com/dynamodb/pricing/).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from emulator.advice.facts import AppFacts
from emulator.advice.observed import Observed

MB_PER_GB = 1024
MS_PER_S = 1000
SECONDS_PER_HOUR = 3600
MILLION = 1_000_000
# A Kinesis PUT payload unit is a 25 KB chunk of a record (the Kinesis pricing page).
PUT_PAYLOAD_UNIT_BYTES = 25 * 1024
# The most messages one ReceiveMessage or DeleteMessageBatch call handles:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
SQS_BATCH_MAX = 10
ARCHITECTURES = ("x86_64", "arm64")
BUNDLED = "prices.json"


class PriceTableError(ValueError):
    """A price table that cannot be read or lacks the Region asked for."""


def load_prices(path: Path | None = None) -> tuple[dict[str, Any], str]:
    """(table, where it came from): a file the user gives, else the bundled one."""
    try:
        if path is None:
            text = resources.files("emulator.advice").joinpath(BUNDLED).read_text()
            where = f"bundled {BUNDLED}"
        else:
            text = Path(path).read_text()
            where = str(path)
        table = json.loads(text)
    except (OSError, ValueError) as exc:
        raise PriceTableError(f"cannot read the price table {path or BUNDLED}: {exc}") from None
    if not isinstance(table, dict) or not isinstance(table.get("regions"), dict):
        raise PriceTableError(f"the price table {path or BUNDLED} has no 'regions' object")
    return table, where


@dataclass(frozen=True)
class FunctionUsage:
    name: str
    requests: int
    billed_ms: float
    memory_mb: int
    architecture: str = "x86_64"


@dataclass(frozen=True)
class Usage:
    functions: tuple[FunctionUsage, ...] = ()
    sqs_standard_requests: int = 0
    sqs_fifo_requests: int = 0
    kinesis_shard_hours: float = 0.0
    kinesis_put_payload_units: int = 0
    api_rest_requests: int = 0
    api_http_requests: int = 0
    api_cache_hours: Mapping[str, float] = field(default_factory=dict)  # cache size (GB, as the table names it) -> hours
    dynamodb_rcu_hours: float = 0.0
    dynamodb_wcu_hours: float = 0.0
    requests: int = 0  # what "per million requests" divides by (the run's requests)


def estimate(usage: Usage, table: Mapping[str, Any], region: str, source: str) -> dict[str, Any]:
    """report.json's `cost` (docs/report-json.md)."""
    prices = (table.get("regions") or {}).get(region)
    if prices is None:
        raise PriceTableError(f"the price table has no prices for {region} (it has {', '.join(sorted(table['regions']))})")
    lines: list[dict[str, Any]] = []

    def add(item: str, quantity: float, unit: str, unit_price: float) -> None:
        if quantity:
            lines.append({"item": item, "quantity": quantity, "unit": unit, "unit_price": unit_price,
                          "cost": quantity * unit_price})

    lam = prices["lambda"]
    architectures = set()
    for fn in usage.functions:
        architectures.add(fn.architecture)
        per_gb_s = lam["gb_second"][fn.architecture]
        add(f"Lambda {fn.name} requests", fn.requests, "requests", lam["requests_per_million"] / MILLION)
        gb_seconds = fn.billed_ms / MS_PER_S * fn.memory_mb / MB_PER_GB
        add(f"Lambda {fn.name} duration ({fn.memory_mb} MB, {fn.architecture})", gb_seconds, "GB-seconds", per_gb_s)
    if usage.sqs_standard_requests or usage.sqs_fifo_requests:
        sqs = prices["sqs"]
        add("SQS standard requests", usage.sqs_standard_requests, "requests", sqs["standard_requests_per_million"] / MILLION)
        add("SQS FIFO requests", usage.sqs_fifo_requests, "requests", sqs["fifo_requests_per_million"] / MILLION)
    if usage.kinesis_shard_hours or usage.kinesis_put_payload_units:
        kinesis = prices["kinesis"]
        add("Kinesis shard hours", usage.kinesis_shard_hours, "shard-hours", kinesis["shard_hour"])
        add("Kinesis PUT payload units", usage.kinesis_put_payload_units, "units",
            kinesis["put_payload_units_per_million"] / MILLION)
    if usage.api_rest_requests or usage.api_http_requests or usage.api_cache_hours:
        api = prices["apigateway"]
        add("API Gateway REST API requests", usage.api_rest_requests, "requests", api["rest_requests_per_million"] / MILLION)
        add("API Gateway HTTP API requests", usage.api_http_requests, "requests", api["http_requests_per_million"] / MILLION)
        for size, hours in sorted(usage.api_cache_hours.items()):
            add(f"API Gateway cache {size} GB", hours, "hours", api["cache_hour_by_gb"][size])
    if usage.dynamodb_rcu_hours or usage.dynamodb_wcu_hours:
        ddb = prices["dynamodb"]
        add("DynamoDB read capacity", usage.dynamodb_rcu_hours, "RCU-hours", ddb["rcu_hour"])
        add("DynamoDB write capacity", usage.dynamodb_wcu_hours, "WCU-hours", ddb["wcu_hour"])
    total = sum(line["cost"] for line in lines)
    return {
        "currency": table.get("currency", "USD"),
        "region": region,
        "architecture": "+".join(sorted(architectures)) if architectures else None,
        "total": total,
        "per_million_requests": total / usage.requests * MILLION if usage.requests else None,
        "requests": usage.requests,
        "lines": lines,
        "price_table": {"date": table.get("date"), "source": source, "note": table.get("note"),
                        "urls": {service: entry["source"] for service, entry in prices.items()
                                 if isinstance(entry, dict) and "source" in entry}},
    }


def put_payload_units(records: int, total_bytes: int) -> int:
    """PUT payload units of `records` records of `total_bytes` together: each record is at
    least one 25 KB unit; records are taken as equally large (the timeline counts bytes per
    stream, not per record)."""
    if not records:
        return 0
    return records * max(1, math.ceil(total_bytes / records / PUT_PAYLOAD_UNIT_BYTES))


def usage_from_run(facts: AppFacts, observed: Observed, requests: int, sqs_sends: int = 0) -> Usage:
    """A run's usage from its timeline: Lambda from invocations and durations; SQS from the
    messages sent (`sqs_sends`: the generator's SendMessageBatch calls, if any), received
    (one ReceiveMessage per batch of the mapping's size) and deleted (one DeleteMessageBatch
    per 10); Kinesis from shard hours over the run and the records put; API Gateway from its
    requests and cache hours; DynamoDB from provisioned capacity over the run. Empty
    receives of idle pollers are billed by AWS too and are not counted here."""
    hours = observed.seconds / SECONDS_PER_HOUR
    functions = []
    for name, fn in sorted(observed.functions.items()):
        if not fn.invocations:
            continue
        spec = facts.functions.get(name)
        functions.append(FunctionUsage(name, fn.invocations, fn.billed_ms_estimate,
                                       spec.memory_mb if spec else 128, spec.architecture if spec else "x86_64"))
    standard = fifo = 0
    batch_of = {m.source_name: (m.batch_size or SQS_BATCH_MAX) for m in facts.mappings if m.source_kind == "sqs"}
    for name, queue in observed.queues.items():
        calls = math.ceil(queue.received / min(SQS_BATCH_MAX, batch_of.get(name, SQS_BATCH_MAX))) + \
            math.ceil(queue.deleted / SQS_BATCH_MAX)
        spec = facts.queues.get(name)
        if spec is not None and spec.fifo:
            fifo += calls
        else:
            standard += calls
    standard += sqs_sends
    shard_hours = sum(s.shards * hours for s in facts.streams.values() if not s.on_demand)
    units = sum(put_payload_units(s.records, s.bytes) for s in observed.streams.values())
    rest = sum(a.requests for a in observed.apis.values() if a.kind == "REST")
    http = sum(a.requests for a in observed.apis.values() if a.kind == "HTTP")
    cache: dict[str, float] = {}
    for api in facts.apis:
        if api.cache_size_gb:
            key = f"{api.cache_size_gb:g}"
            cache[key] = cache.get(key, 0.0) + hours
    provisioned = [t for t in facts.tables.values() if not t.on_demand]
    return Usage(
        functions=tuple(functions), sqs_standard_requests=standard, sqs_fifo_requests=fifo,
        kinesis_shard_hours=shard_hours, kinesis_put_payload_units=units,
        api_rest_requests=rest, api_http_requests=http, api_cache_hours=cache,
        dynamodb_rcu_hours=sum(t.read_capacity for t in provisioned) * hours,
        dynamodb_wcu_hours=sum(t.write_capacity for t in provisioned) * hours,
        requests=requests,
    )
