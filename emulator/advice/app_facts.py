"""A template's AppSpec as the advisor's facts (emulator/advice/facts.py): what `emulator
check` reads and what the emulator serves at `GET /_emulator/app`."""

from __future__ import annotations

import json
from typing import Any, Mapping

from emulator.advice.facts import (
    DEFAULT_ACCOUNT_CONCURRENCY, DEFAULT_MAXIMUM_EVENT_AGE_S, DEFAULT_UNRESERVED_MINIMUM, DEFAULT_VISIBILITY_TIMEOUT_S,
    ApiFacts, AppFacts, FunctionFacts, MappingFacts, QueueFacts, StreamFacts, TableFacts,
)
from emulator.sources.template_sources import template_mappings
from emulator.template.specs import AppSpec

SQS_QUEUE, KINESIS_STREAM, DYNAMODB_TABLE = "AWS::SQS::Queue", "AWS::Kinesis::Stream", "AWS::DynamoDB::Table"


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _name_of_arn(arn: Any) -> str:
    """The resource name at the end of an ARN ("arn:aws:sqs:r:a:name", "...:stream/name")."""
    text = str(arn or "")
    return text.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def describe(app: AppSpec, *, region: str = "us-east-1", account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
             unreserved_minimum: int = DEFAULT_UNRESERVED_MINIMUM) -> AppFacts:
    functions = {}
    for spec in app.functions.values():
        age = spec.event_invoke.maximum_event_age_s if spec.event_invoke else None
        functions[spec.name] = FunctionFacts(
            spec.name, spec.memory_mb, spec.timeout_s, spec.reserved_concurrency, spec.architecture,
            age if age is not None else DEFAULT_MAXIMUM_EVENT_AGE_S)
    queues, streams, tables = {}, {}, {}
    for resource in app.resources.values():
        props = resource.properties
        if resource.type == SQS_QUEUE and resource.name:
            redrive = props.get("RedrivePolicy") or {}
            if isinstance(redrive, str):
                try:
                    redrive = json.loads(redrive)
                except ValueError:
                    redrive = {}
            queues[resource.name] = QueueFacts(
                resource.name, _int(props.get("VisibilityTimeout"), DEFAULT_VISIBILITY_TIMEOUT_S) or 0,
                str(props.get("FifoQueue", "")).lower() == "true" or resource.name.endswith(".fifo"),
                _name_of_arn(redrive.get("deadLetterTargetArn")) if redrive.get("deadLetterTargetArn") else None,
                _int(redrive.get("maxReceiveCount")))
        elif resource.type == KINESIS_STREAM and resource.name:
            mode = (props.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
            streams[resource.name] = StreamFacts(resource.name, _int(props.get("ShardCount"), 1) or 1, mode == "ON_DEMAND")
        elif resource.type == DYNAMODB_TABLE and resource.name:
            throughput: Mapping[str, Any] = props.get("ProvisionedThroughput") or {}
            provisioned = props.get("BillingMode", "PROVISIONED" if throughput else "PAY_PER_REQUEST") == "PROVISIONED"
            tables[resource.name] = TableFacts(resource.name, not provisioned,
                                               _int(throughput.get("ReadCapacityUnits"), 0) or 0,
                                               _int(throughput.get("WriteCapacityUnits"), 0) or 0)
    mappings = []
    for found in template_mappings(app):
        request = found.request
        arn = str(request.get("EventSourceArn") or "")
        parts = arn.split(":", 5)
        function = str(request.get("FunctionName") or "").split(":")[0]
        scaling = request.get("ScalingConfig") or {}
        mappings.append(MappingFacts(
            function, parts[2] if len(parts) == 6 else "", _name_of_arn(arn), _int(request.get("BatchSize")),
            _int(scaling.get("MaximumConcurrency")) if isinstance(scaling, Mapping) else None,
            _int(request.get("MaximumBatchingWindowInSeconds"), 0) or 0))
    apis = tuple(ApiFacts(api.name, api.kind) for api in app.gateway.apis.values())
    return AppFacts(region, account_concurrency, unreserved_minimum, functions, queues, streams, tuple(mappings),
                    apis, tables)
