"""The Lambda event record SNS sends, built once per message for all its subscriptions:
byte for byte what json.dumps writes for AWS's example event
(https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.sns_shapes import LambdaEvents, certificate_url, signature, unsubscribe_url

TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
SUBSCRIPTIONS = [f"{TOPIC}:{n:08d}-aaaa-bbbb-cccc-dddddddddddd" for n in range(3)]


def reference(subscription_arn: str, message: str, subject: str | None, attributes: dict[str, Any]) -> bytes:
    record = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": TOPIC,
            "Subject": subject,
            "Message": message,
            "Timestamp": "2026-12-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": signature("m-1"),
            "SigningCertUrl": certificate_url("eu-west-1"),
            "UnsubscribeUrl": unsubscribe_url(subscription_arn),
            "MessageAttributes": {name: {"Type": a["Type"], "Value": a["Value"]} for name, a in attributes.items()},
        },
    }
    return json.dumps({"Records": [record]}, ensure_ascii=False).encode()


@pytest.mark.parametrize("message, subject, attributes", [
    ("hello", None, {}),
    ('{"order": 1, "note": "quotes \\" and \\\\ and \\n"}', "Subject ü", {}),
    ("日本語 \u2028 \x00", "s", {"color": {"Type": "String", "Value": "red"}, "n": {"Type": "Number", "Value": "1.5"},
                              "list": {"Type": "String.Array", "Value": '["a", "b"]'}}),
    ('", "EventSubscriptionArn": "forged', None, {"k": {"Type": "String", "Value": '", "UnsubscribeUrl": "x'}}),
])
def test_every_subscription_gets_the_bytes_json_dumps_writes(message: str, subject: str | None,
                                                             attributes: dict[str, Any]) -> None:
    events = LambdaEvents(message_id="m-1", topic_arn=TOPIC, message=message, subject=subject,
                          stamp="2026-12-01T00:00:00.000Z", attributes=attributes)
    for subscription in SUBSCRIPTIONS:
        expected = reference(subscription, message, subject, attributes)
        assert events.payload(subscription) == expected
        assert json.loads(events.payload(subscription))["Records"][0]["EventSubscriptionArn"] == subscription
