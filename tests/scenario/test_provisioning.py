"""Template resources created in the backend at start-up and after a reset (issue 4), seen through boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core_testkit import wait_until
from emulator.pytest_plugin import inline_function
from emulator.server import StartupError

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
NOOP = "def handler(event, context):\n    return None\n"


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


TEMPLATE: dict[str, Any] = {
    # declared before its dead-letter queue: creation order follows the reference, not the file
    "Work": {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": "work", "VisibilityTimeout": 45, "DelaySeconds": 2, "MessageRetentionPeriod": 3600,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dead", "Arn"]}, "maxReceiveCount": 4}}},
    "Dead": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "dead"}},
    "Ordered": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "ordered.fifo", "FifoQueue": True,
                                                          "ContentBasedDeduplication": "true"}},
    "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "clicks", "ShardCount": 3,
                                                             "RetentionPeriodHours": 48}},
    "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "news"}},
    "Sub": {"Type": "AWS::SNS::Subscription", "Properties": {
        "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Dead", "Arn"]},
        "RawMessageDelivery": True}},
    "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": "orders", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamViewType": "NEW_IMAGE"}}},
    "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "uploads"}},
    "Fn": inline_function(NOOP, FunctionName="reader", Events={
        "Work": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Work", "Arn"]}, "Enabled": False}}}),
}


def test_template_resources_exist_with_their_settings_and_come_back_after_reset(lambda_emulator_factory: Any) -> None:
    emu = lambda_emulator_factory(TEMPLATE)

    def check_resources() -> None:
        sqs = emu.client("sqs")
        work = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="work")["QueueUrl"],
                                        AttributeNames=["All"])["Attributes"]
        assert (work["VisibilityTimeout"], work["DelaySeconds"], work["MessageRetentionPeriod"]) == ("45", "2", "3600")
        assert json.loads(work["RedrivePolicy"]) == {"deadLetterTargetArn": arn("sqs", "dead"), "maxReceiveCount": 4}
        fifo = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="ordered.fifo")["QueueUrl"],
                                        AttributeNames=["All"])["Attributes"]
        assert (fifo["FifoQueue"], fifo["ContentBasedDeduplication"]) == ("true", "true")
        stream = emu.client("kinesis").describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]
        assert (stream["OpenShardCount"], stream["RetentionPeriodHours"]) == (3, 48)
        sns = emu.client("sns")
        [subscription] = sns.list_subscriptions_by_topic(TopicArn=arn("sns", "news"))["Subscriptions"]
        assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", arn("sqs", "dead"))
        table = emu.client("dynamodb").describe_table(TableName="orders")["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        emu.client("s3").head_bucket(Bucket="uploads")

    check_resources()
    lam = emu.lambda_client
    [from_template] = lam.list_event_source_mappings(FunctionName="reader")["EventSourceMappings"]
    assert from_template["State"] == "Disabled"
    made = lam.create_event_source_mapping(FunctionName="reader", EventSourceArn=arn("sqs", "dead"))["UUID"]
    emu.client("sqs").delete_queue(QueueUrl=emu.client("sqs").get_queue_url(QueueName="work")["QueueUrl"])

    emu.reset()

    check_resources()  # moto was reset, and the template's resources were made again
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    assert [m["EventSourceArn"] for m in mappings] == [arn("sqs", "work")]  # the API-made one is gone
    assert made not in [m["UUID"] for m in mappings]
    assert wait_until(lambda: lam.list_event_source_mappings()["EventSourceMappings"][0]["State"] == "Disabled")


def test_a_resource_the_backend_rejects_stops_start_up_naming_it(lambda_emulator_factory: Any) -> None:
    template = {"Broken": {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": "broken",
        "RedrivePolicy": {"deadLetterTargetArn": arn("sqs", "not-in-the-template"), "maxReceiveCount": 3}}}}
    with pytest.raises(StartupError, match=r"resource 'Broken' \(AWS::SQS::Queue\): the AWS backend rejected "
                                            r"CreateQueue: QueueDoesNotExist"):
        lambda_emulator_factory(template)


def test_an_invalid_template_mapping_stops_start_up_naming_it(lambda_emulator_factory: Any) -> None:
    template = {
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "Fn": inline_function(NOOP, FunctionName="reader", Events={
            "Big": {"Type": "SQS", "Properties": {"Queue": arn("sqs", "q"), "BatchSize": 100}}}),
    }
    with pytest.raises(StartupError, match=r"function 'Fn', event 'Big' \(SQS\): Maximum batch window in seconds "
                                            r"must be greater than 0"):
        lambda_emulator_factory(template)
