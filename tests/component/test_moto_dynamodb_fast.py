"""moto's DynamoDB in the moto child the emulator starts (emulator/moto_child/fast_dynamodb.py):
the short path answers as moto's own path does, and the stream store follows AWS where
moto does not (the list is in emulator/moto_child/ddb_streams.py).

Every call goes to the child directly. A request with a `Content-Encoding` header takes
moto's normal path (ddb_wire.DynamoDBShortPath.route), which gives the parity tests their
second path through the same server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig

from emulator.backend.moto_process import MotoServer

pytestmark = pytest.mark.component

REGION = "us-east-1"
AUTH = f"AWS4-HMAC-SHA256 Credential=AKIA/20240101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
# Headers that differ by call, and moto's own "status: 400" header on errors (not AWS's;
# the short path leaves it out).
VOLATILE_HEADERS = {"x-amzn-requestid", "date", "server", "x-amz-crc32", "content-length", "connection", "status"}


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    moto = MotoServer(options=("--time-scale=1",))
    asyncio.run(moto.start())
    try:
        yield moto
    finally:
        asyncio.run(moto.stop())


@pytest.fixture
def ddb(server: MotoServer) -> Any:
    return boto3.client("dynamodb", endpoint_url=server.url, region_name=REGION, aws_access_key_id="x",
                        aws_secret_access_key="x", config=BotoConfig(retries={"total_max_attempts": 1}))


@pytest.fixture
def streams(server: MotoServer) -> Any:
    return boto3.client("dynamodbstreams", endpoint_url=server.url, region_name=REGION, aws_access_key_id="x",
                        aws_secret_access_key="x", config=BotoConfig(retries={"total_max_attempts": 1}))


def raw_call(server: MotoServer, target: str, body: dict[str, Any], *, normal_path: bool = False) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target, "Authorization": AUTH}
    if normal_path:
        headers["Content-Encoding"] = "identity"
    try:
        connection.request("POST", "/", json.dumps(body), headers)
        response = connection.getresponse()
        payload = response.read()
        kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in VOLATILE_HEADERS}
        return response.status, kept, json.loads(payload) if payload else None
    finally:
        connection.close()


def new_table(ddb: Any, view: str | None = "NEW_AND_OLD_IMAGES", **extra: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    request: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
        **extra,
    }
    if view:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    ddb.create_table(**request)
    return name


def stream_records(ddb: Any, streams: Any, table: str) -> list[dict[str, Any]]:
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    token = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=token)
        found += page["Records"]
        token = page["NextShardIterator"]
        if not page["Records"]:
            return found


# -- parity: the short path answers as moto's normal path -------------------------------------------
PARITY_CALLS = [
    ("PutItem", {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": "AAEC"}, "m": {"M": {"x": {"L": [{"N": "1.50"}]}}}},
                 "ReturnValues": "ALL_OLD"}),
    ("GetItem", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "ReturnConsumedCapacity": "TOTAL"}),
    ("GetItem", {"Key": {"pk": {"S": "missing"}, "sk": {"N": "1"}}}),
    ("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}},
               "ReturnConsumedCapacity": "INDEXES"}),
    ("Scan", {"Limit": 5}),
    ("UpdateItem", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "UpdateExpression": "SET c = :c",
                    "ExpressionAttributeValues": {":c": {"SS": ["x", "y"]}}, "ReturnValues": "UPDATED_NEW"}),
    ("PutItem", {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "ConditionExpression": "attribute_not_exists(pk)"}),
    ("GetItem", {"Key": {"nope": {"S": "a"}}}),
    ("DeleteItem", {"Key": {"pk": {"S": "gone"}, "sk": {"N": "9"}}, "ReturnValues": "ALL_OLD"}),
]


@pytest.mark.parametrize("action, body", PARITY_CALLS, ids=[f"{i}-{a}" for i, (a, _) in enumerate(PARITY_CALLS)])
def test_parity_the_short_path_answers_as_moto_does(server: MotoServer, ddb: Any, action: str, body: dict[str, Any]) -> None:
    answers = []
    for normal_path in (False, True):
        table = new_table(ddb)
        setup = {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "n": {"N": "5"}}}
        assert raw_call(server, "DynamoDB_20120810.PutItem", setup, normal_path=normal_path)[0] == 200
        answers.append(raw_call(server, f"DynamoDB_20120810.{action}", {"TableName": table, **body},
                                normal_path=normal_path))
    (short_status, short_headers, short_body), (normal_status, normal_headers, normal_body) = answers
    assert (short_status, short_headers) == (normal_status, normal_headers)
    for answer in (short_body, normal_body):
        if isinstance(answer, dict) and isinstance(answer.get("ConsumedCapacity"), dict):
            answer["ConsumedCapacity"].pop("TableName")  # each path wrote to its own table
    assert short_body == normal_body


def test_parity_stream_records_read_through_both_paths_are_the_same(server: MotoServer, ddb: Any) -> None:
    table = new_table(ddb)
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "sk": {"N": str(i)}, "b": {"B": b"\x00\x01"}})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    described = [raw_call(server, "DynamoDBStreams_20120810.DescribeStream", {"StreamArn": arn}, normal_path=p)[2]
                 for p in (False, True)]
    assert described[0] == described[1]
    shard = described[0]["StreamDescription"]["Shards"][0]["ShardId"]
    pages = []
    for normal_path in (False, True):
        _, _, answer = raw_call(server, "DynamoDBStreams_20120810.GetShardIterator", {
            "StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}, normal_path=normal_path)
        status, _, page = raw_call(server, "DynamoDBStreams_20120810.GetRecords",
                                   {"ShardIterator": answer["ShardIterator"], "Limit": 3}, normal_path=normal_path)
        assert status == 200
        pages.append(page)
    assert pages[0]["Records"] == pages[1]["Records"] and len(pages[0]["Records"]) == 3


# -- where the stream follows AWS -----------------------------------------------------------------------
def test_one_record_per_change_and_none_for_a_write_that_changes_nothing(ddb: Any, streams: Any) -> None:
    table = new_table(ddb)
    key = {"pk": {"S": "k"}, "sk": {"N": "1"}}
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "1"}})
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}})  # the same item again: no change
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "1"}})
    ddb.delete_item(TableName=table, Key=key)
    ddb.delete_item(TableName=table, Key=key)  # nothing to delete: no record
    records = stream_records(ddb, streams, table)
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert records[0]["dynamodb"]["NewImage"] == {**key, "v": {"N": "1"}}, "one INSERT, with the updated item"


def test_a_failed_transaction_writes_no_stream_record(ddb: Any, streams: Any) -> None:
    table = new_table(ddb)
    ddb.put_item(TableName=table, Item={"pk": {"S": "exists"}, "sk": {"N": "1"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "exists"}, "sk": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in stream_records(ddb, streams, table)] == ["exists"]


def test_records_carry_the_tables_region_and_aws_sequence_numbers(server: MotoServer, streams: Any) -> None:
    west = boto3.client("dynamodb", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id="x",
                        aws_secret_access_key="x")
    west_streams = boto3.client("dynamodbstreams", endpoint_url=server.url, region_name="eu-west-1",
                                aws_access_key_id="x", aws_secret_access_key="x")
    table = new_table(west)
    west.put_item(TableName=table, Item={"pk": {"S": "k"}, "sk": {"N": "1"}})
    [record] = stream_records(west, west_streams, table)
    assert record["awsRegion"] == "eu-west-1" and record["eventVersion"] == "1.1"
    assert len(record["dynamodb"]["SequenceNumber"]) == 26 and len(record["eventID"]) == 32


def test_bad_iterators_and_streams_get_aws_errors_not_500s(server: MotoServer, ddb: Any, streams: Any) -> None:
    for token in ("not-an-iterator", "arn:aws:dynamodb:us-east-1:123456789012:table/x/stream/l|1|bm9wZQ=="):
        status, _, body = raw_call(server, "DynamoDBStreams_20120810.GetRecords", {"ShardIterator": token})
        assert status == 400 and body["__type"].endswith(("ValidationException", "ResourceNotFoundException")), body
    plain = new_table(ddb, view=None)
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{plain}/stream/2024-01-01T00:00:00.000"
    with pytest.raises(streams.exceptions.ResourceNotFoundException):
        streams.describe_stream(StreamArn=arn)


def test_a_page_of_1000_records_is_read_in_milliseconds_not_a_second(ddb: Any, streams: Any) -> None:
    table = new_table(ddb)
    for start in range(0, 2_000, 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "k"}, "sk": {"N": str(i)}}}}
                                                   for i in range(start, start + 25)]})
    began = time.perf_counter()
    records = stream_records(ddb, streams, table)
    elapsed = time.perf_counter() - began
    assert len(records) == 2_000
    assert [int(r["dynamodb"]["Keys"]["sk"]["N"]) for r in records] == list(range(2_000))
    assert elapsed < 5.0, "moto's own GetRecords took ~0.8 s per 1,000 records"  # generous: a loaded machine


def test_the_capacity_endpoint_shows_every_table(server: MotoServer, ddb: Any) -> None:
    table = new_table(ddb, view=None)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "sk": {"N": "1"}, "data": {"S": "x" * 1500}})
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("GET", "/_emulator/dynamodb-capacity")
    answer = json.loads(connection.getresponse().read())
    connection.close()
    assert answer["enabled"] is True and answer["time_scale"] == 1.0
    [mine] = [t for t in answer["tables"] if t["TableName"] == table]
    assert mine["BillingMode"] == "PAY_PER_REQUEST" and mine["ConsumedWriteCapacityUnits"] == 2.0
    assert mine["ProvisionedWriteCapacityUnits"] == 0 and mine["ThrottledRequests"] == 0


def test_overwritten_and_deleted_items_are_freed(server: MotoServer, ddb: Any) -> None:
    """moto's BaseModel keeps every Item it ever made for its dashboard: a table written
    over and over would hold every version of every item. Only the live items may stay."""
    table = new_table(ddb, view=None)

    def tracked_items() -> int:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        connection.request("GET", "/_emulator/backend-stats")
        stats = json.loads(connection.getresponse().read())
        connection.close()
        return int(stats["tracked_instances"].get("dynamodb.Item", 0))

    before = tracked_items()
    for i in range(300):
        ddb.put_item(TableName=table, Item={"pk": {"S": "same"}, "sk": {"N": "1"}, "v": {"N": str(i)}})
        ddb.put_item(TableName=table, Item={"pk": {"S": f"gone-{i}"}, "sk": {"N": "1"}})
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"gone-{i}"}, "sk": {"N": "1"}})
    assert tracked_items() - before < 10, "300 overwrites and 300 put-then-deletes leave one live item"
