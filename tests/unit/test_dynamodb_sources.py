"""DynamoDB stream records as a function receives them, and auto scaling declared in a
template (pure parts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.backend.dynamodb_scaling_targets import ScalingTemplateError, scaling_policies, table_and_index
from emulator.policy.dynamodb_autoscaling import TargetTracking
from emulator.sources.dynamodb_poller import event_record
from emulator.sources.kinesis_batching import lane_of
from emulator.template.specs import AppSpec, ResourceSpec

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1970-01-01T00:00:00.000"


def raw(pk: str, sk: int, sequence: str = "20000000000000000000000001") -> dict[str, Any]:
    return {"eventID": "e" * 32, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000, "Keys": {"pk": {"S": pk}, "sk": {"N": str(sk)}},
                "SequenceNumber": sequence, "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"}}


def test_a_record_is_the_stream_record_plus_the_mappings_source_arn() -> None:
    record = event_record(raw("a", 1), ARN, "pk")
    entry = json.loads(record.event_json)
    assert list(entry) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                           "eventSourceARN"]
    assert entry["eventSourceARN"] == ARN and entry["dynamodb"] == raw("a", 1)["dynamodb"]
    assert record.sequence_number == "20000000000000000000000001" and record.arrival == 1_700_000_000.0


def test_records_are_laned_by_partition_key_so_one_keys_changes_stay_in_order() -> None:
    same_key = {lane_of(event_record(raw("device-7", sk), ARN, "pk").partition_key, 4) for sk in range(20)}
    assert len(same_key) == 1
    spread = {lane_of(event_record(raw(f"device-{k}", 1), ARN, "pk").partition_key, 4) for k in range(40)}
    assert len(spread) == 4
    assert event_record(raw("a", 1), ARN, None).partition_key != event_record(raw("a", 2), ARN, None).partition_key


def target(logical_id: str = "Target", **props: Any) -> ResourceSpec:
    base = {"ServiceNamespace": "dynamodb", "ResourceId": "table/orders",
            "ScalableDimension": "dynamodb:table:WriteCapacityUnits", "MinCapacity": "5", "MaxCapacity": 50}
    return ResourceSpec(logical_id, "AWS::ApplicationAutoScaling::ScalableTarget", {**base, **props})


def policy(logical_id: str = "Policy", config: dict[str, Any] | None = None, **props: Any) -> ResourceSpec:
    base = {"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "ScalingTargetId": "Target",
            "TargetTrackingScalingPolicyConfiguration": config or {
                "TargetValue": 70, "ScaleInCooldown": 60, "DisableScaleIn": "true",
                "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}}}
    return ResourceSpec(logical_id, "AWS::ApplicationAutoScaling::ScalingPolicy", {**base, **props})


def app(*resources: ResourceSpec) -> AppSpec:
    return AppSpec(resources={r.logical_id: r for r in resources})


def test_a_target_and_its_target_tracking_policy_become_one_controller() -> None:
    assert scaling_policies(app(target(), policy())) == [TargetTracking(
        "table/orders", "dynamodb:table:WriteCapacityUnits", 5, 50, 70.0, scale_in_cooldown_s=60.0,
        disable_scale_in=True)]
    by_identity = policy(ScalingTargetId=None, ResourceId="table/orders",
                         ScalableDimension="dynamodb:table:WriteCapacityUnits", ServiceNamespace="dynamodb")
    assert len(scaling_policies(app(target(), by_identity))) == 1
    assert table_and_index("table/t/index/by-owner") == ("t", "by-owner") and table_and_index("stream/x") is None


@pytest.mark.parametrize("resources, message", [
    ((target(MinCapacity=0), policy()), "MinCapacity"),
    ((target(ResourceId="table/orders/index/i"), policy()), "does not name a table"),
    ((target(), policy(config={"TargetValue": 10, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}})), "outside DynamoDB's 20-90 percent"),
    ((target(), policy(config={"TargetValue": 50, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}})), "does not fit"),
    ((policy(),), "no ScalableTarget"),
])
def test_what_cloudformation_would_refuse_is_refused_with_the_resource_named(resources: tuple[ResourceSpec, ...],
                                                                            message: str) -> None:
    with pytest.raises(ScalingTemplateError, match=message):
        scaling_policies(app(*resources))


def test_other_services_and_step_scaling_are_left_out() -> None:
    ecs = target("Ecs", ServiceNamespace="ecs", ResourceId="service/c/s", ScalableDimension="ecs:service:DesiredCount")
    step = policy("Step", PolicyType="StepScaling")
    assert scaling_policies(app(ecs, step, target())) == []
