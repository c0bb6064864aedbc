"""What SNS delivers, byte for byte: the JSON envelope an SQS queue (or a dead-letter queue)
receives, and the event record a Lambda function receives. Pure; shared by the moto child
(SQS deliveries) and the control plane (Lambda deliveries, dead letters).

* The SQS envelope: keys in AWS's order, written as SNS writes it ("Key" : value, two
  spaces of indent, attributes one object per line), Subject and MessageAttributes only
  when present (https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html and
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html).
* The Lambda record: AWS's example event
  (https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html): EventSource, EventVersion,
  EventSubscriptionArn, and `Sns` with Type, MessageId, TopicArn, Subject (null when the
  message has none), Message, Timestamp, SignatureVersion "1", Signature, SigningCertUrl,
  UnsubscribeUrl and MessageAttributes as {name: {Type, Value}} ({} when none).

Signatures look like SNS's (base64 of 256 bytes) but verify against nothing: the
certificate URL is SNS's own host, which a local emulator cannot serve (README, "SNS").
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping

# SNS signs with SHA1 ("1") unless the topic's SignatureVersion attribute is "2"
# (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
SIGNATURE_VERSION = "1"
LAMBDA_EVENT_SOURCE = "aws:sns"
LAMBDA_EVENT_VERSION = "1.0"
NOTIFICATION = "Notification"
# Lambda's limit for an asynchronous payload: 1 MB since Oct 2025
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
_CERTIFICATE = "SimpleNotificationService-" + hashlib.md5(b"lambda-scale-emulator").hexdigest() + ".pem"


def timestamp(epoch: float) -> str:
    """2019-01-02T12:45:07.000Z"""
    seconds, millis = divmod(int(epoch * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def signature(message_id: str) -> str:
    return base64.b64encode(hashlib.sha256(message_id.encode()).digest() * 8).decode()


def signature_version_of(topic_version: object) -> str:
    """The version a topic signs with: its SignatureVersion attribute when "2", else "1"."""
    return "2" if str(topic_version) == "2" else SIGNATURE_VERSION


def region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else "us-east-1"


def certificate_url(region: str) -> str:
    return f"https://sns.{region}.amazonaws.com/{_CERTIFICATE}"


def unsubscribe_url(subscription_arn: str) -> str:
    return f"https://sns.{region_of(subscription_arn)}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"


def sqs_envelope(*, message_id: str, topic_arn: str, subscription_arn: str, message: str, subject: str | None,
                 stamp: str, attributes: Mapping[str, Mapping[str, str]] | None,
                 signature_version: str = SIGNATURE_VERSION) -> str:
    """The body an SQS subscription without raw delivery receives."""
    lines = ['{', f'  "Type" : "{NOTIFICATION}",', f'  "MessageId" : {_j(message_id)},', f'  "TopicArn" : {_j(topic_arn)},']
    if subject is not None:
        lines.append(f'  "Subject" : {_j(subject)},')
    lines += [
        f'  "Message" : {_j(message)},',
        f'  "Timestamp" : {_j(stamp)},',
        f'  "SignatureVersion" : {_j(signature_version)},',
        f'  "Signature" : {_j(signature(message_id))},',
        f'  "SigningCertURL" : {_j(certificate_url(region_of(topic_arn)))},',
        f'  "UnsubscribeURL" : {_j(unsubscribe_url(subscription_arn))}',
    ]
    if attributes:
        lines[-1] += ","
        entries = [f'    {_j(name)} : {{"Type":{_j(a["Type"])},"Value":{_j(a["Value"])}}}' for name, a in attributes.items()]
        lines += ['  "MessageAttributes" : {', ",\n".join(entries), "  }"]
    lines.append("}")
    return "\n".join(lines)


def _j(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


class LambdaEvents:
    """One message's event records for each of its Lambda subscriptions, the message encoded
    once: the records differ only in EventSubscriptionArn and UnsubscribeUrl, and a topic
    fans one message out to many subscriptions. The bytes are json.dumps's of the record
    (ensure_ascii off), keys in the order of AWS's example event."""

    def __init__(self, *, message_id: str, topic_arn: str, message: str, subject: str | None, stamp: str,
                 attributes: Mapping[str, Mapping[str, str]] | None, signature_version: str = SIGNATURE_VERSION) -> None:
        head = {"EventSource": LAMBDA_EVENT_SOURCE, "EventVersion": LAMBDA_EVENT_VERSION}
        sns = {
            "Type": NOTIFICATION,
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": stamp,
            "SignatureVersion": signature_version,
            "Signature": signature(message_id),
            "SigningCertUrl": certificate_url(region_of(topic_arn)),
        }
        shown = {name: {"Type": a["Type"], "Value": a["Value"]} for name, a in (attributes or {}).items()}
        # '{"Records": [{"EventSource": …, "EventVersion": …, "EventSubscriptionArn": ' ARN
        # ', "Sns": {"Type": …, "SigningCertUrl": …, "UnsubscribeUrl": ' URL
        # ', "MessageAttributes": {…}}}]}'
        self._head = '{"Records": [' + _j(head)[:-1] + ', "EventSubscriptionArn": '
        self._middle = ', "Sns": ' + _j(sns)[:-1] + ', "UnsubscribeUrl": '
        self._tail = ', "MessageAttributes": ' + _j(shown) + "}}]}"

    def payload(self, subscription_arn: str) -> bytes:
        return (self._head + _j(subscription_arn) + self._middle + _j(unsubscribe_url(subscription_arn))
                + self._tail).encode()
