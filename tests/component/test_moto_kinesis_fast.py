"""moto's Kinesis through boto3, against the moto server the emulator starts (with
emulator/moto_child/fast_kinesis.py applied) and, for parity, against plain moto.

Each test named `test_parity_*` runs the same assertions against both servers: ordering,
paging, iterator types, partition-key routing, errors and metrics. The `test_fast_*` tests
pin down where the fast model follows AWS instead of moto (the list is in the docstring of
emulator/moto_child/fast_kinesis.py): 56-digit sequence numbers, the 10,000-record page,
iterator expiry, routing at the end of a hash range and after a split.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import threading
import time
import uuid
from collections import defaultdict
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from backend_testkit import moto_client
from emulator.backend.moto_process import MotoServer
from emulator.moto_child import fast_kinesis, versions
from emulator.moto_child.kinesis_store import HASH_KEY_LIMIT, SHARD_ITERATOR_LIFETIME_MS, ShardIterator

pytestmark = pytest.mark.component

REGION, ACCOUNT = "us-east-1", "123456789012"


def client(server: MotoServer, service: str = "kinesis") -> Any:
    return moto_client(server, service)


@pytest.fixture(params=["fast", "plain"])
def kinesis(request: pytest.FixtureRequest, servers: dict[str, MotoServer]) -> Any:
    return client(servers[request.param])


@pytest.fixture
def fast(servers: dict[str, MotoServer]) -> Any:
    return client(servers["fast"])


def new_stream(kinesis: Any, shards: int = 1) -> str:
    name = f"s-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return name


def put(kinesis: Any, name: str, items: list[tuple[str, str]], **extra: Any) -> list[dict[str, Any]]:
    """PutRecords of (partition key, data); [{"key", "data", "SequenceNumber", "ShardId"}]."""
    result = kinesis.put_records(StreamName=name, Records=[{"PartitionKey": k, "Data": d.encode(), **extra} for k, d in items])
    assert result["FailedRecordCount"] == 0 and len(result["Records"]) == len(items)
    return [{"key": k, "data": d, **r} for (k, d), r in zip(items, result["Records"])]


def iterator(kinesis: Any, name: str, shard: str, kind: str = "TRIM_HORIZON", **extra: Any) -> str:
    return kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind, **extra)["ShardIterator"]


def read_all(kinesis: Any, name: str, shard: str, token: str, limit: int = 1000) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for _ in range(1000):
        page = kinesis.get_records(ShardIterator=token, Limit=limit)
        records.extend(page["Records"])
        if not page["Records"]:
            return records
        token = page["NextShardIterator"]
    raise AssertionError("the shard did not end")


def shard_ranges(kinesis: Any, name: str) -> dict[str, tuple[int, int]]:
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    return {s["ShardId"]: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards}


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return error.value.response["Error"]["Code"]


# -- order, paging, routing ------------------------------------------------------------------------
def test_parity_records_come_back_in_put_order_per_shard_in_pages(kinesis: Any) -> None:
    name = new_stream(kinesis, shards=3)
    sent = put(kinesis, name, [(f"key-{i % 9}", f"r{i}") for i in range(60)])
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sent:
        by_shard[record["ShardId"]].append(record)
    for shard, expected in by_shard.items():
        got = read_all(kinesis, name, shard, iterator(kinesis, name, shard), limit=4)
        assert [r["Data"].decode() for r in got] == [e["data"] for e in expected]
        assert [r["PartitionKey"] for r in got] == [e["key"] for e in expected]
        assert [r["SequenceNumber"] for r in got] == [e["SequenceNumber"] for e in expected]
        numbers = [int(r["SequenceNumber"]) for r in got]
        assert numbers == sorted(set(numbers)), "increasing within the shard"
        assert all(isinstance(r["ApproximateArrivalTimestamp"], datetime.datetime) for r in got)
    assert sum(len(v) for v in by_shard.values()) == 60


def test_parity_partition_keys_route_by_md5_into_hash_ranges(kinesis: Any) -> None:
    name = new_stream(kinesis, shards=4)
    ranges = shard_ranges(kinesis, name)
    assert sorted(ranges.values())[0][0] == 0 and max(end for _, end in ranges.values()) == HASH_KEY_LIMIT - 1
    sent = put(kinesis, name, [(f"user-{i}", "x") for i in range(40)] + [("user-7", "again")])
    for record in sent:
        low, high = ranges[record["ShardId"]]
        assert low <= int(hashlib.md5(record["key"].encode()).hexdigest(), 16) <= high
    assert sent[7]["ShardId"] == sent[-1]["ShardId"], "one key, one shard"
    assert len({r["ShardId"] for r in sent}) > 1
    second_start = sorted(ranges.values())[1][0]
    [explicit] = put(kinesis, name, [("any", "y")], ExplicitHashKey=str(second_start + 5))
    assert ranges[explicit["ShardId"]][0] == second_start


def test_parity_put_record_then_get(kinesis: Any) -> None:
    name = new_stream(kinesis)
    first = kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"\x00\x01\xff")
    second = kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"two")
    assert first["ShardId"] == second["ShardId"] == "shardId-000000000000"
    assert int(first["SequenceNumber"]) < int(second["SequenceNumber"])
    got = read_all(kinesis, name, first["ShardId"], iterator(kinesis, name, first["ShardId"]))
    assert [r["Data"] for r in got] == [b"\x00\x01\xff", b"two"]


# -- iterator types ----------------------------------------------------------------------------------
def test_parity_iterator_types_start_where_they_say(kinesis: Any) -> None:
    name = new_stream(kinesis)
    shard = "shardId-000000000000"
    old = put(kinesis, name, [("k", f"old-{i}") for i in range(5)])
    time.sleep(0.05)  # arrivals have millisecond resolution: keep the groups apart
    boundary = time.time()
    time.sleep(0.05)
    latest = iterator(kinesis, name, shard, "LATEST")
    put(kinesis, name, [("k", "new-0"), ("k", "new-1")])

    def datas(token: str) -> list[str]:
        return [r["Data"].decode() for r in read_all(kinesis, name, shard, token)]

    assert datas(iterator(kinesis, name, shard)) == [f"old-{i}" for i in range(5)] + ["new-0", "new-1"]
    assert datas(latest) == ["new-0", "new-1"]
    at = iterator(kinesis, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=old[2]["SequenceNumber"])
    assert datas(at)[:2] == ["old-2", "old-3"]
    after = iterator(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=old[2]["SequenceNumber"])
    assert datas(after)[:2] == ["old-3", "old-4"]
    assert datas(iterator(kinesis, name, shard, "AT_TIMESTAMP", Timestamp=boundary)) == ["new-0", "new-1"]
    assert len(datas(iterator(kinesis, name, shard, "AT_TIMESTAMP", Timestamp=boundary - 3600))) == 7


def test_parity_get_records_from_the_end_is_empty_and_caught_up(kinesis: Any) -> None:
    name = new_stream(kinesis)
    shard = "shardId-000000000000"
    put(kinesis, name, [("k", "a"), ("k", "b")])
    page = kinesis.get_records(ShardIterator=iterator(kinesis, name, shard), Limit=10)
    assert len(page["Records"]) == 2 and page["MillisBehindLatest"] == 0
    empty = kinesis.get_records(ShardIterator=page["NextShardIterator"], Limit=10)
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0 and empty["NextShardIterator"]
    put(kinesis, name, [("k", "c")])
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=empty["NextShardIterator"])["Records"]] == [b"c"]


# -- describe, errors, metrics ---------------------------------------------------------------------------
def test_parity_shards_describe_their_ranges_and_starting_sequence_numbers(kinesis: Any) -> None:
    name = new_stream(kinesis, shards=2)
    [record] = put(kinesis, name, [("k", "x")])
    for listing in (kinesis.list_shards(StreamName=name)["Shards"],
                    kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]):
        assert [s["ShardId"] for s in listing] == ["shardId-000000000000", "shardId-000000000001"]
        for shard in listing:
            start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
            assert start.isdigit() and "EndingSequenceNumber" not in shard["SequenceNumberRange"]
            if shard["ShardId"] == record["ShardId"]:
                assert int(start) <= int(record["SequenceNumber"])
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 2 and summary["RetentionPeriodHours"] == 24


def test_parity_errors(kinesis: Any) -> None:
    name = new_stream(kinesis)
    shard = "shardId-000000000000"
    records = [{"PartitionKey": "k", "Data": b"x"}]
    assert error_code(kinesis.put_records, StreamName=name + "-missing", Records=records) == "ResourceNotFoundException"
    assert error_code(kinesis.put_record, StreamName=name + "-missing", PartitionKey="k", Data=b"x") == "ResourceNotFoundException"
    assert error_code(kinesis.put_records, StreamName=name, Records=records * 501) == "ValidationException"
    assert error_code(kinesis.put_records, StreamName=name, Records=[{"PartitionKey": "k", "Data": b"x" * 1_048_577}]) == "ValidationException"
    assert error_code(kinesis.put_records, StreamName=name,
                      Records=[{"PartitionKey": "k", "Data": b"x" * 1_000_000}] * 6) == "InvalidArgumentException"
    assert error_code(kinesis.put_records, StreamName=name, Records=[{"PartitionKey": "k" * 257, "Data": b"x"}]) == "InvalidArgumentException"
    assert error_code(kinesis.get_shard_iterator, StreamName=name, ShardId="shardId-000000000009",
                      ShardIteratorType="TRIM_HORIZON") == "ResourceNotFoundException"
    assert error_code(kinesis.get_shard_iterator, StreamName=name, ShardId=shard, ShardIteratorType="SIDEWAYS") == "InvalidArgumentException"
    assert error_code(kinesis.get_shard_iterator, StreamName=name + "-missing", ShardId=shard,
                      ShardIteratorType="LATEST") == "ResourceNotFoundException"
    # Nothing of a rejected PutRecords was stored.
    assert read_all(kinesis, name, shard, iterator(kinesis, name, shard)) == []


def test_parity_incoming_metrics_add_up(kinesis: Any, servers: dict[str, MotoServer], request: pytest.FixtureRequest) -> None:
    name = new_stream(kinesis, shards=2)
    for _ in range(7):
        put(kinesis, name, [(f"k{i}", "12345") for i in range(10)])
    kinesis.put_record(StreamName=name, PartitionKey="k", Data=b"abc")
    cloudwatch = client(servers[request.node.callspec.params["kinesis"]], "cloudwatch")
    now = datetime.datetime.now(datetime.timezone.utc)

    def statistic(metric: str, stat: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Kinesis", MetricName=metric, Dimensions=[{"Name": "StreamName", "Value": name}],
            StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=10),
            Period=60, Statistics=[stat],
        )["Datapoints"]
        return sum(point[stat] for point in points)

    assert statistic("IncomingRecords", "Sum") == 71
    assert statistic("IncomingRecords", "SampleCount") == 8  # one sample per put call
    assert statistic("IncomingBytes", "Sum") == 7 * 10 * (5 + 2) + (3 + 1)  # data plus partition key


# -- where the fast model follows AWS ----------------------------------------------------------------------
def test_fast_sequence_numbers_are_56_digits_unique_in_the_stream(fast: Any) -> None:
    name = new_stream(fast, shards=4)
    sent = put(fast, name, [(f"key-{i}", "x") for i in range(200)])
    numbers = [r["SequenceNumber"] for r in sent]
    assert all(len(n) == 56 and n.isdigit() for n in numbers)
    assert len(set(numbers)) == 200
    assert numbers == sorted(numbers), "in put order, and string order is numeric order"


def test_fast_a_page_holds_at_most_10000_records(fast: Any, servers: dict[str, MotoServer]) -> None:
    name = new_stream(fast)
    for _ in range(21):
        put(fast, name, [("k", "x")] * 500)
    token = iterator(fast, name, "shardId-000000000000")
    page = fast.get_records(ShardIterator=token)  # no Limit: moto returns all 10,500
    assert len(page["Records"]) == 10_000 and page["MillisBehindLatest"] >= 1  # 500 left to read
    rest = fast.get_records(ShardIterator=page["NextShardIterator"])
    assert len(rest["Records"]) == 500 and rest["MillisBehindLatest"] == 0
    assert error_code(fast.get_records, ShardIterator=token, Limit=10_001) == "InvalidArgumentException"


def test_fast_iterators_expire_after_five_minutes(fast: Any) -> None:
    name = new_stream(fast)
    put(fast, name, [("k", "x")])
    issued = int(time.time() * 1000) - SHARD_ITERATOR_LIFETIME_MS - 1_000
    old = ShardIterator(name, "shardId-000000000000", 0, issued).encode()
    assert error_code(fast.get_records, ShardIterator=old) == "ExpiredIteratorException"
    fresh = ShardIterator(name, "shardId-000000000000", 0, int(time.time() * 1000)).encode()
    assert len(fast.get_records(ShardIterator=fresh)["Records"]) == 1
    assert error_code(fast.get_records, ShardIterator="bm90LWFuLWl0ZXJhdG9y") == "InvalidArgumentException"  # moto: a 500


def test_fast_hash_range_ends_are_inclusive(fast: Any) -> None:
    name = new_stream(fast, shards=2)
    top = str(HASH_KEY_LIMIT - 1)  # plain moto: a 500 (its range ends are exclusive)
    [record] = put(fast, name, [("k", "x")], ExplicitHashKey=top)
    assert record["ShardId"] == "shardId-000000000001"
    assert error_code(fast.put_records, StreamName=name, Records=[
        {"PartitionKey": "k", "Data": b"x", "ExplicitHashKey": "not-a-number"}]) == "InvalidArgumentException"


def test_fast_a_split_parent_takes_no_more_records(fast: Any) -> None:
    name = new_stream(fast)
    parent, children = "shardId-000000000000", ["shardId-000000000001", "shardId-000000000002"]
    put(fast, name, [(f"old-{i}", "before") for i in range(10)])
    fast.split_shard(StreamName=name, ShardToSplit=parent, NewStartingHashKey=str(HASH_KEY_LIMIT // 2))
    sent = put(fast, name, [(f"key-{i}", "after") for i in range(20)])  # plain moto routes them to the parent
    assert {r["ShardId"] for r in sent} == set(children)
    page = fast.get_records(ShardIterator=iterator(fast, name, parent))
    assert page["Records"] == [] and "NextShardIterator" not in page  # closed and read to its end
    # moto's resharding moves the parent's records into the children: none is lost.
    moved = [r for shard in children for r in read_all(fast, name, shard, iterator(fast, name, shard))]
    assert sorted(r["PartitionKey"] for r in moved if r["Data"] == b"before") == sorted(f"old-{i}" for i in range(10))


def test_fast_concurrent_writers_get_increasing_sequence_numbers(fast: Any, servers: dict[str, MotoServer]) -> None:
    name = new_stream(fast)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        own = client(servers["fast"])
        try:
            for batch in range(10):
                put(own, name, [("k", f"w{index}-{batch}-{i}") for i in range(50)])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    got = read_all(fast, name, "shardId-000000000000", iterator(fast, name, "shardId-000000000000"), limit=10_000)
    numbers = [int(r["SequenceNumber"]) for r in got]
    assert len(got) == 2_000 and numbers == sorted(set(numbers))
    for index in range(4):  # each writer's records in its own order
        mine = [r["Data"].decode() for r in got if r["Data"].decode().startswith(f"w{index}-")]
        assert mine == [f"w{index}-{b}-{i}" for b in range(10) for i in range(50)]


def test_raw_json_bodies_match_plain_moto(servers: dict[str, MotoServer]) -> None:
    """The short path writes what moto's serializer writes (volatile values blanked); errors
    are moto's own."""
    volatile = {"SequenceNumber", "ShardIterator", "NextShardIterator", "ApproximateArrivalTimestamp",
                "StartingSequenceNumber", "StreamCreationTimestamp",
                "MillisBehindLatest"}  # differs by design with records left (test_fast_a_page_holds_...)

    def blank(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "*" if k in volatile else blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return value

    def run(server: MotoServer) -> list[tuple[int, str | None, str | None, Any]]:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0"
        out: list[tuple[int, str | None, str | None, Any]] = []

        def call(action: str, body: dict[str, Any]) -> Any:
            connection.request("POST", "/", json.dumps(body), {
                "X-Amz-Target": f"Kinesis_20131202.{action}", "Content-Type": "application/x-amz-json-1.1", "Authorization": auth,
            })
            response = connection.getresponse()
            payload = response.read()
            parsed = json.loads(payload) if payload else None
            out.append((response.status, response.getheader("Content-Type"), response.getheader("X-Amzn-ErrorType"), blank(parsed)))
            return parsed

        b64 = base64.b64encode
        call("CreateStream", {"StreamName": "raw-parity", "ShardCount": 2})
        call("PutRecords", {"StreamName": "raw-parity", "Records": [
            {"PartitionKey": "a", "Data": b64(b"one").decode()}, {"PartitionKey": "b", "Data": b64(b"\x00\xff").decode()},
            {"PartitionKey": "c", "Data": "", "ExplicitHashKey": "5"}]})
        call("PutRecord", {"StreamName": "raw-parity", "PartitionKey": "a", "Data": b64(b"two").decode()})
        token = call("GetShardIterator", {"StreamName": "raw-parity", "ShardId": "shardId-000000000000",
                                          "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
        page = call("GetRecords", {"ShardIterator": token, "Limit": 2})
        call("GetRecords", {"ShardIterator": page["NextShardIterator"]})
        call("GetRecords", {"StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/raw-parity", "ShardIterator": token})
        call("PutRecords", {"StreamName": "missing", "Records": [{"PartitionKey": "a", "Data": "QQ=="}]})
        call("PutRecords", {"StreamName": "raw-parity", "Records": [{"PartitionKey": "a", "Data": "QQ=="}] * 501})
        call("PutRecord", {"StreamName": "raw-parity", "PartitionKey": "k" * 257, "Data": "QQ=="})
        call("GetShardIterator", {"StreamName": "raw-parity", "ShardId": "shardId-000000000007", "ShardIteratorType": "LATEST"})
        call("ListShards", {"StreamName": "raw-parity"})
        call("DescribeStreamSummary", {"StreamName": "raw-parity"})
        call("DeleteStream", {"StreamName": "raw-parity"})
        connection.close()
        return out

    fast_out, plain_out = run(servers["fast"]), run(servers["plain"])
    assert fast_out == plain_out


# -- in-process: the metric aggregation and the version guard -----------------------------------------------
def test_incoming_metrics_are_one_data_point_per_stream_per_minute() -> None:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.kinesis.models import kinesis_backends

    from emulator.moto_child.kinesis_stream import count_incoming

    account = "210987654321"
    backend, cloudwatch = kinesis_backends[account][REGION], cloudwatch_backends[account][REGION]
    minute = 1_700_000_040_000  # on a minute boundary
    for second in range(60):
        count_incoming(backend, "s", 100, 2, minute + second * 1000)
    assert len(cloudwatch.metric_data) == 2  # moto: 120 and growing
    count_incoming(backend, "s", 50, 1, minute + 60_000)
    assert len(cloudwatch.metric_data) == 4
    first_bytes, first_records = cloudwatch.metric_data[:2]
    assert (first_bytes.sum, first_bytes.sample_count, first_bytes.min, first_bytes.max) == (6000, 60, 100, 100)
    assert (first_records.name, first_records.sum, first_records.unit) == ("IncomingRecords", 120, "Count")


def test_apply_leaves_an_unverified_moto_alone(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import moto
    from moto.kinesis import models

    shard_class = models.Shard
    monkeypatch.setattr(moto, "__version__", "0.0.1")
    assert fast_kinesis.apply() is False
    assert models.Shard is shard_class
    assert "0.0.1" in caplog.text
    assert versions.is_verified(versions.installed_moto_version() or "")


def test_the_get_records_body_is_what_json_dumps_writes() -> None:
    """The short path writes GetRecords' JSON itself (a page holds up to 10,000 records)."""
    from emulator.moto_child.kinesis_store import SEQUENCE_NUMBER_BASE, ShardStore
    from emulator.moto_child.kinesis_wire import get_records_body

    store = ShardStore(0)
    for sequence, (key, blob, arrival) in enumerate([("plain", b"\x00\xff", 1_700_000_000_123), ('quote"and\\slash', b"", 1_700_000_000_123),
                                                     ("ключ", b"x" * 50, 1_700_000_000_500), ("\n\t", b"y", 1_700_000_001_000)], 1):
        store.append(sequence, key, blob, arrival)
    page = store.read(0, 3, 1_700_000_002_000)
    for following in ("c29tZS10b2tlbg==", None):
        expected: dict[str, Any] = {"Records": [
            {"SequenceNumber": str(SEQUENCE_NUMBER_BASE + r.sequence), "ApproximateArrivalTimestamp": r.arrival_ms / 1000,
             "Data": base64.b64encode(r.data).decode(), "PartitionKey": r.partition_key} for r in page.records]}
        if following is not None:
            expected["NextShardIterator"] = following
        expected["MillisBehindLatest"] = page.millis_behind_latest
        assert get_records_body(page, following) == json.dumps(expected).encode()
    empty = store.read(page.after + 10, 10, 1_700_000_002_000)
    assert get_records_body(empty, "dA==") == json.dumps({"Records": [], "NextShardIterator": "dA==", "MillisBehindLatest": 0}).encode()


@pytest.mark.parametrize("action, body, code", [
    ("GetRecords", {"ShardIterator": ["not", "a", "token"]}, "InvalidArgumentException"),
    ("GetRecords", {"ShardIterator": "", "Limit": 10}, "InvalidArgumentException"),
    ("GetRecords", {"ShardIterator": "{iterator}", "Limit": "ten"}, "InvalidArgumentException"),
    ("GetRecords", {"ShardIterator": "{iterator}", "Limit": 0}, "ValidationException"),
    ("GetShardIterator", {"StreamName": "{stream}", "ShardId": 7, "ShardIteratorType": "LATEST"}, "ResourceNotFoundException"),
    ("GetShardIterator", {"StreamName": "{stream}", "ShardId": "shardId-000000000000",
                          "ShardIteratorType": "AT_SEQUENCE_NUMBER"}, "InvalidArgumentException"),
    ("GetShardIterator", {"StreamName": "{stream}", "ShardId": "shardId-000000000000",
                          "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "12x"}, "InvalidArgumentException"),
    ("GetShardIterator", {"StreamName": "{stream}", "ShardId": "shardId-000000000000",
                          "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "yesterday"}, "InvalidArgumentException"),
    ("PutRecords", {"StreamName": "{stream}", "Records": "many"}, "ValidationException"),
    ("PutRecords", {"StreamName": "{stream}", "Records": [42]}, "ValidationException"),
    ("PutRecords", {"StreamName": "{stream}", "Records": [{"PartitionKey": "k", "Data": 42}]}, "SerializationException"),
    ("PutRecords", {"StreamName": "{stream}", "Records": [{"PartitionKey": "k", "Data": "not base64!"}]}, "SerializationException"),
    ("PutRecords", {"StreamName": "{stream}", "Records": [{"PartitionKey": 42, "Data": "QQ=="}]}, "InvalidArgumentException"),
    ("PutRecord", {"StreamName": "{stream}", "PartitionKey": "k"}, "ValidationException"),
    ("PutRecord", {"StreamName": "{stream}", "PartitionKey": "k", "Data": "QQ==", "ExplicitHashKey": str(HASH_KEY_LIMIT)},
     "InvalidArgumentException"),
])
def test_fast_bad_input_gets_an_aws_error_not_a_500(servers: dict[str, MotoServer], action: str, body: dict[str, Any],
                                                    code: str) -> None:
    server = servers["fast"]
    kinesis = client(server)
    name = new_stream(kinesis)
    token = iterator(kinesis, name, "shardId-000000000000")
    filled = json.loads(json.dumps(body).replace("{stream}", name).replace("{iterator}", token))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0"
    connection.request("POST", "/", json.dumps(filled), {
        "X-Amz-Target": f"Kinesis_20131202.{action}", "Content-Type": "application/x-amz-json-1.1", "Authorization": auth})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    assert (response.status, payload["__type"]) == (400, code)
    assert read_all(kinesis, name, "shardId-000000000000", token) == []  # nothing was stored


# -- the shell in virtual time, in-process ---------------------------------------------------------------------
class VirtualClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def patched_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """fast_kinesis applied to this process's moto, every patched attribute restored after,
    and the model's clock replaced by a virtual one."""
    from moto.kinesis import models
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from emulator.moto_child import kinesis_stream

    monkeypatch.setattr(models, "Shard", models.Shard)
    monkeypatch.setattr(models, "_emulator_fast_kinesis", False, raising=False)
    monkeypatch.setattr(DomainDispatcherApplication, "__call__", DomainDispatcherApplication.__call__)
    for name in kinesis_stream.backend_methods():
        monkeypatch.setattr(models.KinesisBackend, name, getattr(models.KinesisBackend, name))
    for name in kinesis_stream.stream_methods():
        monkeypatch.setattr(models.Stream, name, getattr(models.Stream, name))
    clock = VirtualClock(1_700_000_000_000)
    monkeypatch.setattr(kinesis_stream, "now_ms", clock)
    assert fast_kinesis.apply() is True
    yield clock


def test_puts_and_reads_trim_records_past_the_retention_period(patched_moto: VirtualClock) -> None:
    from moto.kinesis.models import kinesis_backends

    backend = kinesis_backends["111122223333"][REGION]
    stream = backend.create_stream("retained", 1)
    shard = stream.shards["shardId-000000000000"]
    start = patched_moto.now_ms
    for batch in range(4):
        backend.put_records(None, "retained", [{"PartitionKey": f"old-{batch}-{i}", "Data": "QQ=="} for i in range(500)])
    patched_moto.now_ms = start + 23 * 3_600_000
    backend.put_records(None, "retained", [{"PartitionKey": "new", "Data": "Qg=="}])
    assert len(shard.store) == 2_001
    patched_moto.now_ms = start + 24 * 3_600_000 + 1  # the first batch is past 24 hours
    token = backend.get_shard_iterator(None, "retained", shard.shard_id, "TRIM_HORIZON", None, None)
    assert len(shard.store) == 1 and shard.store.capacity == 1  # trimmed and compacted away
    following, records, behind = backend.get_records(None, token, None)
    assert [r.to_json()["PartitionKey"] for r in records] == ["new"] and behind == 0
    old = backend.get_shard_iterator(None, "retained", shard.shard_id, "AT_TIMESTAMP", None, start / 1000)
    assert [r.to_json()["PartitionKey"] for r in backend.get_records(None, old, None)[1]] == ["new"]
    backend.increase_stream_retention_period(None, "retained", 48)
    patched_moto.now_ms += 30 * 3_600_000  # 53 h after the start, 30 h after "new"
    backend.put_records(None, "retained", [{"PartitionKey": "newer", "Data": "Qw=="}])
    assert [r.partition_key for r in shard.store] == ["new", "newer"]  # kept: the stream keeps 48 hours now


def test_iterators_expire_on_the_models_clock(patched_moto: VirtualClock) -> None:
    from moto.kinesis.models import kinesis_backends

    from emulator.moto_child.kinesis_stream import ExpiredIteratorError

    backend = kinesis_backends["111122223334"][REGION]
    backend.create_stream("expiring", 1)
    token = backend.get_shard_iterator(None, "expiring", "shardId-000000000000", "LATEST", None, None)
    patched_moto.now_ms += SHARD_ITERATOR_LIFETIME_MS
    following, _, _ = backend.get_records(None, token, 10)  # at 5 minutes: still valid
    patched_moto.now_ms += 1
    with pytest.raises(ExpiredIteratorError) as error:
        backend.get_records(None, token, 10)
    assert "tolerated delay of 300000 milliseconds" in error.value.message
    assert backend.get_records(None, following, 10)[1] == []  # the newer one is fresh
