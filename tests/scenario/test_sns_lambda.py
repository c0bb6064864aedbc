"""SNS → Lambda through the emulator, as SNS delivers (https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html):
SAM `Events: Type: SNS` and the Subscribe API make subscriptions; every Publish and
PublishBatch reaches each matching Lambda subscription as an asynchronous invoke with AWS's
event record; filter policies decide with AWS's rules and errors; SNS → SQS → Lambda runs
end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import wait_until
from source_testkit import ACCOUNT, REGION, recorder
from source_testkit import events_of as recorded_events
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:orders"


def _sns_event(policy: dict | None = None, **properties: object) -> dict:
    props: dict = {"Topic": {"Ref": "Orders"}, **properties}
    if policy is not None:
        props["FilterPolicy"] = policy
    return {"Orders": {"Type": "SNS", "Properties": props}}


@pytest.fixture(scope="module")
def emu(out_dir: Path) -> Iterator[EmulatorHandle]:
    template = {
        "Orders": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "orders"}},
        "Audit": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "audit"}},
        "AuditSubscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Orders"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Audit", "Arn"]},
            "FilterPolicy": {"kind": ["refund"]}}},
        "Everything": recorder(out_dir, "Everything", Events=_sns_event()),
        "BigOrders": recorder(out_dir, "BigOrders", Events=_sns_event({"price": [{"numeric": [">=", 100]}]})),
        "EuOrders": recorder(out_dir, "EuOrders", Events=_sns_event(
            {"shipping": {"region": [{"prefix": "eu-"}]}}, FilterPolicyScope="MessageBody")),
        "Queued": recorder(out_dir, "Queued", Events=_sns_event(
            {"kind": [{"anything-but": "refund"}]}, SqsSubscription=True)),
    }
    with running_emulator(template) as handle:
        handle.events_dir = out_dir
        yield handle


@pytest.fixture(autouse=True)
def _fresh(emu):
    emu.reset()
    for path in Path(emu.events_dir).iterdir():
        path.unlink()
    yield
    emu.check()


def events_of(emu, function: str) -> list[dict]:
    return recorded_events(emu.events_dir, function)


def topic_metrics(emu) -> dict:
    return emu.metrics()["sns"]["topics"].get(TOPIC_ARN, {})


def settled(emu, function: str, count: int) -> list[dict]:
    """The function's events once exactly `count` async events of it have succeeded."""
    ok = wait_until(lambda: emu.metrics()["functions"].get(function, {}).get("AsyncEventsSucceeded", 0) >= count,
                    timeout_s=30)
    assert ok, f"{function} did not finish {count} event(s): {emu.metrics()['functions'].get(function)}"
    return events_of(emu, function)


def records_via_queue(emu, function: str, count: int) -> list[dict]:
    """The SQS records a function got from its queue, once there are `count` of them."""
    def records() -> list[dict]:
        return [r for e in events_of(emu, function) for r in e["Records"]]

    assert wait_until(lambda: len(records()) >= count, timeout_s=30), f"{function}: {records()}"
    return records()


