"""The cost estimate: usage x the price table, checked against figures computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.advice.cost import FunctionUsage, PriceTableError, Usage, estimate, load_prices, put_payload_units, usage_from_run
from emulator.advice.facts import AppFacts, FunctionFacts, MappingFacts, QueueFacts, StreamFacts, TableFacts
from emulator.advice.observed import FunctionObserved, Observed, QueueObserved, StreamObserved

TABLE = {"currency": "USD", "date": "2026-11-30", "regions": {"us-east-1": {
    "lambda": {"requests_per_million": 0.20, "gb_second": {"x86_64": 0.0000166667, "arm64": 0.0000133334}, "source": "L"},
    "sqs": {"standard_requests_per_million": 0.40, "fifo_requests_per_million": 0.50, "source": "S"},
    "kinesis": {"shard_hour": 0.015, "put_payload_units_per_million": 0.014, "source": "K"},
    "apigateway": {"rest_requests_per_million": 3.50, "http_requests_per_million": 1.00,
                   "cache_hour_by_gb": {"0.5": 0.020}, "source": "A"},
    "dynamodb": {"wcu_hour": 0.00065, "rcu_hour": 0.00013, "source": "D"},
}}}


def cost_of(result: dict, item_start: str) -> float:
    return sum(line["cost"] for line in result["lines"] if line["item"].startswith(item_start))


def test_lambda_requests_and_gb_seconds() -> None:
    # 1,000 requests of 512 MB, 100,000 billed ms: 100 s x 0.5 GB = 50 GB-s
    usage = Usage(functions=(FunctionUsage("f", 1000, 100_000, 512),), requests=1000)
    result = estimate(usage, TABLE, "us-east-1", "test")
    assert cost_of(result, "Lambda f requests") == pytest.approx(1000 * 0.20 / 1e6)  # 0.0002
    assert cost_of(result, "Lambda f duration") == pytest.approx(50 * 0.0000166667)  # 0.000833335
    assert result["total"] == pytest.approx(0.001033335)
    assert result["per_million_requests"] == pytest.approx(1.033335)
    assert (result["currency"], result["region"], result["architecture"]) == ("USD", "us-east-1", "x86_64")
    assert result["price_table"]["date"] == "2026-11-30" and result["price_table"]["urls"]["lambda"] == "L"


def test_arm64_is_billed_at_its_own_rate() -> None:
    usage = Usage(functions=(FunctionUsage("f", 0, 100_000, 512, "arm64"),))
    result = estimate(usage, TABLE, "us-east-1", "test")
    assert result["total"] == pytest.approx(50 * 0.0000133334)
    assert result["architecture"] == "arm64" and result["per_million_requests"] is None


def test_queues_streams_apis_tables() -> None:
    usage = Usage(sqs_standard_requests=2_000_000, sqs_fifo_requests=1_000_000, kinesis_shard_hours=1.0,
                  kinesis_put_payload_units=2000, api_rest_requests=1_000_000, api_http_requests=1_000_000,
                  api_cache_hours={"0.5": 2.0}, dynamodb_rcu_hours=10, dynamodb_wcu_hours=5, requests=4_000_000)
    result = estimate(usage, TABLE, "us-east-1", "test")
    assert cost_of(result, "SQS standard") == pytest.approx(0.80)
    assert cost_of(result, "SQS FIFO") == pytest.approx(0.50)
    assert cost_of(result, "Kinesis shard") == pytest.approx(0.015)
    assert cost_of(result, "Kinesis PUT") == pytest.approx(0.000028)
    assert cost_of(result, "API Gateway REST") == pytest.approx(3.50)
    assert cost_of(result, "API Gateway HTTP") == pytest.approx(1.00)
    assert cost_of(result, "API Gateway cache") == pytest.approx(0.04)
    assert cost_of(result, "DynamoDB read") == pytest.approx(0.0013)
    assert cost_of(result, "DynamoDB write") == pytest.approx(0.00325)
    assert result["total"] == pytest.approx(0.80 + 0.50 + 0.015 + 0.000028 + 3.50 + 1.00 + 0.04 + 0.0013 + 0.00325)


def test_put_payload_units_are_25_kb_chunks_of_each_record() -> None:
    assert put_payload_units(1000, 1000 * 30 * 1024) == 2000  # 30 KB records: two units each
    assert put_payload_units(10, 10 * 100) == 10  # small records: one unit each
    assert put_payload_units(0, 0) == 0


def test_usage_from_a_run() -> None:
    facts = AppFacts(
        functions={"f": FunctionFacts("f", memory_mb=256, architecture="arm64")},
        queues={"q": QueueFacts("q")},
        streams={"s": StreamFacts("s", shards=4)},
        mappings=(MappingFacts("f", "sqs", "q", batch_size=5),),
        tables={"t": TableFacts("t", on_demand=False, read_capacity=10, write_capacity=5)},
    )
    observed = Observed(seconds=1800, functions={"f": FunctionObserved(invocations=10, duration_count=10, duration_sum_ms=95.0)},
                        queues={"q": QueueObserved(received=23, deleted=21)},
                        streams={"s": StreamObserved(records=3, bytes=3 * 26 * 1024)})
    usage = usage_from_run(facts, observed, requests=7, sqs_sends=3)
    assert usage.functions == (FunctionUsage("f", 10, 100.0, 256, "arm64"),)  # 95 ms + 10 x 0.5 ms rounding
    assert usage.sqs_standard_requests == 3 + 5 + 3  # sends; ceil(23 / 5) receives; ceil(21 / 10) deletes
    assert usage.kinesis_shard_hours == pytest.approx(2.0)  # 4 shards x half an hour
    assert usage.kinesis_put_payload_units == 6
    assert (usage.dynamodb_rcu_hours, usage.dynamodb_wcu_hours) == (5.0, 2.5)
    assert usage.requests == 7


def test_bundled_table_has_the_regions_and_its_date() -> None:
    table, where = load_prices()
    assert {"us-east-1", "eu-west-1"} <= set(table["regions"]) and table["date"]
    assert "bundled" in where
    for prices in table["regions"].values():
        assert prices["lambda"]["gb_second"]["x86_64"] == 0.0000166667
        assert all(entry["source"].startswith("https://aws.amazon.com/") for entry in prices.values() if isinstance(entry, dict))


def test_a_table_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(TABLE))
    table, where = load_prices(path)
    assert where == str(path) and table["date"] == "2026-11-30"
    with pytest.raises(PriceTableError, match="no prices for ap-south-2"):
        estimate(Usage(), table, "ap-south-2", where)
    path.write_text("{")
    with pytest.raises(PriceTableError, match="cannot read"):
        load_prices(path)
