"""DynamoDB Streams event source mappings driven through boto3
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html).

One emulator for the module (time scale 30: the 0.25 s poll cadence takes 8 ms, a 60 s
record age 2 s); every test has its own table and function, and each function appends every
event it receives to a file, so a test sees exactly what the function saw, in order.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import wait_until
from source_testkit import ACCOUNT, REGION, esm_metrics, mapping_for, queue_arn, stream_recorder, the_one_message
from source_testkit import create_mapping as create_enabled_mapping
from source_testkit import events_in as events
from source_testkit import records_in as records
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

TIME_SCALE = 30.0
WAIT_S = 30.0  # bound for waits that normally end within a second or two


def table(name: str, view: str = "NEW_AND_OLD_IMAGES", sort_key: bool = False) -> dict[str, Any]:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "N"})
    return {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST", "KeySchema": keys, "AttributeDefinitions": attributes,
        "StreamSpecification": {"StreamViewType": view},
    }}


@pytest.fixture(scope="module")
def emu(out_dir: Path) -> Iterator[EmulatorHandle]:
    template = {
        "ShapeTable": table("shape-table"),
        "KeysTable": table("keys-table", "KEYS_ONLY"),
        "NewTable": table("new-table", "NEW_IMAGE"),
        "OldTable": table("old-table", "OLD_IMAGE"),
        "PoisonTable": table("poison-table"),
        "PartialTable": table("partial-table"),
        "OrderTable": table("order-table", sort_key=True),
        "LatestTable": table("latest-table"),
        "LossTable": table("loss-table", sort_key=True),
        "IdleTable": table("idle-table"),
        "IdleStream": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "idle-kinesis", "ShardCount": 1}},
        "Failures": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "ddb-failures"}},
        # The SAM event path: the mapping comes from the template, on !GetAtt Table.StreamArn.
        "shape": stream_recorder(out_dir / "shape", Events={"Feed": {"Type": "DynamoDB", "Properties": {
            "Stream": {"Fn::GetAtt": ["ShapeTable", "StreamArn"]}, "StartingPosition": "TRIM_HORIZON", "BatchSize": 10,
        }}}),
        "views": stream_recorder(out_dir / "views"),
        "bisector": stream_recorder(out_dir / "bisector", "poison"),
        "partial": stream_recorder(out_dir / "partial", "partial"),
        "ordered": stream_recorder(out_dir / "ordered", "slow"),
        "latest": stream_recorder(out_dir / "latest"),
        "lossless": stream_recorder(out_dir / "lossless"),
        "idle": stream_recorder(out_dir / "idle"),
    }
    with running_emulator(template, time_scale=TIME_SCALE) as handle:
        yield handle


# -- helpers -------------------------------------------------------------------------------------
def stream_arn_of(emu: EmulatorHandle, name: str) -> str:
    return emu.client("dynamodb").describe_table(TableName=name)["Table"]["LatestStreamArn"]


def create_mapping(emu: EmulatorHandle, function: str, table_name: str, **settings: Any) -> str:
    return create_enabled_mapping(emu, function, stream_arn_of(emu, table_name), WAIT_S, **settings)


def name_of(record: dict[str, Any]) -> str:
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    return image.get("name", {}).get("S", "")


# -- the event shape, per StreamViewType -------------------------------------------------------------
def test_inserts_modifies_and_removes_reach_the_handler_with_the_exact_shape(emu: EmulatorHandle, out_dir: Path) -> None:
    ddb = emu.client("dynamodb")
    before = int(time.time())
    # AWS's example items (with-ddb.html): their SizeBytes are 26, 59 and 38.
    ddb.put_item(TableName="shape-table", Item={"pk": {"S": "101"}, "Message": {"S": "New item!"}})
    ddb.update_item(TableName="shape-table", Key={"pk": {"S": "101"}}, UpdateExpression="SET Message = :m",
                    ExpressionAttributeValues={":m": {"S": "This item has changed"}})
    ddb.delete_item(TableName="shape-table", Key={"pk": {"S": "101"}})
    # A write that changes nothing writes no stream record (Streams.html).
    ddb.put_item(TableName="shape-table", Item={"pk": {"S": "same"}, "n": {"N": "1"}})
    ddb.put_item(TableName="shape-table", Item={"pk": {"S": "same"}, "n": {"N": "1"}})
    out = out_dir / "shape"
    assert wait_until(lambda: len(records(out)) >= 4, WAIT_S)
    time.sleep(0.2)  # 25 poll intervals: a fifth record would have arrived
    got = records(out)
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    arn = stream_arn_of(emu, "shape-table")
    template_arn = emu.lambda_client.get_event_source_mapping(UUID=mapping_for(emu, "shape"))["EventSourceArn"]
    assert template_arn.startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/shape-table/stream/")
    insert, modify, remove, _ = got
    for record in got:
        assert set(record) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                               "eventSourceARN"}
        assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == REGION and record["eventSourceARN"] == template_arn
        assert len(record["eventID"]) == 32
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert created == int(created) and before - 1 <= created <= time.time() + 1  # whole epoch seconds
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert 21 <= len(record["dynamodb"]["SequenceNumber"]) <= 40
    assert insert["dynamodb"] == {**insert["dynamodb"], "Keys": {"pk": {"S": "101"}},
                                  "NewImage": {"pk": {"S": "101"}, "Message": {"S": "New item!"}}, "SizeBytes": 26}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"] == {"pk": {"S": "101"}, "Message": {"S": "New item!"}}
    assert modify["dynamodb"]["NewImage"] == {"pk": {"S": "101"}, "Message": {"S": "This item has changed"}}
    assert modify["dynamodb"]["SizeBytes"] == 59
    assert remove["dynamodb"]["OldImage"] == modify["dynamodb"]["NewImage"] and "NewImage" not in remove["dynamodb"]
    assert remove["dynamodb"]["SizeBytes"] == 38
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in got]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4
    assert arn.split("/stream/")[0] == template_arn.split("/stream/")[0]


def test_the_timeline_shows_the_mappings_iterator_age_as_lambdas_not_as_a_kinesis_stream(emu: EmulatorHandle) -> None:
    uuid = mapping_for(emu, "shape")

    def series() -> list[dict[str, Any]]:
        with urllib.request.urlopen(emu.url + "/_emulator/timeline?since=-600", timeout=10) as response:
            return json.loads(response.read())["series"]

    def ages() -> list[dict[str, Any]]:
        return [s for s in series() if (s["namespace"], s["metric"]) == ("AWS/Lambda", "IteratorAge")
                and s["dimensions"] == {"EventSourceMappingUUID": uuid}]

    assert wait_until(ages, WAIT_S)  # sampled once an emulated second
    kinesis = {s["dimensions"].get("StreamName") for s in series() if s["namespace"] == "AWS/Kinesis"}
    assert kinesis <= {"idle-kinesis"}, "a DynamoDB stream is no Kinesis stream"


@pytest.mark.parametrize("table_name, view, images", [
    ("keys-table", "KEYS_ONLY", set()),
    ("new-table", "NEW_IMAGE", {"NewImage"}),
    ("old-table", "OLD_IMAGE", {"OldImage"}),
])
def test_each_stream_view_type_carries_its_images(emu: EmulatorHandle, out_dir: Path, table_name: str, view: str,
                                                  images: set[str]) -> None:
    ddb = emu.client("dynamodb")
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "v": {"N": "2"}})
    out = out_dir / "views"
    before = len(records(out))
    uuid = create_mapping(emu, "views", table_name)
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 2, WAIT_S)
    insert, modify = records(out)[before:]
    assert (insert["eventName"], modify["eventName"]) == ("INSERT", "MODIFY")
    for record in (insert, modify):
        assert record["dynamodb"]["StreamViewType"] == view
        assert record["dynamodb"]["Keys"] == {"pk": {"S": "a"}}
    assert {k for k in ("NewImage", "OldImage") if k in modify["dynamodb"]} == images
    # Keys pk:"a" is 2 + 1 bytes; the new image adds pk:"a" and v:1 (1 + 1 + 1).
    assert insert["dynamodb"]["SizeBytes"] == 3 + (3 + 3 if "NewImage" in images else 0)
    emu.lambda_client.delete_event_source_mapping(UUID=uuid)
    assert wait_until(lambda: uuid not in emu.metrics()["event_source_mappings"], WAIT_S)


# -- polling: 4 times per second, against Kinesis' once --------------------------------------------
def test_a_dynamodb_shard_is_polled_four_times_as_often_as_a_kinesis_shard(emu: EmulatorHandle) -> None:
    ddb_uuid = create_mapping(emu, "idle", "idle-table")
    kinesis = emu.lambda_client.create_event_source_mapping(
        FunctionName="idle", EventSourceArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/idle-kinesis",
        StartingPosition="LATEST")["UUID"]
    assert wait_until(lambda: esm_metrics(emu, kinesis).get("GetRecordsCalls", 0) >= 2, WAIT_S)
    start = (esm_metrics(emu, ddb_uuid)["GetRecordsCalls"], esm_metrics(emu, kinesis)["GetRecordsCalls"])
    assert wait_until(lambda: esm_metrics(emu, kinesis)["GetRecordsCalls"] >= start[1] + 20, WAIT_S)
    ddb_calls = esm_metrics(emu, ddb_uuid)["GetRecordsCalls"] - start[0]
    kinesis_calls = esm_metrics(emu, kinesis)["GetRecordsCalls"] - start[1]
    assert 3.0 <= ddb_calls / kinesis_calls <= 5.0, (ddb_calls, kinesis_calls)
    for uuid in (ddb_uuid, kinesis):
        emu.lambda_client.delete_event_source_mapping(UUID=uuid)


# -- a poison item: bisect, retry limit, DDBStreamBatchInfo to the on-failure queue ------------------
def test_bisect_with_a_retry_limit_reports_the_poison_record_with_its_batch_info(emu: EmulatorHandle,
                                                                                out_dir: Path) -> None:
    ddb = emu.client("dynamodb")
    names = [f"good-{i}" for i in range(8)]
    names[5] = "poison"
    for i, name in enumerate(names):
        ddb.put_item(TableName="poison-table", Item={"pk": {"S": f"item-{i}"}, "name": {"S": name}})
    uuid = create_mapping(
        emu, "bisector", "poison-table", BatchSize=8, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn("ddb-failures")}},
    )
    record = the_one_message(emu, "ddb-failures", WAIT_S)
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 5  # 8 → 4 → 2 → 1, then one retry
    info = record["DDBStreamBatchInfo"]
    poison = next(r for r in records(out_dir / "bisector") if name_of(r) == "poison")
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == 1 and info["streamArn"] == stream_arn_of(emu, "poison-table")
    assert info["shardId"].startswith("shardId-") and info["approximateArrivalOfFirstRecord"].endswith("Z")
    ddb.put_item(TableName="poison-table", Item={"pk": {"S": "after"}, "name": {"S": "after-the-poison"}})
    done = lambda: {name_of(r) for e in events(out_dir / "bisector") if "poison" not in  # noqa: E731
                    [name_of(x) for x in e["Records"]] for r in e["Records"]}
    assert wait_until(lambda: "after-the-poison" in done(), WAIT_S), "the shard moved on"
    assert done() == set(names + ["after-the-poison"]) - {"poison"}
    metrics = esm_metrics(emu, uuid)
    assert metrics["OnFailureRecordsSent"] == 1 and metrics["Bisections"] == 3 and metrics["Retries"] == 1


# -- ReportBatchItemFailures -------------------------------------------------------------------------
def test_partial_batch_response_checkpoints_before_the_lowest_failed_record(emu: EmulatorHandle, out_dir: Path) -> None:
    ddb = emu.client("dynamodb")
    names = [f"item-{i}" for i in range(10)]
    names[4], names[7] = "flaky-4", "flaky-7"
    for i, name in enumerate(names):
        ddb.put_item(TableName="partial-table", Item={"pk": {"S": f"k{i}"}, "name": {"S": name}})
    uuid = create_mapping(emu, "partial", "partial-table", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 10, WAIT_S)
    batches = [[name_of(r) for r in e["Records"]] for e in events(out_dir / "partial")]
    assert batches == [names, names[4:]]
    assert esm_metrics(emu, uuid)["Retries"] == 1


# -- ParallelizationFactor keeps order per partition key ----------------------------------------------
def test_parallelization_factor_keeps_each_partition_keys_changes_in_order(emu: EmulatorHandle, out_dir: Path) -> None:
    ddb = emu.client("dynamodb")
    for i in range(60):
        ddb.put_item(TableName="order-table", Item={"pk": {"S": f"device-{i % 6}"}, "sk": {"N": str(i)},
                                                     "name": {"S": f"reading-{i}"}})
    uuid = create_mapping(emu, "ordered", "order-table", BatchSize=5, ParallelizationFactor=4)
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 60, WAIT_S)
    per_key: dict[str, list[int]] = defaultdict(list)
    for record in records(out_dir / "ordered"):
        per_key[record["dynamodb"]["Keys"]["pk"]["S"]].append(int(record["dynamodb"]["Keys"]["sk"]["N"]))
    assert per_key == {f"device-{k}": list(range(k, 60, 6)) for k in range(6)}
    assert emu.metrics()["functions"]["ordered"]["ConcurrentExecutionsPeak"] > 1, "lanes ran batches at the same time"


# -- StartingPosition LATEST ----------------------------------------------------------------------------
def test_latest_starts_after_the_newest_record(emu: EmulatorHandle, out_dir: Path) -> None:
    ddb = emu.client("dynamodb")
    ddb.put_item(TableName="latest-table", Item={"pk": {"S": "old"}, "name": {"S": "old"}})
    uuid = create_mapping(emu, "latest", "latest-table", StartingPosition="LATEST")
    assert wait_until(lambda: esm_metrics(emu, uuid)["GetRecordsCalls"] >= 2, WAIT_S)
    ddb.put_item(TableName="latest-table", Item={"pk": {"S": "new"}, "name": {"S": "new"}})
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 1, WAIT_S)
    assert [name_of(r) for r in records(out_dir / "latest")] == ["new"]


# -- nothing written is lost ------------------------------------------------------------------------------
def test_every_write_from_concurrent_writers_reaches_the_function_once_in_order(emu: EmulatorHandle,
                                                                               out_dir: Path) -> None:
    uuid = create_mapping(emu, "lossless", "loss-table", BatchSize=100, MaximumBatchingWindowInSeconds=1)
    writers, per_writer = 4, 150
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        client = emu.client("dynamodb")
        try:
            for i in range(per_writer):
                client.put_item(TableName="loss-table", Item={"pk": {"S": f"w{writer}"}, "sk": {"N": str(i)}})
        except BaseException as exc:  # reported after the join
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    total = writers * per_writer
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == total, WAIT_S)
    per_key: dict[str, list[int]] = defaultdict(list)
    for record in records(out_dir / "lossless"):
        assert record["eventName"] == "INSERT"
        per_key[record["dynamodb"]["Keys"]["pk"]["S"]].append(int(record["dynamodb"]["Keys"]["sk"]["N"]))
    assert per_key == {f"w{w}": list(range(per_writer)) for w in range(writers)}


# -- the mapping API on a stream ARN -----------------------------------------------------------------------
def test_a_mapping_on_a_table_without_a_stream_is_refused(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    ddb.create_table(TableName="no-stream", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    lam = emu.lambda_client
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_event_source_mapping(
            FunctionName="idle", StartingPosition="LATEST",
            EventSourceArn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/no-stream/stream/2024-01-01T00:00:00.000")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(FunctionName="idle", StartingPosition="AT_TIMESTAMP",
                                        StartingPositionTimestamp=time.time() - 10,
                                        EventSourceArn=stream_arn_of(emu, "idle-table"))


# -- the backend dies and comes back -------------------------------------------------------------------------
def test_a_stream_mapping_goes_on_after_the_backend_restarts(tmp_path: Path) -> None:
    """moto keeps everything in memory: a restarted backend has the template's table again,
    empty, with a new stream. The mapping's reader finds its shard again (the same id) and,
    its old position being older than anything the new stream holds, reads the new stream
    from its start (TrimmedDataAccessException, then TRIM_HORIZON)."""
    template = {"Feed": table("feed"), "reader": stream_recorder(tmp_path / "reader", Events={"Feed": {
        "Type": "DynamoDB", "Properties": {"Stream": {"Fn::GetAtt": ["Feed", "StreamArn"]},
                                           "StartingPosition": "TRIM_HORIZON"}}})}

    def health() -> dict[str, Any]:
        try:
            with urllib.request.urlopen(emu.url + "/_emulator/health") as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    with running_emulator(template, time_scale=TIME_SCALE) as emu:
        ddb = emu.client("dynamodb")
        ddb.put_item(TableName="feed", Item={"pk": {"S": "before"}, "name": {"S": "before"}})
        assert wait_until(lambda: [name_of(r) for r in records(tmp_path / "reader")] == ["before"], WAIT_S)
        before = health()["backend"]
        os.kill(before["pid"], signal.SIGKILL)
        assert wait_until(lambda: health()["status"] == "ready" and health()["backend"]["pid"] != before["pid"], WAIT_S)
        assert wait_until(lambda: "Table" in ddb.describe_table(TableName="feed"), WAIT_S)
        for name in ("after-0", "after-1"):
            ddb.put_item(TableName="feed", Item={"pk": {"S": name}, "name": {"S": name}})
        assert wait_until(lambda: [name_of(r) for r in records(tmp_path / "reader")] == ["before", "after-0", "after-1"],
                          WAIT_S)
