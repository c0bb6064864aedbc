"""SNS fan-out end to end, through boto3: a topic → SQS queues (raw and enveloped) → Lambda,
and a Lambda subscription refused by Lambda, retried by SNS's delivery policy on the
emulator's clock (`--time-scale`), then sent to the subscription's dead-letter queue
(https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html,
https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:orders"
WAIT_S = 30.0
RECORDER = """
import json, os

def handler(event, context):
    line = (json.dumps(event) + "\\n").encode()
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
"""


def _recorder(out: Path, name: str, **properties: Any) -> dict:
    return inline_function(RECORDER, FunctionName=name, Environment={"Variables": {"OUT": str(out / f"{name}.jsonl")}},
                           **properties)


def _queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _subscription(queue: str, **attributes: Any) -> dict:
    return {"Type": "AWS::SNS::Subscription", "Properties": {
        "TopicArn": {"Ref": "Orders"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": [queue, "Arn"]}, **attributes}}


def _from_queue(queue: str, **properties: Any) -> dict:
    return {"Q": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": [queue, "Arn"]}, **properties}}}


def records_of(out: Path, name: str) -> list[dict[str, Any]]:
    path = out / f"{name}.jsonl"
    if not path.exists():
        return []
    return [record for line in path.read_text().splitlines() for record in json.loads(line)["Records"]]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fanout-events")


@pytest.fixture(scope="module")
def emu(out_dir: Path) -> Iterator[EmulatorHandle]:
    template = {
        "Orders": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "orders"}},
        "Raw": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "raw"}},
        "Wrapped": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "wrapped"}},
        # Raw delivery with an SNS filter policy, then a Lambda event filter on the raw body:
        # two filters in a row, each with its own dialect.
        "RawSubscription": _subscription("Raw", RawMessageDelivery="true", FilterPolicy={"kind": ["sale", "refund"]}),
        "WrappedSubscription": _subscription("Wrapped"),
        "rawReader": _recorder(out_dir, "rawReader", Events=_from_queue(
            "Raw", FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"amount": [{"numeric": [">=", 10]}]}})}]})),
        "wrappedReader": _recorder(out_dir, "wrappedReader", Events=_from_queue("Wrapped", BatchSize=10)),
        "direct": _recorder(out_dir, "direct", Events={"T": {"Type": "SNS", "Properties": {
            "Topic": {"Ref": "Orders"}, "FilterPolicy": {"kind": ["refund"]}}}}),
    }
    with running_emulator(template) as handle:
        yield handle


def test_a_topic_fans_out_through_raw_and_enveloped_queues_to_functions(emu, out_dir):
    sns = emu.client("sns")
    orders = [("sale", 5), ("sale", 50), ("refund", 20), ("view", 99)]
    sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps({"amount": orders[0][1]}), Subject="first",
                MessageAttributes={"kind": {"DataType": "String", "StringValue": orders[0][0]}})
    batch = sns.publish_batch(TopicArn=TOPIC_ARN, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": json.dumps({"amount": amount}),
         "MessageAttributes": {"kind": {"DataType": "String", "StringValue": kind}}}
        for i, (kind, amount) in enumerate(orders[1:])])
    assert len(batch["Successful"]) == 3 and batch["Failed"] == []
    # The enveloped queue gets all four, each body SNS's JSON notification.
    assert wait_until(lambda: len(records_of(out_dir, "wrappedReader")) == 4, timeout_s=WAIT_S)
    envelopes = [json.loads(r["body"]) for r in records_of(out_dir, "wrappedReader")]
    assert all(e["Type"] == "Notification" and e["TopicArn"] == TOPIC_ARN and e["SignatureVersion"] == "1"
               for e in envelopes)
    assert sorted(json.loads(e["Message"])["amount"] for e in envelopes) == [5, 20, 50, 99]
    assert {e["MessageAttributes"]["kind"]["Value"] for e in envelopes} == {"sale", "refund", "view"}
    assert next(e for e in envelopes if json.loads(e["Message"])["amount"] == 5)["Subject"] == "first"
    # The raw queue: SNS's policy keeps sale and refund (3), Lambda's filter amount >= 10 (2);
    # bodies are the messages as published, SNS attributes are SQS message attributes.
    assert wait_until(lambda: len(records_of(out_dir, "rawReader")) == 2, timeout_s=WAIT_S)
    raw = sorted(records_of(out_dir, "rawReader"), key=lambda r: json.loads(r["body"])["amount"])
    assert [json.loads(r["body"]) for r in raw] == [{"amount": 20}, {"amount": 50}]
    assert raw[0]["messageAttributes"]["kind"]["stringValue"] == "refund"
    assert raw[0]["messageAttributes"]["kind"]["dataType"] == "String"
    # The direct subscription: refunds only, as an SNS event.
    assert wait_until(lambda: len(records_of(out_dir, "direct")) == 1, timeout_s=WAIT_S)
    assert json.loads(records_of(out_dir, "direct")[0]["Sns"]["Message"]) == {"amount": 20}
    # Counted: 4 published; delivered 4 (wrapped) + 3 (raw) + 1 (direct); filtered out 1 + 3.
    metrics = emu.metrics()
    topic = metrics["sns"]["topics"][TOPIC_ARN]
    assert topic["NumberOfMessagesPublished"] == 4
    assert wait_until(lambda: emu.metrics()["sns"]["topics"][TOPIC_ARN]["NumberOfNotificationsDelivered"] == 8,
                      timeout_s=WAIT_S)
    assert topic["NumberOfNotificationsFilteredOut"] == 4
    [raw_mapping] = emu.lambda_client.list_event_source_mappings(FunctionName="rawReader")["EventSourceMappings"]
    assert wait_until(lambda: emu.metrics()["event_source_mappings"][raw_mapping["UUID"]]["FilteredOutEventCount"] == 1,
                      timeout_s=WAIT_S)
    # The same figures through CloudWatch's API, under AWS/SNS and AWS/Lambda's names, once
    # the timeline's sampler (4 samples a second) has read them.
    cloudwatch = emu.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc)

    def total(namespace: str, metric: str, dimension: tuple[str, str]) -> float:
        answer = cloudwatch.get_metric_data(
            StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=5), MetricDataQueries=[
                {"Id": "m", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": [
                    {"Name": dimension[0], "Value": dimension[1]}]}, "Period": 60, "Stat": "Sum"}}])
        return sum(answer["MetricDataResults"][0]["Values"])

    expected = [("AWS/SNS", "NumberOfMessagesPublished", ("TopicName", "orders"), 4),
                ("AWS/SNS", "NumberOfNotificationsDelivered", ("TopicName", "orders"), 8),
                ("AWS/SNS", "NumberOfNotificationsFilteredOut", ("TopicName", "orders"), 4),
                ("AWS/Lambda", "FilteredOutEventCount", ("EventSourceMappingUUID", raw_mapping["UUID"]), 1)]
    for namespace, metric, dimension, value in expected:
        assert wait_until(lambda: total(namespace, metric, dimension) == value, timeout_s=WAIT_S), (metric, value)


# -- Lambda refuses: SNS's delivery policy, on the emulator's clock --------------------------------
def _refusing_template(out: Path, endpoint: str) -> dict:
    return {
        "Orders": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "orders"}},
        "Undelivered": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "undelivered"}},
        "ToLambda": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Orders"}, "Protocol": "lambda", "Endpoint": endpoint,
            "RedrivePolicy": {"deadLetterTargetArn": _queue_arn("undelivered")}}},
        "fn": _recorder(out, "fn"),
    }


def _dead_letters(emu: EmulatorHandle) -> list[dict]:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="undelivered")["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])


def test_retries_reach_a_function_that_appears_later(tmp_path):
    # The subscription names an alias that does not exist yet: Lambda refuses, SNS retries
    # (3 immediate, then 1 s apart: 1/20 s each at time scale 20) until the alias is made.
    endpoint = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:live"
    with running_emulator(_refusing_template(tmp_path, endpoint), time_scale=20) as emu:
        emu.client("sns").publish(TopicArn=TOPIC_ARN, Message="late")

        def counters() -> dict:
            return emu.metrics()["sns"]["topics"].get(TOPIC_ARN, {})

        assert wait_until(lambda: counters().get("LambdaDeliveryAttemptsRejected", 0) >= 5, timeout_s=WAIT_S)
        emu.lambda_client.create_alias(FunctionName="fn", Name="live", FunctionVersion="$LATEST")
        assert wait_until(lambda: len(records_of(tmp_path, "fn")) == 1, timeout_s=WAIT_S)
        assert records_of(tmp_path, "fn")[0]["Sns"]["Message"] == "late"
        assert counters()["NumberOfNotificationsDelivered"] == 1
        assert counters().get("NumberOfNotificationsFailed", 0) == 0 and _dead_letters(emu) == []
        # An alias of $LATEST serves a direct invoke too (it raised KeyError: '$LATEST').
        assert emu.lambda_client.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")["StatusCode"] == 200


def test_an_exhausted_delivery_policy_sends_the_message_to_the_dead_letter_queue(tmp_path):
    # 100,015 attempts over 23 days, compressed: at time scale 10^6 the 23 days take 2 s.
    endpoint = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:missing"
    with running_emulator(_refusing_template(tmp_path, endpoint), time_scale=1_000_000) as emu:
        emu.client("sns").publish(TopicArn=TOPIC_ARN, Message="never", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "sale"}})
        assert wait_until(lambda: emu.metrics()["sns"]["topics"].get(TOPIC_ARN, {}).get(
            "NumberOfNotificationsRedrivenToDlq") == 1, timeout_s=60)
        counters = emu.metrics()["sns"]["topics"][TOPIC_ARN]
        assert counters["LambdaDeliveryAttemptsRejected"] == 100_015
        assert counters["NumberOfNotificationsFailed"] == 1 and "NumberOfNotificationsDelivered" not in counters
        [dead] = _dead_letters(emu)
        envelope = json.loads(dead["Body"])
        assert envelope["Type"] == "Notification" and envelope["Message"] == "never"
        assert dead["MessageAttributes"]["kind"]["StringValue"] == "sale"


def test_the_dead_letter_choice_sends_a_refused_message_at_once(tmp_path):
    endpoint = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:missing"
    with running_emulator(_refusing_template(tmp_path, endpoint), sns_lambda_rejections="dead-letter") as emu:
        emu.client("sns").publish(TopicArn=TOPIC_ARN, Message="refused")
        assert wait_until(lambda: len(_dead_letters(emu)) == 1, timeout_s=WAIT_S)
        # The count follows the DLQ's acknowledgement of the send, so it may trail the message.
        assert wait_until(lambda: emu.metrics()["sns"]["topics"].get(TOPIC_ARN, {}).get(
            "NumberOfNotificationsRedrivenToDlq") == 1, timeout_s=WAIT_S)
        counters = emu.metrics()["sns"]["topics"][TOPIC_ARN]
        assert counters["LambdaDeliveryAttemptsRejected"] == 1 and counters["NumberOfNotificationsRedrivenToDlq"] == 1
