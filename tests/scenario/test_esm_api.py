"""The event source mapping API through boto3: AWS's ranges, defaults, errors and states
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).

One emulator for the module; each test makes its own mappings. Range checks that boto3
itself would refuse (values below a model minimum) go through a client with parameter
validation off, so the emulator's answer is what is tested.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from core_testkit import wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

REGION, ACCOUNT = "us-east-1", "123456789012"
NOOP = "def handler(event, context):\n    return None\n"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/api-stream"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Fn": inline_function(NOOP, FunctionName="esm-target"),
        "Other": inline_function(NOOP, FunctionName="esm-other"),
        **{f"Q{i}": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"api-q{i}"}} for i in range(8)},
        "Fifo": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "api.fifo", "FifoQueue": True}},
        "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": "api-stream", "ShardCount": 1}},
    }
    with running_emulator(template) as handle:
        yield handle


@pytest.fixture
def lam(emu: EmulatorHandle) -> Any:
    return emu.client("lambda", config=BotoConfig(parameter_validation=False, retries={"max_attempts": 1}))


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def settled(lam: Any, uuid: str) -> dict[str, Any]:
    return wait_until(lambda: (m := lam.get_event_source_mapping(UUID=uuid))["State"] in ("Enabled", "Disabled") and m)


@pytest.mark.parametrize("params, message", [
    ({"BatchSize": 20000}, "1 validation error detected: Value '20000' at 'batchSize' failed to satisfy constraint: "
                           "Member must have value less than or equal to 10000"),
    ({"BatchSize": 0}, "1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint: "
                       "Member must have value greater than or equal to 1"),
    ({"MaximumBatchingWindowInSeconds": 301}, "Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy "
                                              "constraint: Member must have value less than or equal to 300"),
    ({"ScalingConfig": {"MaximumConcurrency": 1}}, "Value '1' at 'scalingConfig.maximumConcurrency' failed to "
                                                   "satisfy constraint: Member must have value greater than or equal to 2"),
    ({"ScalingConfig": {"MaximumConcurrency": 1001}}, "Member must have value less than or equal to 1000"),
    ({"FunctionResponseTypes": ["Partial"]}, "at 'functionResponseTypes' failed to satisfy constraint"),
    ({"BatchSize": 0, "MaximumBatchingWindowInSeconds": -1}, "2 validation errors detected: Value '0' at 'batchSize'"),
    ({"BatchSize": 11}, "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
    ({"DestinationConfig": {"OnFailure": {"Destination": queue_arn("api-q7")}}},
     "Unsupported DestinationConfig parameter for given event source mapping type."),
    ({"MaximumRetryAttempts": 3}, "Unsupported MaximumRetryAttempts parameter for given event source mapping type."),
    ({"StartingPosition": "LATEST"}, "Unsupported StartingPosition parameter"),
])
def test_sqs_parameters_are_checked(lam: Any, params: dict, message: str) -> None:
    code, text = error_of(lam.create_event_source_mapping, FunctionName="esm-target",
                          EventSourceArn=queue_arn("api-q0"), **params)
    assert code == "InvalidParameterValueException"
    assert message in text


@pytest.mark.parametrize("params, message", [
    ({"BatchSize": 11, "MaximumBatchingWindowInSeconds": 1}, "Maximum batch size must be between 1 and 10 inclusive"),
    ({"MaximumBatchingWindowInSeconds": 1}, "Batching window is not supported for FIFO queues"),
])
def test_fifo_queue_limits(lam: Any, params: dict, message: str) -> None:
    code, text = error_of(lam.create_event_source_mapping, FunctionName="esm-target",
                          EventSourceArn=queue_arn("api.fifo"), **params)
    assert (code, text) == ("InvalidParameterValueException", message)


@pytest.mark.parametrize("params, message", [
    ({}, "Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."),
    ({"StartingPosition": "OLDEST"}, "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]"),
    ({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 59}, "MaximumRecordAgeInSeconds must be -1"),
    ({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 604801}, "Member must have value less than or equal to 604800"),
    ({"StartingPosition": "LATEST", "MaximumRetryAttempts": 10001}, "Member must have value less than or equal to 10000"),
    ({"StartingPosition": "LATEST", "ParallelizationFactor": 11}, "at 'parallelizationFactor'"),
    ({"StartingPosition": "LATEST", "ScalingConfig": {"MaximumConcurrency": 5}}, "Unsupported ScalingConfig parameter"),
    ({"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": time.time() + 3600}, "in the future"),
    ({"StartingPosition": "LATEST", "DestinationConfig": {"OnSuccess": {"Destination": queue_arn("api-q7")}}},
     "Unsupported DestinationConfig parameter"),
])
def test_stream_parameters_are_checked(lam: Any, params: dict, message: str) -> None:
    code, text = error_of(lam.create_event_source_mapping, FunctionName="esm-target", EventSourceArn=STREAM_ARN, **params)
    assert code == "InvalidParameterValueException"
    assert message in text


def test_unknown_function_queue_and_uuid_are_not_found(lam: Any) -> None:
    code, text = error_of(lam.create_event_source_mapping, FunctionName="nope", EventSourceArn=queue_arn("api-q0"))
    assert code == "ResourceNotFoundException" and "function:nope" in text
    code, text = error_of(lam.create_event_source_mapping, FunctionName="esm-target", EventSourceArn=queue_arn("missing"))
    assert code == "ResourceNotFoundException" and "missing" in text
    code, _ = error_of(lam.get_event_source_mapping, UUID="00000000-0000-4000-8000-000000000000")
    assert code == "ResourceNotFoundException"
    code, _ = error_of(lam.delete_event_source_mapping, UUID="00000000-0000-4000-8000-000000000000")
    assert code == "ResourceNotFoundException"


def test_sqs_defaults_states_and_lifecycle(lam: Any) -> None:
    created = lam.create_event_source_mapping(FunctionName="esm-target", EventSourceArn=queue_arn("api-q1"))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    uuid = created["UUID"]
    assert created["EventSourceMappingArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"
    assert (created["BatchSize"], created["MaximumBatchingWindowInSeconds"]) == (10, 0)
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:esm-target"
    assert created["StateTransitionReason"] == "USER_INITIATED"
    assert "StartingPosition" not in created and "MaximumRetryAttempts" not in created
    assert settled(lam, uuid)["State"] == "Enabled"

    code, text = error_of(lam.create_event_source_mapping, FunctionName="esm-target", EventSourceArn=queue_arn("api-q1"))
    assert code == "ResourceConflictException" and uuid in text

    paused = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert paused["ResponseMetadata"]["HTTPStatusCode"] == 202 and paused["State"] == "Disabling"
    assert settled(lam, uuid)["State"] == "Disabled"
    updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=50, MaximumBatchingWindowInSeconds=2,
                                              ScalingConfig={"MaximumConcurrency": 3})
    assert updated["State"] == "Updating"
    final = settled(lam, uuid)
    assert (final["State"], final["BatchSize"], final["MaximumBatchingWindowInSeconds"]) == ("Disabled", 50, 2)
    assert final["ScalingConfig"] == {"MaximumConcurrency": 3}
    code, text = error_of(lam.update_event_source_mapping, UUID=uuid, MaximumBatchingWindowInSeconds=0)
    assert "Maximum batch window in seconds must be greater than 0" in text
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    assert settled(lam, uuid)["State"] == "Enabled"

    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202 and deleted["State"] == "Deleting"
    assert wait_until(lambda: uuid not in [m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]])


def test_stream_defaults(lam: Any) -> None:
    created = lam.create_event_source_mapping(FunctionName="esm-target", EventSourceArn=STREAM_ARN,
                                              StartingPosition="TRIM_HORIZON", Enabled=False)
    try:
        assert created["BatchSize"] == 100
        assert created["StartingPosition"] == "TRIM_HORIZON"
        assert (created["MaximumRetryAttempts"], created["MaximumRecordAgeInSeconds"]) == (-1, -1)
        assert (created["ParallelizationFactor"], created["BisectBatchOnFunctionError"]) == (1, False)
        assert created["DestinationConfig"] == {"OnFailure": {}}
        assert created["LastProcessingResult"] == "No records processed"
        assert created["StateTransitionReason"] == "User action"
        assert settled(lam, created["UUID"])["State"] == "Disabled"
    finally:
        lam.delete_event_source_mapping(UUID=created["UUID"])


def test_list_filters_and_pages(lam: Any) -> None:
    made = [lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=queue_arn(f"api-q{q}"), Enabled=False)["UUID"]
            for fn, q in (("esm-target", 2), ("esm-target", 3), ("esm-other", 2))]
    try:
        by_function = lam.list_event_source_mappings(FunctionName="esm-other")["EventSourceMappings"]
        assert [m["UUID"] for m in by_function] == [made[2]]
        by_queue = lam.list_event_source_mappings(EventSourceArn=queue_arn("api-q2"))["EventSourceMappings"]
        assert sorted(m["UUID"] for m in by_queue) == sorted([made[0], made[2]])
        first = lam.list_event_source_mappings(FunctionName="esm-target", MaxItems=1)
        assert len(first["EventSourceMappings"]) == 1 and "NextMarker" in first
        rest = lam.list_event_source_mappings(FunctionName="esm-target", Marker=first["NextMarker"])
        assert [m["UUID"] for m in first["EventSourceMappings"] + rest["EventSourceMappings"]] == made[:2]
        assert "NextMarker" not in rest
        # the paginator follows NextMarker as the SDK does
        pages = lam.get_paginator("list_event_source_mappings").paginate(FunctionName="esm-target",
                                                                         PaginationConfig={"PageSize": 1})
        assert [m["UUID"] for page in pages for m in page["EventSourceMappings"]] == made[:2]
    finally:
        for uuid in made:
            lam.delete_event_source_mapping(UUID=uuid)


def test_disabled_mapping_does_not_read_and_resumes(emu: EmulatorHandle, lam: Any) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="api-q4")["QueueUrl"]
    uuid = lam.create_event_source_mapping(FunctionName="esm-target", EventSourceArn=queue_arn("api-q4"),
                                           Enabled=False)["UUID"]
    try:
        settled(lam, uuid)
        sqs.send_message(QueueUrl=url, MessageBody="waiting")

        def visible() -> int:
            return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                       ["Attributes"]["ApproximateNumberOfMessages"])

        assert not wait_until(lambda: visible() == 0, timeout_s=1.0)  # nobody reads it
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)
        assert wait_until(lambda: visible() == 0, timeout_s=10.0)
        stats = wait_until(lambda: emu.metrics()["event_source_mappings"][uuid]["MessagesDeleted"] == 1, timeout_s=10.0)
        assert stats
    finally:
        lam.delete_event_source_mapping(UUID=uuid)
