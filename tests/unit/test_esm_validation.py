"""Event source mapping parameters and lifecycle, without HTTP
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html)."""

from __future__ import annotations

import pytest

from emulator.errors import InvalidParameterValue
from emulator.sources.mapping import EventSourceMapping, IllegalMappingTransition, MappingState
from emulator.sources.validation import settings_from_request, settings_to_request

STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
TABLE_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1970-01-01T00:00:00.000"


def test_sqs_defaults():
    settings = settings_from_request({}, kind="sqs")
    assert (settings.batch_size, settings.maximum_batching_window_s, settings.enabled) == (10, 0, True)
    assert settings.maximum_concurrency is None and settings.starting_position is None


def test_stream_defaults():
    settings = settings_from_request({"StartingPosition": "LATEST"}, kind="kinesis")
    assert (settings.batch_size, settings.parallelization_factor) == (100, 1)
    assert (settings.maximum_retry_attempts, settings.maximum_record_age_s) == (-1, -1)
    assert settings.bisect_batch_on_function_error is False and settings.on_failure_destination is None


def test_stream_batch_size_over_ten_needs_no_window():
    # Lambda's defaults for streams are BatchSize 100 and no window; only SQS needs one.
    assert settings_from_request({"StartingPosition": "LATEST", "BatchSize": 500}, kind="kinesis").batch_size == 500


