"""DynamoDB auto scaling declared in a template: `AWS::ApplicationAutoScaling::ScalableTarget`
with a target-tracking `AWS::ApplicationAutoScaling::ScalingPolicy`, as target-tracking
policies (emulator/policy/dynamodb_autoscaling.py). Pure: reads an AppSpec, raises
`ScalingTemplateError` naming the resource for what CloudFormation would refuse.

Properties (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-applicationautoscaling-scalabletarget.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-applicationautoscaling-scalingpolicy.html):
a target names `ServiceNamespace: dynamodb`, `ResourceId: table/T` or `table/T/index/I`, a
`ScalableDimension` (`dynamodb:table|index:ReadCapacityUnits|WriteCapacityUnits`),
`MinCapacity` and `MaxCapacity`; a policy names its target with `ScalingTargetId` (a `Ref`
to it) or with the target's ResourceId, ScalableDimension and ServiceNamespace, and has a
`TargetTrackingScalingPolicyConfiguration` with `TargetValue` and a
`PredefinedMetricSpecification` of DynamoDBReadCapacityUtilization or
DynamoDBWriteCapacityUtilization. DynamoDB's target utilization is 20-90 percent
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/AutoScaling.html).
Targets of other services and step-scaling policies are left out with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from emulator.policy.dynamodb_autoscaling import DEFAULT_COOLDOWN_S, TargetTracking
from emulator.template.specs import AppSpec, ResourceSpec

log = logging.getLogger("emulator.backend.dynamodb")

SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
SCALING_POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"
DIMENSIONS = {
    "dynamodb:table:ReadCapacityUnits": "DynamoDBReadCapacityUtilization",
    "dynamodb:table:WriteCapacityUnits": "DynamoDBWriteCapacityUtilization",
    "dynamodb:index:ReadCapacityUnits": "DynamoDBReadCapacityUtilization",
    "dynamodb:index:WriteCapacityUnits": "DynamoDBWriteCapacityUtilization",
}
MIN_TARGET_PERCENT, MAX_TARGET_PERCENT = 20.0, 90.0


class ScalingTemplateError(ValueError):
    """A scalable target or scaling policy CloudFormation would refuse; the message names it."""


def _number(resource: ResourceSpec, name: str, value: Any, *, default: float | None = None) -> float:
    if value is None and default is not None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ScalingTemplateError(f"resource {resource.logical_id!r} ({resource.type}): {name} must be a number, "
                                   f"got {value!r}") from None


def _boolean(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def table_and_index(resource_id: str) -> tuple[str, str | None] | None:
    """("T", None) for "table/T", ("T", "I") for "table/T/index/I"; None otherwise."""
    parts = resource_id.split("/")
    if len(parts) == 2 and parts[0] == "table" and parts[1]:
        return parts[1], None
    if len(parts) == 4 and parts[0] == "table" and parts[2] == "index" and parts[1] and parts[3]:
        return parts[1], parts[3]
    return None


def _target(resource: ResourceSpec) -> tuple[str, str, int, int] | None:
    props = resource.properties
    if props.get("ServiceNamespace") != "dynamodb":
        log.warning("resource %r (%s): ServiceNamespace %r is not emulated; left out", resource.logical_id,
                    resource.type, props.get("ServiceNamespace"))
        return None
    resource_id, dimension = str(props.get("ResourceId", "")), str(props.get("ScalableDimension", ""))
    where = f"resource {resource.logical_id!r} ({resource.type})"
    if dimension not in DIMENSIONS:
        raise ScalingTemplateError(f"{where}: ScalableDimension {dimension!r} is not one of {', '.join(DIMENSIONS)}")
    names = table_and_index(resource_id)
    if names is None or (names[1] is None) != (":table:" in dimension):
        raise ScalingTemplateError(f"{where}: ResourceId {resource_id!r} does not name a "
                                   f"{'table (table/NAME)' if ':table:' in dimension else 'index (table/NAME/index/INDEX)'}")
    low, high = _number(resource, "MinCapacity", props.get("MinCapacity")), _number(resource, "MaxCapacity",
                                                                                     props.get("MaxCapacity"))
    if low < 1 or high < low:
        raise ScalingTemplateError(f"{where}: MinCapacity {low:g} and MaxCapacity {high:g} must satisfy "
                                   "1 <= MinCapacity <= MaxCapacity")
    return resource_id, dimension, int(low), int(high)


def scaling_policies(app: AppSpec) -> list[TargetTracking]:
    """Every target-tracking policy on a DynamoDB table or index the template declares."""
    targets: dict[str, tuple[str, str, int, int]] = {}
    for resource in app.resources.values():
        if resource.type == SCALABLE_TARGET:
            found = _target(resource)
            if found is not None:
                targets[resource.logical_id] = found
    by_identity = {(rid, dim): key for key, (rid, dim, _, _) in targets.items()}
    policies = []
    for resource in app.resources.values():
        if resource.type != SCALING_POLICY:
            continue
        props = resource.properties
        where = f"resource {resource.logical_id!r} ({resource.type})"
        if props.get("PolicyType") != "TargetTrackingScaling":
            log.warning("%s: PolicyType %r is not emulated (only TargetTrackingScaling); left out", where,
                        props.get("PolicyType"))
            continue
        target_key = props.get("ScalingTargetId")
        if target_key not in targets:
            target_key = by_identity.get((str(props.get("ResourceId", "")), str(props.get("ScalableDimension", ""))))
        if target_key is None:
            if props.get("ServiceNamespace") not in (None, "dynamodb"):
                continue
            raise ScalingTemplateError(f"{where}: no ScalableTarget of this template matches its ScalingTargetId or "
                                       "ResourceId and ScalableDimension")
        resource_id, dimension, low, high = targets[str(target_key)]
        config = props.get("TargetTrackingScalingPolicyConfiguration")
        if not isinstance(config, Mapping):
            raise ScalingTemplateError(f"{where}: TargetTrackingScalingPolicyConfiguration is required")
        target = _number(resource, "TargetValue", config.get("TargetValue"))
        if not MIN_TARGET_PERCENT <= target <= MAX_TARGET_PERCENT:
            raise ScalingTemplateError(f"{where}: TargetValue {target:g} is outside DynamoDB's 20-90 percent")
        metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        if metric != DIMENSIONS[dimension]:
            raise ScalingTemplateError(f"{where}: PredefinedMetricType {metric!r} does not fit {dimension}; use "
                                       f"{DIMENSIONS[dimension]}")
        policies.append(TargetTracking(
            resource_id=resource_id, dimension=dimension, minimum=low, maximum=high, target=target,
            scale_out_cooldown_s=_number(resource, "ScaleOutCooldown", config.get("ScaleOutCooldown"),
                                         default=DEFAULT_COOLDOWN_S),
            scale_in_cooldown_s=_number(resource, "ScaleInCooldown", config.get("ScaleInCooldown"),
                                        default=DEFAULT_COOLDOWN_S),
            disable_scale_in=_boolean(config.get("DisableScaleIn")),
        ))
    return policies