def test_sam_sns_events_become_lambda_subscriptions(emu):
    sns = emu.client("sns")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    lambdas = {s["Endpoint"].rsplit(":", 1)[1]: s for s in subscriptions if s["Protocol"] == "lambda"}
    assert set(lambdas) == {"Everything", "BigOrders", "EuOrders"}
    attributes = sns.get_subscription_attributes(SubscriptionArn=lambdas["EuOrders"]["SubscriptionArn"])["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {"shipping": {"region": [{"prefix": "eu-"}]}}
    assert attributes["FilterPolicyScope"] == "MessageBody"
    queues = {s["Endpoint"].rsplit(":", 1)[1] for s in subscriptions if s["Protocol"] == "sqs"}
    assert queues == {"audit", "QueuedOrdersQueue"}  # SqsSubscription: SAM's queue between topic and function


def test_the_event_record_is_the_one_aws_sends(emu):
    sns = emu.client("sns")
    message_id = sns.publish(TopicArn=TOPIC_ARN, Message="hello", Subject="greeting", MessageAttributes={
        "price": {"DataType": "Number", "StringValue": "5"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })["MessageId"]
    [event] = settled(emu, "Everything", 1)
    [record] = event["Records"]
    subscription = next(s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
                        if s["Endpoint"].endswith(":Everything"))
    assert set(record) == {"EventSource", "EventVersion", "EventSubscriptionArn", "Sns"}
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"] == subscription
    sns_part = record["Sns"]
    assert set(sns_part) == {"Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion",
                             "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}
    assert sns_part["Type"] == "Notification"
    assert sns_part["MessageId"] == message_id
    assert sns_part["TopicArn"] == TOPIC_ARN
    assert sns_part["Subject"] == "greeting" and sns_part["Message"] == "hello"
    assert sns_part["SignatureVersion"] == "1"
    assert sns_part["Timestamp"].endswith("Z") and len(sns_part["Timestamp"]) == 24
    assert sns_part["SigningCertUrl"].startswith(f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-")
    assert sns_part["UnsubscribeUrl"] == (f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
                                          f"{subscription}")
    assert sns_part["MessageAttributes"] == {"price": {"Type": "Number", "Value": "5"},
                                             "blob": {"Type": "Binary", "Value": "AAE="}}
    # Without subject or attributes: Subject null, attributes {}.
    sns.publish(TopicArn=TOPIC_ARN, Message="plain")
    second = settled(emu, "Everything", 2)[1]["Records"][0]["Sns"]
    assert second["Subject"] is None and second["MessageAttributes"] == {}


def test_filter_policies_decide_and_filtered_messages_are_counted(emu):
    sns = emu.client("sns")
    orders = [  # (attributes, body) and who must get it
        ({"price": "150", "kind": "sale"}, {"shipping": {"region": "eu-west-1"}}),  # Big, Eu, Queued
        ({"price": "50", "kind": "sale"}, {"shipping": {"region": "us-east-1"}}),  # Queued
        ({"price": "100", "kind": "refund"}, {"shipping": {"region": "eu-north-1"}}),  # Big, Eu, audit
        ({"kind": "refund"}, "not json"),  # audit
    ]
    for attributes, body in orders:
        sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps(body) if not isinstance(body, str) else body,
                    MessageAttributes={name: {"DataType": "Number" if name == "price" else "String", "StringValue": value}
                                       for name, value in attributes.items()})
    assert len(settled(emu, "Everything", 4)) == 4
    big = [json.loads(e["Records"][0]["Sns"]["Message"]) for e in settled(emu, "BigOrders", 2)]
    assert sorted(b["shipping"]["region"] for b in big) == ["eu-north-1", "eu-west-1"]
    eu = settled(emu, "EuOrders", 2)
    assert sorted(json.loads(e["Records"][0]["Sns"]["Message"])["shipping"]["region"] for e in eu) == ["eu-north-1",
                                                                                                       "eu-west-1"]
    queued = records_via_queue(emu, "Queued", 2)  # through its queue: each record's body is SNS's envelope
    bodies = sorted(json.loads(json.loads(r["body"])["Message"])["shipping"]["region"] for r in queued)
    assert bodies == ["eu-west-1", "us-east-1"]
    audit = emu.client("sqs").get_queue_url(QueueName="audit")["QueueUrl"]
    assert int(emu.client("sqs").get_queue_attributes(QueueUrl=audit, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"]) == 2
    metrics = topic_metrics(emu)
    assert metrics["NumberOfMessagesPublished"] == 4
    # Big: 2 out; Eu: 1 out by its payload, 1 invalid body; Queued: 2 out; audit: 2 out.
    assert metrics["NumberOfNotificationsFilteredOut"] == 8
    assert metrics["NumberOfNotificationsFilteredOut-MessageAttributes"] == 6
    assert metrics["NumberOfNotificationsFilteredOut-MessageBody"] == 1
    assert metrics["NumberOfNotificationsFilteredOut-InvalidMessageBody"] == 1
    # Delivered: 4 + 2 + 2 to functions, 2 + 2 to queues.
    assert metrics["NumberOfNotificationsDelivered"] == 12
    # Nothing more arrives afterwards: every delivery was counted above.
    assert len(events_of(emu, "BigOrders")) == 2 and len(events_of(emu, "EuOrders")) == 2


def test_publish_batch_reaches_every_subscription(emu):
    sns = emu.client("sns")
    result = sns.publish_batch(TopicArn=TOPIC_ARN, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": json.dumps({"n": i}),
         "MessageAttributes": {"price": {"DataType": "Number", "StringValue": str(i * 100)}}} for i in range(10)
    ])
    assert len(result["Successful"]) == 10
    assert sorted(json.loads(e["Records"][0]["Sns"]["Message"])["n"] for e in settled(emu, "Everything", 10)) == list(range(10))
    assert len(settled(emu, "BigOrders", 9)) == 9  # prices 100..900


def test_subscribe_and_set_attributes_refuse_policies_with_aws_messages(emu):
    sns = emu.client("sns")
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Everything"
    before = len(sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"])
    with pytest.raises(ClientError) as caught:
        sns.subscribe(TopicArn=TOPIC_ARN, Protocol="lambda", Endpoint=function_arn,
                      Attributes={"FilterPolicy": '{"key":[{"suffix":100}]}'})
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameter"
    assert error["Message"] == ('Invalid parameter: Attributes Reason: FilterPolicy: suffix match pattern must be a '
                                'string\n at [Source: (String)"{"key":[{"suffix":100}]}"; line: 1, column: 22]')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]) == before  # nothing created
    arn = sns.subscribe(TopicArn=TOPIC_ARN, Protocol="lambda", Endpoint=function_arn + ":missing",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    with pytest.raises(ClientError) as caught:
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicy",
                                        AttributeValue=json.dumps({f"k{i}": ["v"] for i in range(6)}))
    assert caught.value.response["Error"]["Message"] == "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"
    with pytest.raises(ClientError) as caught:
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicyScope", AttributeValue="Body")
    assert caught.value.response["Error"]["Message"] == ("Invalid parameter: FilterPolicyScope: Invalid value [Body]. "
                                                         "Please use either MessageBody or MessageAttributes")


def test_unsubscribe_and_set_policy_take_effect_on_the_next_publish(emu):
    sns = emu.client("sns")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    everything = next(s["SubscriptionArn"] for s in subscriptions if s["Endpoint"].endswith(":Everything"))
    big = next(s["SubscriptionArn"] for s in subscriptions if s["Endpoint"].endswith(":BigOrders"))
    sns.unsubscribe(SubscriptionArn=everything)
    sns.set_subscription_attributes(SubscriptionArn=big, AttributeName="FilterPolicy", AttributeValue="")
    sns.publish(TopicArn=TOPIC_ARN, Message="small", MessageAttributes={"price": {"DataType": "Number", "StringValue": "1"}})
    assert len(settled(emu, "BigOrders", 1)) == 1  # no policy any more: everything matches
    # Only BigOrders: Queued's anything-but needs a "kind" attribute, EuOrders a JSON body.
    assert topic_metrics(emu)["NumberOfNotificationsDelivered"] == 1
    assert events_of(emu, "Everything") == []


def test_lambda_cannot_subscribe_to_a_fifo_topic(emu):
    sns = emu.client("sns")
    fifo = sns.create_topic(Name="events.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    with pytest.raises(ClientError) as caught:
        sns.subscribe(TopicArn=fifo, Protocol="lambda", Endpoint=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Everything")
    assert caught.value.response["Error"]["Code"] == "InvalidParameter"


def test_filter_policy_limit_per_topic(emu):
    sns = emu.client("sns")
    topic = sns.create_topic(Name="busy")["TopicArn"]
    for i in range(200):
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f{i}",
                      Attributes={"FilterPolicy": '{"a": ["x"]}'})
    # A subscription without a policy is still possible; the 201st policy is not.
    arn = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:g",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    with pytest.raises(ClientError) as caught:
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue='{"a": ["x"]}')
    assert caught.value.response["Error"]["Code"] == "FilterPolicyLimitExceeded"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_destination_that_is_a_topic_reaches_its_lambda_subscribers(emu):
    # Every publish reaches Lambda subscriptions, not only those through the endpoint: here an
    # async invocation's on-success destination publishes the record to the topic.
    lam = emu.lambda_client
    lam.put_function_event_invoke_config(FunctionName="EuOrders", DestinationConfig={"OnSuccess": {"Destination": TOPIC_ARN}})
    lam.invoke(FunctionName="EuOrders", InvocationType="Event", Payload=b'{"direct": true}')
    [event] = settled(emu, "Everything", 1)
    record = json.loads(event["Records"][0]["Sns"]["Message"])
    assert record["requestContext"]["condition"] == "Success" and record["requestPayload"] == {"direct": True}