@pytest.mark.parametrize("age", [-1, 60, 604_800])
def test_record_age_bounds_accepted(age):
    settings = settings_from_request({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": age}, kind="kinesis")
    assert settings.maximum_record_age_s == age


@pytest.mark.parametrize("age", [0, 59])
def test_record_age_below_sixty_rejected(age):
    with pytest.raises(InvalidParameterValue, match="MaximumRecordAgeInSeconds"):
        settings_from_request({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": age}, kind="kinesis")


def test_at_timestamp_needs_a_timestamp_and_not_on_dynamodb():
    with pytest.raises(InvalidParameterValue, match="StartingPositionTimestamp is required"):
        settings_from_request({"StartingPosition": "AT_TIMESTAMP"}, kind="kinesis")
    with pytest.raises(InvalidParameterValue, match="Unsupported starting position for arn type"):
        settings_from_request({"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1.0},
                              kind="dynamodb", event_source_arn=TABLE_STREAM)
    settings = settings_from_request({"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 100.0},
                                     kind="kinesis", now=200.0)
    assert settings.starting_position_timestamp == 100.0


def test_on_failure_destination_must_be_a_queue_topic_or_bucket():
    ok = {"StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {
        "Destination": "arn:aws:sns:us-east-1:123456789012:t"}}}
    assert settings_from_request(ok, kind="kinesis").on_failure_destination.endswith(":t")
    bad = {"StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {
        "Destination": "arn:aws:lambda:us-east-1:123456789012:function:f"}}}
    with pytest.raises(InvalidParameterValue, match="OnFailure.Destination"):
        settings_from_request(bad, kind="kinesis")


def test_update_merges_onto_the_current_settings_and_rechecks():
    base = settings_from_request({"BatchSize": 50, "MaximumBatchingWindowInSeconds": 5}, kind="sqs")
    updated = settings_from_request({"MaximumBatchingWindowInSeconds": 10}, kind="sqs", base=base)
    assert (updated.batch_size, updated.maximum_batching_window_s) == (50, 10)
    with pytest.raises(InvalidParameterValue, match="Maximum batch window"):
        settings_from_request({"MaximumBatchingWindowInSeconds": 0}, kind="sqs", base=base)
    removed = settings_from_request({"ScalingConfig": {}}, kind="sqs",
                                    base=settings_from_request({"ScalingConfig": {"MaximumConcurrency": 5}}, kind="sqs"))
    assert removed.maximum_concurrency is None


def test_settings_round_trip_through_request_form():
    settings = settings_from_request({"StartingPosition": "TRIM_HORIZON", "BatchSize": 7, "ParallelizationFactor": 3,
                                      "BisectBatchOnFunctionError": True, "FunctionResponseTypes":
                                      ["ReportBatchItemFailures"]}, kind="kinesis")
    assert settings_from_request(settings_to_request(settings), kind="kinesis") == settings


def test_lifecycle_transitions():
    settings = settings_from_request({}, kind="sqs")
    mapping = EventSourceMapping.new("arn:aws:lambda:us-east-1:123456789012:function:f",
                                     "arn:aws:sqs:us-east-1:123456789012:q", settings, region="us-east-1",
                                     account_id="123456789012")
    assert mapping.state is MappingState.CREATING
    for state in (MappingState.ENABLED, MappingState.DISABLING, MappingState.DISABLED, MappingState.ENABLING,
                  MappingState.ENABLED, MappingState.UPDATING, MappingState.ENABLED, MappingState.DELETING):
        mapping.transition(state)
    with pytest.raises(IllegalMappingTransition):
        mapping.transition(MappingState.ENABLED)
    assert len(mapping.arn) >= 85  # the API model: EventSourceMappingArn is 85–120 characters


def test_provisioning_creates_what_a_resource_references_first():
    from emulator.backend.provisioning import Provisioner, ProvisioningError
    from emulator.template.specs import ResourceSpec

    def queue(logical_id: str, name: str, dlq: str | None = None) -> ResourceSpec:
        props = {"RedrivePolicy": {"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:123456789012:{dlq}",
                                   "maxReceiveCount": 3}} if dlq else {}
        return ResourceSpec(logical_id, "AWS::SQS::Queue", props, name)

    subscription = ResourceSpec("Sub", "AWS::SNS::Subscription", {
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Endpoint": "arn:aws:sqs:us-east-1:123456789012:a"}, "")
    topic = ResourceSpec("Topic", "AWS::SNS::Topic", {}, "t")
    provisioner = Provisioner(None, region="us-east-1", account_id="123456789012")  # type: ignore[arg-type]
    ordered = provisioner.order([subscription, queue("A", "a", dlq="b"), topic, queue("B", "b", dlq="c"), queue("C", "c")])
    assert [r.logical_id for r in ordered] == ["C", "B", "A", "Topic", "Sub"]
    with pytest.raises(ProvisioningError, match="circular"):
        provisioner.order([queue("A", "a", dlq="b"), queue("B", "b", dlq="a")])


# -- FilterCriteria (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html) --
def _filters(*patterns: object) -> dict:
    import json

    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


@pytest.mark.parametrize("criteria", [_filters("{not json"), _filters({"body": [{"prefix": 1}]}), _filters({"a": []}),
                                      {"Filters": [{}]}, {"Filters": "x"}])
def test_filter_criteria_that_lambda_refuses_get_its_message(criteria):
    with pytest.raises(InvalidParameterValue) as caught:
        settings_from_request({"FilterCriteria": criteria}, kind="sqs")
    assert caught.value.message == "Invalid filter pattern definition."


def test_a_stream_mapping_refuses_a_plain_data_pattern_that_sqs_accepts():
    plain = _filters({"data": ["text"]})
    with pytest.raises(InvalidParameterValue, match="Invalid filter pattern definition."):
        settings_from_request({"StartingPosition": "LATEST", "FilterCriteria": plain}, kind="kinesis")
    assert settings_from_request({"FilterCriteria": _filters({"body": ["text"]})}, kind="sqs").filter_criteria


def test_filters_per_mapping_are_held_to_the_quota():
    six = _filters(*({"body": {"n": [i]}} for i in range(6)))
    with pytest.raises(InvalidParameterValue, match="quota is 5"):
        settings_from_request({"FilterCriteria": six}, kind="sqs")
    assert len(settings_from_request({"FilterCriteria": six}, kind="sqs", max_filters=10).filter_criteria["Filters"]) == 6


def test_a_pattern_longer_than_the_model_allows_is_a_validation_error():
    long = _filters({"body": {"k": ["x" * 5000]}})
    with pytest.raises(InvalidParameterValue, match="at 'filterCriteria.filters.1.member.pattern' failed to satisfy "
                                                    "constraint: Member must have length less than or equal to 4096"):
        settings_from_request({"FilterCriteria": long}, kind="sqs")


def test_an_update_with_bad_criteria_is_refused_and_empty_criteria_clear_the_filters():
    base = settings_from_request({"FilterCriteria": _filters({"body": {"k": ["v"]}})}, kind="sqs")
    with pytest.raises(InvalidParameterValue):
        settings_from_request({"FilterCriteria": _filters("[]")}, kind="sqs", base=base)
    cleared = settings_from_request({"FilterCriteria": {}}, kind="sqs", base=base)
    from emulator.patterns.event_filter import compile_filters

    assert compile_filters(cleared.filter_criteria, "sqs") is None
