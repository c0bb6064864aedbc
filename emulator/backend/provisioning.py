"""Create a template's queues, streams, topics, tables, buckets and log groups in the backing services.

Runs at start-up and after every reset (issue 4: "the resources are created in moto at
start-up"), before any event source mapping polls. Resources are created in dependency
order: a queue whose RedrivePolicy names another queue's ARN comes after that queue, a
subscription after its topic and queue. Creation is idempotent, so an external backend
(--aws-endpoint) that already holds the resources is fine. When the backend rejects a
resource, `ProvisioningError` names the resource, its type and the backend's answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from emulator.backend.client import BackendClient, BackendError
from emulator.template.specs import AppSpec, ResourceSpec

log = logging.getLogger("emulator.backend.provisioning")

SQS_QUEUE = "AWS::SQS::Queue"
KINESIS_STREAM = "AWS::Kinesis::Stream"
SNS_TOPIC = "AWS::SNS::Topic"
SNS_SUBSCRIPTION = "AWS::SNS::Subscription"
DYNAMODB_TABLE = "AWS::DynamoDB::Table"
S3_BUCKET = "AWS::S3::Bucket"
LOG_GROUP = "AWS::Logs::LogGroup"
# Among resources that do not depend on each other: queues first, subscriptions last.
_TYPE_ORDER = {SQS_QUEUE: 0, KINESIS_STREAM: 1, DYNAMODB_TABLE: 1, S3_BUCKET: 1, LOG_GROUP: 1, SNS_TOPIC: 2,
               SNS_SUBSCRIPTION: 3}
# CloudFormation properties of AWS::SQS::Queue that are SQS queue attributes as they are.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
    "DeduplicationScope", "FifoThroughputLimit",
)
_QUEUE_JSON_ATTRIBUTES = ("RedrivePolicy", "RedriveAllowPolicy")
# Kinesis default retention (24 h); longer needs IncreaseStreamRetentionPeriod:
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_IncreaseStreamRetentionPeriod.html
KINESIS_DEFAULT_RETENTION_HOURS = 24
# "Already there" answers that make a create a no-op.
_EXISTS_CODES = {"ResourceInUseException", "BucketAlreadyOwnedByYou", "BucketAlreadyExists",
                 "ResourceAlreadyExistsException"}
# CloudWatch Logs speaks JSON 1.1 under this target prefix.
_LOGS_TARGET, _LOGS_JSON = "Logs_20140328.", "application/x-amz-json-1.1"


class ProvisioningError(RuntimeError):
    """The backend refused to create a template resource; the message names it."""

    def __init__(self, source: str, resource: ResourceSpec, problem: str) -> None:
        super().__init__(f"{source}: resource {resource.logical_id!r} ({resource.type}): {problem}")
        self.resource = resource


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class Provisioner:
    def __init__(self, backend: BackendClient, *, region: str, account_id: str, source: str = "template") -> None:
        self.backend = backend
        self.region = region
        self.account_id = account_id
        self.source = source
        self._creators: dict[str, Callable[[ResourceSpec], Awaitable[None]]] = {
            SQS_QUEUE: self._queue, KINESIS_STREAM: self._stream, SNS_TOPIC: self._topic,
            SNS_SUBSCRIPTION: self._subscription, DYNAMODB_TABLE: self._table, S3_BUCKET: self._bucket,
            LOG_GROUP: self._log_group,
        }

    # -- order ----------------------------------------------------------------------------
    def arn_of(self, resource: ResourceSpec) -> str | None:
        prefix = f"arn:aws:{{}}:{self.region}:{self.account_id}:"
        name = resource.name
        return {
            SQS_QUEUE: prefix.format("sqs") + name,
            KINESIS_STREAM: prefix.format("kinesis") + f"stream/{name}",
            SNS_TOPIC: prefix.format("sns") + name,
            DYNAMODB_TABLE: prefix.format("dynamodb") + f"table/{name}",
            S3_BUCKET: f"arn:aws:s3:::{name}",
        }.get(resource.type)

    def order(self, resources: list[ResourceSpec]) -> list[ResourceSpec]:
        """Dependencies first (a resource depends on those whose ARN its properties hold)."""
        by_arn = {arn: r.logical_id for r in resources if (arn := self.arn_of(r))}
        needs: dict[str, set[str]] = {}
        for resource in resources:
            deps = set()
            for text in _strings(resource.properties):
                for arn, logical_id in by_arn.items():
                    if logical_id != resource.logical_id and (text == arn or text.startswith(arn + "/")):
                        deps.add(logical_id)
            needs[resource.logical_id] = deps
        ordered: list[ResourceSpec] = []
        done: set[str] = set()
        pending = sorted(resources, key=lambda r: (_TYPE_ORDER.get(r.type, 9), r.logical_id))
        while pending:
            ready = next((r for r in pending if needs[r.logical_id] <= done), None)
            if ready is None:
                names = ", ".join(r.logical_id for r in pending)
                raise ProvisioningError(self.source, pending[0], f"circular references between {names}; break the cycle")
            ordered.append(ready)
            done.add(ready.logical_id)
            pending.remove(ready)
        return ordered

    # -- create ---------------------------------------------------------------------------
    async def provision(self, app: AppSpec) -> int:
        """Create every supported resource of `app`; returns how many were created."""
        resources = [r for r in app.resources.values() if r.type in self._creators]
        for resource in self.order(resources):
            try:
                await self._creators[resource.type](resource)
            except BackendError as exc:
                if exc.code in _EXISTS_CODES:
                    continue
                action = {SQS_QUEUE: "CreateQueue", KINESIS_STREAM: "CreateStream", SNS_TOPIC: "CreateTopic",
                          SNS_SUBSCRIPTION: "Subscribe", DYNAMODB_TABLE: "CreateTable", S3_BUCKET: "CreateBucket",
                          LOG_GROUP: "CreateLogGroup"}
                raise ProvisioningError(
                    self.source, resource,
                    f"the AWS backend rejected {action[resource.type]}: {exc.code or exc.status}: {exc.message}; "
                    "fix the resource's properties",
                ) from None
        if resources:
            log.info("created %d resource(s) in the AWS backend", len(resources))
        return len(resources)

    async def _queue(self, resource: ResourceSpec) -> None:
        props = resource.properties
        attributes = {key: _text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        attributes.update({key: _text(props[key]) for key in _QUEUE_JSON_ATTRIBUTES if key in props})
        for flag in ("FifoQueue", "ContentBasedDeduplication"):
            if props.get(flag) in (True, "true"):
                attributes[flag] = "true"
        request: dict[str, Any] = {"QueueName": resource.name, "Attributes": attributes}
        tags = {t["Key"]: str(t["Value"]) for t in props.get("Tags") or [] if isinstance(t, Mapping)}
        if tags:
            request["tags"] = tags
        try:
            await self.backend.sqs("CreateQueue", request)
        except BackendError as exc:
            if exc.code not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            # An external backend kept the queue with other settings: apply the template's.
            url = (await self.backend.sqs("GetQueueUrl", {"QueueName": resource.name}))["QueueUrl"]
            attributes.pop("FifoQueue", None)
            await self.backend.sqs("SetQueueAttributes", {"QueueUrl": url, "Attributes": attributes})

    async def _stream(self, resource: ResourceSpec) -> None:
        props = resource.properties
        request: dict[str, Any] = {"StreamName": resource.name}
        mode = props.get("StreamModeDetails")
        if isinstance(mode, Mapping) and mode.get("StreamMode") == "ON_DEMAND":
            request["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
        else:
            request["ShardCount"] = int(props.get("ShardCount", 1))
        await self.backend.kinesis("CreateStream", request)
        hours = int(props.get("RetentionPeriodHours", KINESIS_DEFAULT_RETENTION_HOURS))
        if hours > KINESIS_DEFAULT_RETENTION_HOURS:
            await self.backend.kinesis("IncreaseStreamRetentionPeriod", {"StreamName": resource.name, "RetentionPeriodHours": hours})

    async def _topic(self, resource: ResourceSpec) -> None:
        props = resource.properties
        params = {"Name": resource.name}
        attributes = {key: _text(props[key]) for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic",
                                                         "ContentBasedDeduplication") if key in props}
        for index, (key, value) in enumerate(attributes.items(), start=1):
            params[f"Attributes.entry.{index}.key"] = key
            params[f"Attributes.entry.{index}.value"] = value
        await self.backend.sns("CreateTopic", params)
        topic_arn = self.arn_of(resource)
        for subscription in props.get("Subscription") or []:
            if isinstance(subscription, Mapping):
                await self._subscribe(resource, topic_arn or "", subscription, {})

    async def _subscription(self, resource: ResourceSpec) -> None:
        props = resource.properties
        attributes = {key: _text(props[key]) for key in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope",
                                                         "RedrivePolicy") if key in props}
        await self._subscribe(resource, str(props.get("TopicArn", "")), props, attributes)

    async def _subscribe(self, resource: ResourceSpec, topic_arn: str, props: Mapping[str, Any],
                         attributes: dict[str, str]) -> None:
        protocol = str(props.get("Protocol", ""))
        if protocol not in ("sqs", "lambda"):
            # SNS delivers locally to queues and functions only (emulator/moto_child/fast_sns.py).
            log.warning("%s: subscription %r with protocol %r is not created (sqs and lambda are emulated)",
                        self.source, resource.logical_id, protocol)
            return
        params = {"TopicArn": topic_arn, "Protocol": protocol, "Endpoint": str(props.get("Endpoint", "")),
                  "ReturnSubscriptionArn": "true"}
        for index, (key, value) in enumerate(attributes.items(), start=1):
            params[f"Attributes.entry.{index}.key"] = key
            params[f"Attributes.entry.{index}.value"] = value
        await self.backend.sns("Subscribe", params)

    async def _table(self, resource: ResourceSpec) -> None:
        props = resource.properties
        request: dict[str, Any] = {"TableName": resource.name}
        for key in ("AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes"):
            if key in props:
                request[key] = props[key]
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = [_with_int_throughput(index) for index in props["GlobalSecondaryIndexes"]]
        throughput = props.get("ProvisionedThroughput")
        mode = props.get("BillingMode") or ("PROVISIONED" if throughput else "PAY_PER_REQUEST")
        request["BillingMode"] = mode
        if mode == "PROVISIONED" and throughput:
            request["ProvisionedThroughput"] = {k: int(v) for k, v in throughput.items()}
        on_demand = props.get("OnDemandThroughput")
        if mode == "PAY_PER_REQUEST" and isinstance(on_demand, Mapping):
            request["OnDemandThroughput"] = {k: int(v) for k, v in on_demand.items()}
        stream = props.get("StreamSpecification")
        if isinstance(stream, Mapping) and stream.get("StreamViewType"):
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        await self.backend.dynamodb("CreateTable", request)
        ttl = props.get("TimeToLiveSpecification")
        if isinstance(ttl, Mapping) and ttl.get("Enabled") in (True, "true"):
            await self.backend.dynamodb("UpdateTimeToLive", {
                "TableName": resource.name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ttl.get("AttributeName")},
            })

    async def _bucket(self, resource: ResourceSpec) -> None:
        await self.backend.s3_create_bucket(resource.name)

    async def _log_group(self, resource: ResourceSpec) -> None:
        """The group exists from start-up with its retention, as CloudFormation leaves it, so
        `aws logs tail --follow` and a function's LoggingConfig.LogGroup find it before the
        first line is written
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html)."""
        try:
            await self.backend.json_call("logs", _LOGS_TARGET + "CreateLogGroup", {"logGroupName": resource.name},
                                         _LOGS_JSON)
        except BackendError as exc:
            if exc.code not in _EXISTS_CODES:
                raise
        retention = resource.properties.get("RetentionInDays")
        if retention is not None:
            await self.backend.json_call("logs", _LOGS_TARGET + "PutRetentionPolicy", {
                "logGroupName": resource.name, "retentionInDays": int(retention)}, _LOGS_JSON)


def _with_int_throughput(index: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(index)
    if isinstance(result.get("ProvisionedThroughput"), Mapping):
        result["ProvisionedThroughput"] = {k: int(v) for k, v in result["ProvisionedThroughput"].items()}
    return result
