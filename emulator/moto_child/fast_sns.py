"""SNS in the moto child, as SNS delivers: one filter-policy implementation for every
subscription, AWS's envelope, and Lambda deliveries handed to the control plane.

moto keeps the topics and every subscription (any protocol: its Subscribe, List*,
Get/SetSubscriptionAttributes, Unsubscribe and DeleteTopic stay the API). `apply()`
changes what moto 5.2 does wrong or slowly for fan-out:

1. filter policies are checked and matched by emulator/patterns (AWS's rules and error
   texts, Event Ruler's semantics) instead of moto's approximation; a Subscribe whose
   policy is refused creates no subscription; the 200-per-topic and 10,000-per-account
   limits hold (https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html);
2. Publish delivers to SQS subscriptions with SNS's envelope (emulator/sns_shapes.py)
   instead of building an X.509 certificate per message, never fails because one endpoint
   failed (the failure goes to the subscription's dead-letter queue, as a client-side
   error: https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html), and no
   longer keeps every notification ever sent (moto's `sent_notifications`);
3. a message for a Lambda subscription goes to the outbox the control plane takes from
   (emulator/moto_child/sns_outbox.py) instead of moto's own Lambda backend;
4. counters per topic under CloudWatch's names, filtered-out messages included;
5. Publish and PublishBatch take a short path through moto's server
   (emulator/moto_child/sns_wire.py): the same SNSResponse methods and backend, without
   moto's generic request set-up, parser and serializer.

Like the fast SQS model, it is applied only on a verified moto version.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, is_verified
from emulator.patterns.sns_policy import (
    LIMIT_EXCEEDED_CODE,
    LIMIT_EXCEEDED_MESSAGE,
    MAX_POLICIES_PER_ACCOUNT,
    MAX_POLICIES_PER_TOPIC,
    SCOPES,
    SET_ATTRIBUTES_PREFIX,
    SUBSCRIBE_PREFIX,
    FilterPolicy,
    FilterPolicyError,
    Outcome,
    PublishedMessage,
    parse_policy,
    scope_error,
)
from emulator.sns_shapes import signature_version_of, sqs_envelope, timestamp

log = logging.getLogger("emulator.moto.sns")

# Subscription attributes SetSubscriptionAttributes accepts
# (https://docs.aws.amazon.com/sns/latest/api/API_SetSubscriptionAttributes.html).
SUBSCRIPTION_ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                           "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy")
# Lambda subscribes to standard topics only: "FIFO topics aren't supported"
# (https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html); AWS's refusal text is not
# documented, this one is ours.
FIFO_LAMBDA_MESSAGE = "Invalid parameter: Endpoint Reason: FIFO topics only support Amazon SQS queues as endpoints"
# MessageStructure=json refusals (AWS's wording as SDKs report it).
STRUCTURE_NOT_JSON = "Invalid parameter: Message Structure - JSON message body failed to parse"
STRUCTURE_NO_DEFAULT = "Invalid parameter: Message Structure - No default entry in JSON message body"


def apply() -> bool:
    import moto

    if not is_verified(moto.__version__):
        log.warning("moto %s is not a version the SNS fan-out was verified with (%s): moto's own SNS runs, and "
                    "SNS delivers nothing to Lambda", moto.__version__, ", ".join(VERIFIED_MOTO_VERSIONS))
        return False
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sns import models, responses

    from emulator.moto_child import sns_outbox, sns_wire

    if getattr(models, "_emulator_fast_sns", False):
        return True
    patches = _Patches(models)

    # Plain functions: assigned to a class, they bind to the backend or topic instance.
    def set_subscription_attributes(backend: Any, arn: str, name: str, value: Any) -> None:
        patches.set_subscription_attributes(backend, arn, name, value)

    def publish(topic: Any, message: str, **kwargs: Any) -> str:
        return patches.topic_publish(topic, message, **kwargs)

    responses.SNSResponse.subscribe = patches.subscribe_response()
    models.SNSBackend.set_subscription_attributes = set_subscription_attributes
    models.Topic.publish = publish
    original_reset = models.SNSBackend.reset

    def reset(backend: Any) -> None:
        original_reset(backend)
        sns_outbox.OUTBOX.clear()
        sns_outbox.COUNTERS.clear()

    models.SNSBackend.reset = reset
    DomainDispatcherApplication.__call__ = sns_wire.dispatcher_call(
        sns_outbox.dispatcher_call(DomainDispatcherApplication.__call__))
    models._emulator_fast_sns = True
    return True


def _policy_of(subscription: Any) -> FilterPolicy | None:
    return getattr(subscription, "_emulator_policy", None)


def _dead_letter_arn(subscription: Any) -> str | None:
    redrive = subscription.attributes.get("RedrivePolicy")
    if not redrive:
        return None
    try:
        arn = json.loads(redrive).get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        return None
    return arn if isinstance(arn, str) and arn else None


class _Patches:
    def __init__(self, models: Any) -> None:
        from moto.core.exceptions import ServiceException
        from moto.moto_api._internal import mock_random
        from moto.sns.exceptions import InvalidParameterValue, SNSInvalidParameter, SNSNotFoundError
        from moto.sqs import sqs_backends

        class FilterPolicyLimitExceeded(ServiceException):
            code = LIMIT_EXCEEDED_CODE

            def __init__(self) -> None:
                super().__init__(LIMIT_EXCEEDED_MESSAGE)

        self.models = models
        self.invalid = SNSInvalidParameter
        self.invalid_value = InvalidParameterValue
        self.not_found = SNSNotFoundError
        self.limit_exceeded = FilterPolicyLimitExceeded
        self.uuid = mock_random.uuid4
        self.sqs_backends = sqs_backends
        self.original_subscription_publish = models.Subscription.publish
        self.sns_backends = models.sns_backends

    # -- filter policies -------------------------------------------------------------------
    def _checked_policy(self, text: str | None, scope: str | None, prefix: str) -> FilterPolicy | None:
        if scope is not None and scope not in SCOPES:
            raise self.invalid(prefix + scope_error(scope).detail)
        if not text:
            return None
        try:
            return parse_policy(text, scope)
        except FilterPolicyError as exc:
            raise self.invalid(prefix + exc.detail) from None

    def _check_limits(self, backend: Any, topic_arn: str, excluding: str | None) -> None:
        in_topic = in_account = 0
        for _, _, other in self.sns_backends.iter_backends():
            if other.account_id != backend.account_id:
                continue
            for subscription in other.subscriptions.values():
                if subscription.arn == excluding or _policy_of(subscription) is None:
                    continue
                in_account += 1
                in_topic += subscription.topic.arn == topic_arn
        if in_topic >= MAX_POLICIES_PER_TOPIC or in_account >= MAX_POLICIES_PER_ACCOUNT:
            raise self.limit_exceeded()

    def subscribe_response(self) -> Any:
        patches = self

        def subscribe(response: Any) -> Any:
            from moto.core.responses import ActionResult

            topic_arn = response._get_param("TopicArn")
            endpoint = response._get_param("Endpoint")
            protocol = response._get_param("Protocol")
            attributes = response._get_attributes() or {}
            backend = response.backend
            topic = backend.get_topic(topic_arn)
            if protocol == "lambda" and topic.fifo_topic:
                raise patches.invalid(FIFO_LAMBDA_MESSAGE)
            for name in attributes:
                if name not in SUBSCRIPTION_ATTRIBUTES:
                    raise patches.invalid(f"{SUBSCRIBE_PREFIX}Unknown attribute {name}")
            policy = patches._checked_policy(attributes.get("FilterPolicy"), attributes.get("FilterPolicyScope"),
                                             SUBSCRIBE_PREFIX)
            existing = backend._find_subscription(topic_arn, endpoint, protocol)
            if policy is not None:
                patches._check_limits(backend, topic_arn, existing.arn if existing else None)
            subscription = backend.subscribe(topic_arn, endpoint, protocol)
            for name, value in attributes.items():
                subscription.attributes[name] = value
            subscription._emulator_policy = policy
            return ActionResult({"SubscriptionArn": subscription.arn})

        return subscribe

    def set_subscription_attributes(self, backend: Any, arn: str, name: str, value: Any) -> None:
        if name not in SUBSCRIPTION_ATTRIBUTES:
            raise self.invalid(f"{SET_ATTRIBUTES_PREFIX}AttributeName")
        subscription = backend.subscriptions.get(arn)
        if subscription is None:
            raise self.not_found(f"Subscription with arn {arn} not found")
        if name == "FilterPolicy":
            policy = self._checked_policy(value, subscription.attributes.get("FilterPolicyScope"), SET_ATTRIBUTES_PREFIX)
            if policy is not None and _policy_of(subscription) is None:
                self._check_limits(backend, subscription.topic.arn, subscription.arn)
            subscription._emulator_policy = policy
        elif name == "FilterPolicyScope":
            current = subscription.attributes.get("FilterPolicy")
            subscription._emulator_policy = self._checked_policy(current, value, SET_ATTRIBUTES_PREFIX)
        subscription.attributes[name] = value

    # -- publishing -----------------------------------------------------------------------
    def topic_publish(self, topic: Any, message: str, subject: str | None = None,
                      message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                      deduplication_id: str | None = None, message_structure: str | None = None) -> str:
        from emulator.moto_child.sns_outbox import COUNTERS, OUTBOX

        structured = self._structured(message) if message_structure == "json" else None
        message_id = str(self.uuid())
        stamp = timestamp(time.time())
        published = PublishedMessage(message, message_attributes)
        # moto keeps topic attributes under snake_case names (set_topic_attributes).
        version = signature_version_of(getattr(topic, "signature_version", None))
        COUNTERS.add(topic.arn, "NumberOfMessagesPublished")
        COUNTERS.add(topic.arn, "PublishSize", len(message.encode("utf-8")))
        lambdas: list[list[Any]] = []
        for subscription in list(topic.sns_backend.subscriptions.values()):
            if subscription.topic is not topic:
                continue
            policy = _policy_of(subscription)
            if policy is not None:
                outcome = policy.decide(published)
                if outcome is not Outcome.MATCHED:
                    COUNTERS.add(topic.arn, "NumberOfNotificationsFilteredOut")
                    COUNTERS.add(topic.arn, outcome.value)
                    continue
            text = message if structured is None else structured.get(subscription.protocol, structured["default"])
            if subscription.protocol == "sqs":
                self._to_queue(topic, subscription, message_id, text, subject, message_attributes, stamp,
                               group_id, deduplication_id, version)
            elif subscription.protocol == "lambda":
                lambdas.append([subscription.arn, subscription.endpoint, _dead_letter_arn(subscription)])
            else:  # http(s), email, sms, application: moto's own delivery
                self.original_subscription_publish(subscription, text, message_id, subject=subject,
                                                   message_attributes=message_attributes, group_id=group_id,
                                                   deduplication_id=deduplication_id)
        if lambdas:
            text = message if structured is None else structured.get("lambda", structured["default"])
            OUTBOX.put({"MessageId": message_id, "TopicArn": topic.arn, "Timestamp": stamp, "Subject": subject,
                        "Message": text, "MessageAttributes": message_attributes or {}, "Subscriptions": lambdas,
                        "SignatureVersion": version})
        return message_id

    def _structured(self, message: str) -> dict[str, Any]:
        try:
            structured = json.loads(message)
        except ValueError:
            raise self.invalid(STRUCTURE_NOT_JSON) from None
        if not isinstance(structured, dict) or "default" not in structured:
            raise self.invalid(STRUCTURE_NO_DEFAULT)
        return {key: value if isinstance(value, str) else json.dumps(value) for key, value in structured.items()}

    def _to_queue(self, topic: Any, subscription: Any, message_id: str, text: str, subject: str | None,
                  attributes: dict[str, Any] | None, stamp: str, group_id: str | None, dedup_id: str | None,
                  version: str) -> None:
        from emulator.moto_child.sns_outbox import COUNTERS

        raw = subscription.attributes.get("RawMessageDelivery") in (True, "true", "True")
        if raw:
            body, sqs_attributes = text, _raw_attributes(attributes)
        else:
            body = sqs_envelope(message_id=message_id, topic_arn=topic.arn, subscription_arn=subscription.arn,
                                message=text, subject=subject, stamp=stamp, attributes=attributes,
                                signature_version=version)
            sqs_attributes = None
        try:
            self._send(subscription.endpoint, body, sqs_attributes, group_id, dedup_id)
        except Exception as exc:  # the queue is gone, or refused the message: a client-side error
            COUNTERS.add(topic.arn, "NumberOfNotificationsFailed")
            log.warning("SNS: delivery of %s to %s failed: %s", message_id, subscription.endpoint, exc)
            dead_letter = _dead_letter_arn(subscription)
            if dead_letter is None:
                return
            try:
                self._send(dead_letter, body, sqs_attributes, group_id, dedup_id)
            except Exception as dlq_exc:
                COUNTERS.add(topic.arn, "NumberOfNotificationsFailedToRedriveToDlq")
                log.warning("SNS: %s could not be redriven to %s either: %s", message_id, dead_letter, dlq_exc)
            else:
                COUNTERS.add(topic.arn, "NumberOfNotificationsRedrivenToDlq")
            return
        COUNTERS.add(topic.arn, "NumberOfNotificationsDelivered")

    def _send(self, queue_arn: str, body: str, attributes: dict[str, Any] | None, group_id: str | None,
              dedup_id: str | None) -> None:
        parts = queue_arn.split(":")
        if len(parts) != 6:
            raise ValueError(f"not a queue ARN: {queue_arn}")
        backend = self.sqs_backends[parts[4]][parts[3]]
        backend.send_message(parts[5], body, message_attributes=attributes or {}, deduplication_id=dedup_id,
                             group_id=group_id, validate_group_id=False)


def _raw_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """SNS attributes as SQS message attributes (raw delivery)."""
    converted = {}
    for name, value in (attributes or {}).items():
        kind = value["Type"]
        key = "BinaryValue" if kind.startswith("Binary") else "StringValue"
        converted[name] = {"DataType": kind, key: value["Value"]}
    return converted
