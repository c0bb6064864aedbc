"""Event source mappings a template declares, as CreateEventSourceMapping requests.

Two forms (issue 4): SAM `Events` of `Type: SQS`, `Kinesis` or `DynamoDB` on a function,
and `AWS::Lambda::EventSourceMapping` resources, whose properties already carry the API's
names. SAM connects the events of a function with `AutoPublishAlias` to that alias
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html#sam-function-autopublishalias).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.template.specs import AppSpec, FunctionSpec

log = logging.getLogger("emulator.sources")

EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
# SAM event properties that keep their name in the API (SAM's SQS/Kinesis/DynamoDB events).
_SAM_COMMON = ("BatchSize", "Enabled", "FilterCriteria", "FunctionResponseTypes", "MaximumBatchingWindowInSeconds",
               "MetricsConfig", "ProvisionedPollerConfig")
_SAM_SQS = _SAM_COMMON + ("ScalingConfig",)
_SAM_STREAM = _SAM_COMMON + (
    "StartingPosition", "StartingPositionTimestamp", "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds",
    "MaximumRetryAttempts", "ParallelizationFactor", "TumblingWindowInSeconds",
)
# SAM event type -> (property holding the source ARN, properties passed on).
_SAM_EVENTS = {"SQS": ("Queue", _SAM_SQS), "Kinesis": ("Stream", _SAM_STREAM), "DynamoDB": ("Stream", _SAM_STREAM)}
# CloudFormation properties of AWS::Lambda::EventSourceMapping that the API also takes.
_CFN_PROPERTIES = (
    "EventSourceArn", "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor",
    "StartingPosition", "StartingPositionTimestamp", "DestinationConfig", "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds", "FunctionResponseTypes",
    "FilterCriteria", "ScalingConfig", "MetricsConfig", "ProvisionedPollerConfig",
)


@dataclass(frozen=True)
class TemplateMapping:
    where: str  # for messages: "resource 'X' (AWS::Lambda::EventSourceMapping)" / "function 'F', event 'E' (SQS)"
    request: dict[str, Any]


def _number(value: Any) -> Any:
    """CloudFormation passes numbers as strings as often as not."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _normalise(request: dict[str, Any]) -> dict[str, Any]:
    for key in ("BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor", "MaximumRecordAgeInSeconds",
                "MaximumRetryAttempts", "TumblingWindowInSeconds", "StartingPositionTimestamp"):
        if key in request:
            request[key] = _number(request[key])
    for key in ("Enabled", "BisectBatchOnFunctionError"):
        if key in request:
            request[key] = _boolean(request[key])
    scaling = request.get("ScalingConfig")
    if isinstance(scaling, Mapping) and "MaximumConcurrency" in scaling:
        request["ScalingConfig"] = {**scaling, "MaximumConcurrency": _number(scaling["MaximumConcurrency"])}
    return request


def _sam_destination(config: Any) -> Any:
    # SAM's OnFailure has an extra `Type` (SQS/SNS/S3) that the API does not take.
    if isinstance(config, Mapping) and isinstance(config.get("OnFailure"), Mapping):
        on_failure = {k: v for k, v in config["OnFailure"].items() if k != "Type"}
        return {**config, "OnFailure": on_failure}
    return config


def _function_events(spec: FunctionSpec) -> list[TemplateMapping]:
    found = []
    target = f"{spec.name}:{spec.auto_publish_alias}" if spec.auto_publish_alias else spec.name
    for name, event in spec.events.items():
        kind = event.get("Type")
        if kind not in _SAM_EVENTS:
            continue  # Api, Schedule, SNS, …: not an event source mapping
        source_property, passed = _SAM_EVENTS[kind]
        props = event.get("Properties") or {}
        request = {key: props[key] for key in passed if key in props}
        request["EventSourceArn"] = props.get(source_property)
        request["FunctionName"] = target
        if "DestinationConfig" in props:
            request["DestinationConfig"] = _sam_destination(props["DestinationConfig"])
        if "KmsKeyArn" in props:
            request["KMSKeyArn"] = props["KmsKeyArn"]
        found.append(TemplateMapping(f"function {spec.logical_id or spec.name!r}, event {name!r} ({kind})",
                                     _normalise(request)))
    return found


def template_mappings(app: AppSpec) -> list[TemplateMapping]:
    """Every mapping the template declares, functions' events first."""
    found: list[TemplateMapping] = []
    for spec in app.functions.values():
        found.extend(_function_events(spec))
    for resource in app.resources.values():
        if resource.type != EVENT_SOURCE_MAPPING:
            continue
        props = resource.properties
        unknown = sorted(set(props) - set(_CFN_PROPERTIES) - {"KmsKeyArn", "Tags"})
        if unknown:
            log.warning("%s: resource %r: %s not emulated; ignored", app.source, resource.logical_id, ", ".join(unknown))
        request = {key: props[key] for key in _CFN_PROPERTIES if key in props}
        if "KmsKeyArn" in props:
            request["KMSKeyArn"] = props["KmsKeyArn"]
        found.append(TemplateMapping(f"resource {resource.logical_id!r} ({EVENT_SOURCE_MAPPING})", _normalise(request)))
    return found
