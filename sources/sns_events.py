"""SAM `Events` of `Type: SNS`, as the resources SAM turns them into (pure).

https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-sns.html:
`Topic`, `FilterPolicy` (an object), `FilterPolicyScope`, `RedrivePolicy` and
`SqsSubscription`. Without `SqsSubscription` the function subscribes to the topic
(protocol `lambda`; with `AutoPublishAlias`, its alias, as SAM connects events). With
`SqsSubscription: true` SAM puts a queue between them: a queue `<Function><Event>Queue`, a
subscription of that queue (carrying the filter policy) and an event source mapping from
the queue to the function (batch size 10); an `SqsSubscription` object names an existing
queue (`QueueArn`) and may set `BatchSize` and `Enabled`. The subscriptions become
`AWS::SNS::Subscription` resources provisioned like the template's own, so moto checks their
filter policies with AWS's rules and errors at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from emulator.template.specs import AppSpec, FunctionSpec, ResourceSpec

SNS_EVENT = "SNS"
SQS_QUEUE = "AWS::SQS::Queue"
SNS_SUBSCRIPTION = "AWS::SNS::Subscription"
# SAM's default batch size for the queue of an SqsSubscription (page above).
SQS_SUBSCRIPTION_BATCH_SIZE = 10


@dataclass(frozen=True)
class SnsEventExpansion:
    resources: tuple[ResourceSpec, ...]
    # (where, CreateEventSourceMapping request) for SqsSubscription queues.
    mappings: tuple[tuple[str, dict[str, Any]], ...]


def _policy_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _function_target(spec: FunctionSpec, region: str, account_id: str) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{spec.name}"
    return f"{arn}:{spec.auto_publish_alias}" if spec.auto_publish_alias else arn


def expand_sns_events(app: AppSpec, *, region: str, account_id: str) -> SnsEventExpansion:
    resources: list[ResourceSpec] = []
    mappings: list[tuple[str, dict[str, Any]]] = []
    for spec in app.functions.values():
        function_id = spec.logical_id or spec.name
        for event_name, event in spec.events.items():
            if event.get("Type") != SNS_EVENT:
                continue
            props = event.get("Properties") or {}
            where = f"function {function_id!r}, event {event_name!r} (SNS)"
            attributes: dict[str, Any] = {}
            for key in ("FilterPolicyScope",):
                if props.get(key) is not None:
                    attributes[key] = props[key]
            policy = _policy_text(props.get("FilterPolicy"))
            if policy is not None:
                attributes["FilterPolicy"] = policy
            redrive = _policy_text(props.get("RedrivePolicy"))
            if redrive is not None:
                attributes["RedrivePolicy"] = redrive
            topic = props.get("Topic")
            queue_option = props.get("SqsSubscription")
            base_id = f"{function_id}{event_name}"
            if queue_option in (None, False, "false"):
                resources.append(ResourceSpec(base_id, SNS_SUBSCRIPTION, {
                    "TopicArn": topic, "Protocol": "lambda", "Endpoint": _function_target(spec, region, account_id),
                    **attributes,
                }))
                continue
            batch_size, enabled = SQS_SUBSCRIPTION_BATCH_SIZE, True
            if isinstance(queue_option, Mapping):
                queue_arn = queue_option.get("QueueArn")
                batch_size = queue_option.get("BatchSize", batch_size)
                enabled = queue_option.get("Enabled", enabled)
            else:
                queue_id = f"{base_id}Queue"
                queue_arn = f"arn:aws:sqs:{region}:{account_id}:{queue_id}"
                resources.append(ResourceSpec(queue_id, SQS_QUEUE, {}, queue_id))
            resources.append(ResourceSpec(f"{base_id}Subscription", SNS_SUBSCRIPTION, {
                "TopicArn": topic, "Protocol": "sqs", "Endpoint": queue_arn, **attributes,
            }))
            target = f"{spec.name}:{spec.auto_publish_alias}" if spec.auto_publish_alias else spec.name
            mappings.append((f"{where} SqsSubscription", {
                "EventSourceArn": queue_arn, "FunctionName": target, "BatchSize": batch_size, "Enabled": enabled,
            }))
    return SnsEventExpansion(tuple(resources), tuple(mappings))


def with_sns_event_resources(app: AppSpec, expansion: SnsEventExpansion) -> AppSpec:
    """`app` plus the resources its SNS events stand for (the template's own win on a clash)."""
    if not expansion.resources:
        return app
    extra = {r.logical_id: r for r in expansion.resources if r.logical_id not in app.resources}
    return replace(app, resources={**app.resources, **extra})
