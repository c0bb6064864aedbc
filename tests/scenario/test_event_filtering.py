"""Event filtering on event source mappings, through boto3
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).

`FilterCriteria` from the template (SAM `Events` of Type SQS and Kinesis) and from the API:
the function receives only the records a filter matches; filtered-out SQS messages are
deleted, filtered-out stream records skipped (the shard goes on past them); both counted as
FilteredOutEventCount. Lambda refuses bad criteria on Create and Update, and a template whose
criteria it would refuse does not start. Each function appends every event to a file, so a
test sees exactly what the function saw.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import wait_until
from source_testkit import ACCOUNT, REGION, depth, esm_metrics, mapping_for, recorder, records_of
from emulator.pytest_plugin import EmulatorHandle, running_emulator, start_emulator

pytestmark = pytest.mark.scenario

TIME_SCALE = 10.0  # a shard's 1 s poll cadence in 0.1 s
WAIT_S = 30.0

SALES = {"body": {"kind": ["sale"], "amount": [{"numeric": [">", 100]}]}}
VIP = {"body": {"customer": {"tier": ["vip"]}}}
STREAM_SALES = {"data": {"kind": ["sale"]}}
STREAM_VIP_KEY = {"partitionKey": ["vip"]}
DDB_NEW_SALES = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["sale"]}}}}


def _criteria(*patterns: dict) -> dict:
    return {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}


def _arn(service: str, name: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{'stream/' if service == 'kinesis' else ''}{name}"


@pytest.fixture(scope="module")
def emu(out_dir: Path) -> Iterator[EmulatorHandle]:
    template = {
        "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders", "VisibilityTimeout": 30}},
        # A short visibility timeout: a stopped poller's long poll still waiting in the backend
        # can take a message sent after an update; it comes back 3 s later (the function's timeout:
        # a queue's visibility timeout may not be shorter).
        "Later": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "later", "VisibilityTimeout": 3}},
        "Clicks": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "clicks", "ShardCount": 2}},
        "sales": recorder(out_dir, "sales", Events={"Q": {"Type": "SQS", "Properties": {
            "Queue": {"Fn::GetAtt": ["Orders", "Arn"]}, "FilterCriteria": _criteria(SALES, VIP)}}}),
        "clicks": recorder(out_dir, "clicks", Events={"S": {"Type": "Kinesis", "Properties": {
            "Stream": {"Fn::GetAtt": ["Clicks", "Arn"]}, "StartingPosition": "TRIM_HORIZON", "BatchSize": 100,
            "FilterCriteria": _criteria(STREAM_SALES, STREAM_VIP_KEY)}}}),
        "later": recorder(out_dir, "later"),
        "OrdersTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "orders-table", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}}},
        "inserts": recorder(out_dir, "inserts", Events={"D": {"Type": "DynamoDB", "Properties": {
            "Stream": {"Fn::GetAtt": ["OrdersTable", "StreamArn"]}, "StartingPosition": "TRIM_HORIZON", "BatchSize": 100,
            "FilterCriteria": _criteria(DDB_NEW_SALES)}}}),
    }
    with running_emulator(template, time_scale=TIME_SCALE) as handle:
        yield handle


def mapping_counters(emu: EmulatorHandle, function: str) -> dict[str, Any]:
    return esm_metrics(emu, mapping_for(emu, function))


def test_sqs_messages_no_filter_matches_are_deleted_unsent_and_counted(emu, out_dir):
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    bodies = [
        {"kind": "sale", "amount": 150},  # SALES
        {"kind": "sale", "amount": 100},  # not > 100
        {"kind": "refund", "amount": 500, "customer": {"tier": "vip"}},  # VIP
        {"kind": "refund", "amount": 500},
        "plain text",  # not JSON: no body pattern matches
        {"kind": "sale", "amount": "150"},  # a string is not a number
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body))
    assert wait_until(lambda: mapping_counters(emu, "sales").get("FilteredOutEventCount") == 4, timeout_s=WAIT_S), \
        mapping_counters(emu, "sales")
    assert wait_until(lambda: len(records_of(out_dir, "sales")) == 2, timeout_s=WAIT_S)
    got = sorted(json.loads(r["body"])["kind"] for r in records_of(out_dir, "sales"))
    assert got == ["refund", "sale"]
    # Nothing left on the queue: the sent batch deleted after the invoke, the others unsent.
    assert wait_until(lambda: depth(emu, "orders") == 0, timeout_s=WAIT_S)
    counters = mapping_counters(emu, "sales")
    assert counters["MessagesReceived"] == 6 and counters["InvokedEventCount"] == 2
    assert counters["MessagesDeleted"] == 2  # DeletedEventCount: processed messages only


def test_filtered_out_stream_records_are_skipped_and_the_shard_goes_on(emu, out_dir):
    kinesis = emu.client("kinesis")
    puts = [
        ("a", {"kind": "sale"}),  # STREAM_SALES
        ("b", {"kind": "view"}),
        ("vip", {"kind": "view"}),  # STREAM_VIP_KEY
        ("c", b"not json"),  # raw bytes: no data pattern matches
        ("d", {"kind": "sale", "extra": [1, 2]}),  # STREAM_SALES
        ("e", {"kind": ["view", "sale"]}),  # an array matches when any element does
    ]
    for key, data in puts:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        kinesis.put_record(StreamName="clicks", PartitionKey=key, Data=raw)
    assert wait_until(lambda: mapping_counters(emu, "clicks").get("FilteredOutEventCount") == 2, timeout_s=WAIT_S), \
        mapping_counters(emu, "clicks")
    assert wait_until(lambda: len(records_of(out_dir, "clicks")) == 4, timeout_s=WAIT_S)
    keys = sorted(r["kinesis"]["partitionKey"] for r in records_of(out_dir, "clicks"))
    assert keys == ["a", "d", "e", "vip"]
    record = next(r for r in records_of(out_dir, "clicks") if r["kinesis"]["partitionKey"] == "a")
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == {"kind": "sale"}  # data sent as it was put
    # Every shard's checkpoint passed every record, the skipped ones too.
    counters = mapping_counters(emu, "clicks")
    assert counters["RecordsRead"] == 6 and counters["InvokedEventCount"] == 4
    assert all(shard["BufferedRecords"] == 0 for shard in counters["Shards"].values())


def test_dynamodb_stream_records_are_filtered_on_the_dynamodb_key(emu, out_dir):
    ddb = emu.client("dynamodb")
    for pk, kind in (("a", "sale"), ("b", "view"), ("c", "sale")):
        ddb.put_item(TableName="orders-table", Item={"pk": {"S": pk}, "kind": {"S": kind}})
    ddb.put_item(TableName="orders-table", Item={"pk": {"S": "a"}, "kind": {"S": "sale"}, "n": {"N": "2"}})  # MODIFY
    assert wait_until(lambda: mapping_counters(emu, "inserts").get("FilteredOutEventCount") == 2, timeout_s=WAIT_S), \
        mapping_counters(emu, "inserts")
    assert wait_until(lambda: len(records_of(out_dir, "inserts")) == 2, timeout_s=WAIT_S)
    records = records_of(out_dir, "inserts")
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in records) == ["a", "c"]
    assert {r["eventName"] for r in records} == {"INSERT"}


def test_api_criteria_are_checked_on_create_and_update_and_take_effect(emu, out_dir):
    lam, sqs = emu.lambda_client, emu.client("sqs")
    queue = _arn("sqs", "later")
    for criteria, message in [
        ({"Filters": [{"Pattern": '{"body": [{"prefix": 1}]}'}]}, "Invalid filter pattern definition."),
        ({"Filters": [{"Pattern": "not json"}]}, "Invalid filter pattern definition."),
        (_criteria(*({"body": {"n": [i]}} for i in range(6))), "quota is 5"),
    ]:
        with pytest.raises(ClientError) as caught:
            lam.create_event_source_mapping(FunctionName="later", EventSourceArn=queue, FilterCriteria=criteria)
        error = caught.value.response["Error"]
        assert error["Code"] == "InvalidParameterValueException" and message in error["Message"]
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert lam.list_event_source_mappings(FunctionName="later")["EventSourceMappings"] == []  # nothing created
    created = lam.create_event_source_mapping(FunctionName="later", EventSourceArn=queue,
                                              FilterCriteria=_criteria({"body": {"n": [1]}}))
    assert json.loads(created["FilterCriteria"]["Filters"][0]["Pattern"]) == {"body": {"n": [1]}}
    uuid = created["UUID"]
    assert wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout_s=WAIT_S)
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=uuid, FilterCriteria={"Filters": [{"Pattern": '{"body": []}'}]})
    assert caught.value.response["Error"]["Message"] == "Invalid filter pattern definition."
    url = sqs.get_queue_url(QueueName="later")["QueueUrl"]
    for n in (1, 2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    assert wait_until(lambda: depth(emu, "later") == 0, timeout_s=WAIT_S)
    assert [json.loads(r["body"])["n"] for r in records_of(out_dir, "later")] == [1]
    # The update's filter applies to what is received after it.
    lam.update_event_source_mapping(UUID=uuid, FilterCriteria=_criteria({"body": {"n": [2]}}))
    assert wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout_s=WAIT_S)
    for n in (1, 2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    assert wait_until(lambda: len(records_of(out_dir, "later")) == 2, timeout_s=WAIT_S)
    assert wait_until(lambda: depth(emu, "later") == 0, timeout_s=WAIT_S)
    assert [json.loads(r["body"])["n"] for r in records_of(out_dir, "later")] == [1, 2]
    lam.delete_event_source_mapping(UUID=uuid)


def test_a_template_whose_criteria_lambda_refuses_does_not_start(tmp_path):
    template = {
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "f": recorder(tmp_path, "f", Events={"Q": {"Type": "SQS", "Properties": {
            "Queue": {"Fn::GetAtt": ["Q", "Arn"]}, "FilterCriteria": {"Filters": [{"Pattern": '{"body": "x"}'}]}}}}),
    }
    with pytest.raises(Exception, match="Invalid filter pattern definition."):
        handle = start_emulator(template)
        handle.stop()
