"""DynamoDB capacity and throttling through the emulator's endpoint, as boto3 sees them
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html).

One emulator for the module at time scale 1: a provisioned table's bucket starts empty and
fills at its provisioned rate, so a quick burst of writes beyond what accumulated throttles.
Counts are asserted as sums (accepted + throttled = sent, items stored = accepted), never as
timing.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig

from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
PREFIX = "com.amazonaws.dynamodb.v20120810#"
TABLE_MESSAGE = ("The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
                 "provisioning level with the UpdateTable API.")


def provisioned(name: str, read: int, write: int, **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, *extra.pop("attributes", [])],
        "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write}, **extra,
    }}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Slow": provisioned("slow", 1, 1),
        "Wire": provisioned("wire", 1, 1),
        "Watched": provisioned("watched", 1, 1),
        "Batch": provisioned("batch", 1, 1),
        "Retried": provisioned("retried", 1, 20),
        "Indexed": provisioned("indexed", 100, 100, attributes=[{"AttributeName": "owner", "AttributeType": "S"}],
                               GlobalSecondaryIndexes=[{
                                   "IndexName": "by-owner", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                                   "Projection": {"ProjectionType": "KEYS_ONLY"},
                                   "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}]),
        "Units": provisioned("units", 1000, 1000, attributes=[{"AttributeName": "owner", "AttributeType": "S"}],
                             GlobalSecondaryIndexes=[{
                                 "IndexName": "by-owner", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"},
                                 "ProvisionedThroughput": {"ReadCapacityUnits": 1000, "WriteCapacityUnits": 1000}}]),
        "Capped": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "capped", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "OnDemandThroughput": {"MaxWriteRequestUnits": 5}}},
        "Shrinking": provisioned("shrinking", 50, 50),
        "Plain": provisioned("plain", 1000, 1000),
    }
    with running_emulator(template) as handle:
        yield handle


def put_burst(ddb: Any, table: str, count: int, prefix: str = "item") -> tuple[list[str], list[Any]]:
    """PutItem `count` items as fast as one client can; (stored keys, throttling errors)."""
    stored, errors = [], []
    for i in range(count):
        key = f"{prefix}-{i}"
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": key}})
            stored.append(key)
        except ddb.exceptions.ProvisionedThroughputExceededException as error:
            errors.append(error)
    return stored, errors


def stored_keys(ddb: Any, table: str) -> set[str]:
    keys: set[str] = set()
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        try:
            page = ddb.scan(**request)
        except ddb.exceptions.ProvisionedThroughputExceededException:
            continue  # the scan itself is throttled by a 1-RCU table: ask again
        keys |= {item["pk"]["S"] for item in page["Items"]}
        if "LastEvaluatedKey" not in page:
            return keys
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def table_metrics(emu: EmulatorHandle, name: str) -> dict[str, Any]:
    return emu.metrics()["dynamodb"]["tables"][name]


# -- provisioned capacity throttles, and nothing throttled is written -------------------------------------
def test_a_provisioned_table_throttles_a_burst_and_stores_exactly_what_it_accepted(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    stored, errors = put_burst(ddb, "slow", 200)
    assert errors, "a 1-WCU table cannot take 200 writes at once"
    assert len(stored) + len(errors) == 200
    error = errors[0].response
    assert error["Error"] == {"Code": "ProvisionedThroughputExceededException", "Message": TABLE_MESSAGE}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["ThrottlingReasons"] == [{"reason": "TableWriteProvisionedThroughputExceeded",
                                          "resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/slow"}]
    assert stored_keys(ddb, "slow") == set(stored), "every accepted write is stored, no throttled one is"
    metrics = table_metrics(emu, "slow")
    assert metrics["WriteThrottleEvents"] == len(errors)
    assert metrics["ThrottledRequests"] == len(errors) + metrics["ReadThrottleEvents"]  # the scans were throttled too
    assert metrics["ConsumedWriteCapacityUnits"] == len(stored)
    assert (metrics["BillingMode"], metrics["ProvisionedWriteCapacityUnits"]) == ("PROVISIONED", 1)


def test_the_tables_figures_are_cloudwatchs_metrics_on_the_one_endpoint(emu: EmulatorHandle) -> None:
    """The timeline samples the capacity layer's counters: GetMetricData answers them under
    AWS/DynamoDB with dimension TableName (metrics-dimensions.html)."""
    stored, errors = put_burst(emu.client("dynamodb"), "watched", 50)
    assert errors and len(stored) + len(errors) == 50
    cloudwatch = emu.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=1)

    def sums() -> dict[str, float]:
        queries = [{"Id": f"m{i}", "Label": name, "MetricStat": {
            "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": name, "Dimensions": [{"Name": "TableName", "Value": "watched"}]},
            "Period": 60, "Stat": "Sum"}}
            for i, name in enumerate(("ConsumedWriteCapacityUnits", "WriteThrottleEvents", "ThrottledRequests"))]
        answer = cloudwatch.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=queries)
        return {result["Label"]: sum(result["Values"]) for result in answer["MetricDataResults"]}

    expected = {"ConsumedWriteCapacityUnits": len(stored), "WriteThrottleEvents": len(errors), "ThrottledRequests": len(errors)}
    assert wait_until(lambda: sums() == expected, 10.0), sums()  # sampled once a second
    listed = cloudwatch.list_metrics(Namespace="AWS/DynamoDB", MetricName="ProvisionedWriteCapacityUnits")["Metrics"]
    assert {"Namespace": "AWS/DynamoDB", "MetricName": "ProvisionedWriteCapacityUnits",
            "Dimensions": [{"Name": "TableName", "Value": "watched"}]} in listed


def test_the_throttling_error_is_on_the_wire_as_aws_writes_it(emu: EmulatorHandle) -> None:
    body = json.dumps({"TableName": "wire", "Item": {"pk": {"S": "x"}}}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem",
               "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIA/20240101/{REGION}/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    answers = []
    for _ in range(50):
        request = urllib.request.Request(emu.url + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                answers.append((response.status, response.read()))
        except urllib.error.HTTPError as error:
            answers.append((error.code, error.read()))
    throttled = [json.loads(payload) for status, payload in answers if status == 400]
    assert throttled and all(status in (200, 400) for status, _ in answers)
    assert throttled[0] == {
        "__type": PREFIX + "ProvisionedThroughputExceededException", "message": TABLE_MESSAGE,
        "ThrottlingReasons": [{"reason": "TableWriteProvisionedThroughputExceeded",
                               "resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/wire"}],
    }


def test_boto3_retries_throttled_writes_until_they_succeed(emu: EmulatorHandle) -> None:
    # boto3's DynamoDB default: up to 10 attempts with exponential back-off from 50 ms (legacy mode).
    ddb = boto3.client("dynamodb", endpoint_url=emu.url, region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="x", config=BotoConfig(retries={"mode": "legacy"}))
    retries = 0
    for i in range(60):
        answer = ddb.put_item(TableName="retried", Item={"pk": {"S": f"r{i}"}})
        retries += answer["ResponseMetadata"]["RetryAttempts"]
    assert retries > 0, "60 writes in a few seconds on 20 WCU: some were throttled, then retried"
    assert len(stored_keys(ddb, "retried")) == 60


def test_a_global_index_short_of_capacity_throttles_writes_to_its_table(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    errors = []
    for i in range(30):
        try:
            ddb.put_item(TableName="indexed", Item={"pk": {"S": f"k{i}"}, "owner": {"S": "o"}})
        except ddb.exceptions.ProvisionedThroughputExceededException as error:
            errors.append(error)
    assert errors, "the table has 100 WCU, its index 1"
    assert errors[0].response["ThrottlingReasons"] == [{
        "reason": "IndexWriteProvisionedThroughputExceeded",
        "resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/indexed/index/by-owner"}]
    assert "global secondary indexes" in errors[0].response["Error"]["Message"]
    # An item without the index's key is not in the (sparse) index: its write costs the index nothing.
    ddb.put_item(TableName="indexed", Item={"pk": {"S": "no-owner"}})
    index = table_metrics(emu, "indexed")["GlobalSecondaryIndexes"]["by-owner"]
    assert index["WriteThrottleEvents"] == len(errors)


def test_batch_writes_return_what_the_capacity_cannot_take_as_unprocessed_items(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    sent: list[str] = []
    unprocessed_seen = 0
    stored: set[str] = set()
    for batch in range(8):
        keys = [f"b{batch}-{i}" for i in range(25)]
        sent += keys
        try:
            answer = ddb.batch_write_item(RequestItems={"batch": [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in keys]})
        except ddb.exceptions.ProvisionedThroughputExceededException:
            continue  # none could be processed: the whole call is throttled (BatchWriteItem reference)
        left = [entry["PutRequest"]["Item"]["pk"]["S"] for entry in answer["UnprocessedItems"].get("batch", [])]
        unprocessed_seen += len(left)
        stored |= set(keys) - set(left)
    assert unprocessed_seen > 0
    assert stored_keys(ddb, "batch") == stored


# -- capacity units, as ReturnConsumedCapacity reports them -------------------------------------------
def test_consumed_capacity_counts_units_as_aws_does(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    big = "x" * 5_000  # 5,000 + 4 + the keys: 5 write units, 2 read steps
    put = ddb.put_item(TableName="units", Item={"pk": {"S": "big"}, "owner": {"S": "o"}, "data": {"S": big}},
                       ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert put == {"TableName": "units", "CapacityUnits": 10.0, "Table": {"CapacityUnits": 5.0},
                   "GlobalSecondaryIndexes": {"by-owner": {"CapacityUnits": 5.0}}}
    eventual = ddb.get_item(TableName="units", Key={"pk": {"S": "big"}}, ReturnConsumedCapacity="TOTAL")
    strong = ddb.get_item(TableName="units", Key={"pk": {"S": "big"}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    missing = ddb.get_item(TableName="units", Key={"pk": {"S": "nothing"}}, ReturnConsumedCapacity="TOTAL")
    assert [r["ConsumedCapacity"]["CapacityUnits"] for r in (eventual, strong, missing)] == [1.0, 2.0, 0.5]
    # A filter does not lower what a query reads.
    query = ddb.query(TableName="units", KeyConditionExpression="pk = :k", FilterExpression="attribute_exists(nope)",
                      ExpressionAttributeValues={":k": {"S": "big"}}, ReturnConsumedCapacity="TOTAL")
    assert query["Count"] == 0 and query["ConsumedCapacity"]["CapacityUnits"] == 1.0
    # An update is charged the larger of the item before and after.
    update = ddb.update_item(TableName="units", Key={"pk": {"S": "big"}}, UpdateExpression="REMOVE #d", ExpressionAttributeNames={"#d": "data"},
                             ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert update["Table"] == {"CapacityUnits": 5.0} and update["GlobalSecondaryIndexes"] == {"by-owner": {"CapacityUnits": 1.0}}
    # The same without an index (moto updates the stored item in place: the old size is kept first).
    ddb.put_item(TableName="plain", Item={"pk": {"S": "p"}, "data": {"S": "x" * 3_000}})
    shrink = ddb.update_item(TableName="plain", Key={"pk": {"S": "p"}}, UpdateExpression="REMOVE #d",
                             ExpressionAttributeNames={"#d": "data"}, ReturnConsumedCapacity="TOTAL")
    assert shrink["ConsumedCapacity"] == {"TableName": "plain", "CapacityUnits": 3.0}
    # BatchGetItem rounds each item up on its own; transactions cost double.
    ddb.put_item(TableName="units", Item={"pk": {"S": "small"}})
    batch = ddb.batch_get_item(RequestItems={"units": {"Keys": [{"pk": {"S": "big"}}, {"pk": {"S": "small"}}]}},
                               ReturnConsumedCapacity="TOTAL")
    assert batch["ConsumedCapacity"] == [{"TableName": "units", "CapacityUnits": 1.0}]
    transaction = ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "units", "Item": {"pk": {"S": "t"}}}}],
                                           ReturnConsumedCapacity="TOTAL")
    assert transaction["ConsumedCapacity"] == [{"TableName": "units", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}]
    # A failed condition still consumes the existing item's write units.
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName="units", Item={"pk": {"S": "small"}}, ConditionExpression="attribute_not_exists(pk)")
    without = ddb.put_item(TableName="units", Item={"pk": {"S": "plain"}})
    assert "ConsumedCapacity" not in without


# -- on-demand ----------------------------------------------------------------------------------------
def test_an_on_demand_maximum_throttles_with_throttling_exception(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    described = ddb.describe_table(TableName="capped")["Table"]
    assert described["OnDemandThroughput"] == {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 5}
    throttled = []
    for i in range(30):
        try:
            ddb.put_item(TableName="capped", Item={"pk": {"S": f"c{i}"}})
        except ddb.exceptions.ThrottlingException as error:
            throttled.append(error)
    assert throttled, "5 write units per second at most"
    error = throttled[0].response
    assert error["Error"]["Code"] == "ThrottlingException" and error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["throttlingReasons"] == [{"reason": "TableWriteMaxOnDemandThroughputExceeded",
                                          "resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/capped"}]


# -- UpdateTable: DynamoDB's limit on decreases ---------------------------------------------------------
def test_a_fifth_decrease_within_the_hour_is_refused(emu: EmulatorHandle) -> None:
    ddb = emu.client("dynamodb")
    for units in (40, 30, 20, 10):
        ddb.update_table(TableName="shrinking", ProvisionedThroughput={"ReadCapacityUnits": units, "WriteCapacityUnits": units})
    with pytest.raises(ddb.exceptions.LimitExceededException) as refused:
        ddb.update_table(TableName="shrinking", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    assert "decreases" in refused.value.response["Error"]["Message"]
    ddb.update_table(TableName="shrinking", ProvisionedThroughput={"ReadCapacityUnits": 60, "WriteCapacityUnits": 60})
    throughput = ddb.describe_table(TableName="shrinking")["Table"]["ProvisionedThroughput"]
    assert (throughput["WriteCapacityUnits"], throughput["NumberOfDecreasesToday"]) == (60, 4)
    assert wait_until(lambda: table_metrics(emu, "shrinking")["ProvisionedWriteCapacityUnits"] == 60, 5.0)


# -- auto scaling from the template: scale-in after 15 quiet minutes -----------------------------------
def test_auto_scaling_lowers_an_idle_tables_capacity_after_fifteen_quiet_minutes() -> None:
    template = {
        "Idle": provisioned("idle", 5, 50),
        "IdleTarget": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ServiceNamespace": "dynamodb", "ResourceId": "table/idle", "ScalableDimension": "dynamodb:table:WriteCapacityUnits",
            "MinCapacity": 2, "MaxCapacity": 100}},
        "IdlePolicy": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
            "PolicyName": "idle-writes", "PolicyType": "TargetTrackingScaling", "ScalingTargetId": {"Ref": "IdleTarget"},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 70, "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}}}},
    }
    # 300×: a minute of data points is 0.2 s; fifteen of them 3 s.
    with running_emulator(template, time_scale=300) as emu:
        ddb = emu.client("dynamodb")

        def write_capacity() -> int:
            return ddb.describe_table(TableName="idle")["Table"]["ProvisionedThroughput"]["WriteCapacityUnits"]

        assert wait_until(lambda: write_capacity() == 2, 30.0)
        throughput = ddb.describe_table(TableName="idle")["Table"]["ProvisionedThroughput"]
        assert throughput["NumberOfDecreasesToday"] == 1 and throughput["ReadCapacityUnits"] == 5
        [activity] = emu.metrics()["dynamodb"]["scaling_activities"]
        assert (activity["ResourceId"], activity["From"], activity["To"], activity["StatusCode"]) == (
            "table/idle", 50, 2, "Successful")
        assert "15 minutes" in activity["Cause"]


def test_a_scaling_policy_cloudformation_would_refuse_stops_the_start_with_its_reason() -> None:
    template = {
        "T": provisioned("t", 5, 5),
        "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ServiceNamespace": "dynamodb", "ResourceId": "table/t", "ScalableDimension": "dynamodb:table:WriteCapacityUnits",
            "MinCapacity": 1, "MaxCapacity": 10}},
        "Policy": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
            "PolicyName": "p", "PolicyType": "TargetTrackingScaling", "ScalingTargetId": {"Ref": "Target"},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 95, "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}}}},
    }
    from emulator.server import StartupError

    with pytest.raises(StartupError, match="TargetValue 95 is outside DynamoDB's 20-90 percent"):
        with running_emulator(template):
            pass
