"""The pure rules behind the function APIs: State / LastUpdateStatus, configuration
checks, tags and policy statements (emulator/functions/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound, ValidationError
from emulator.functions import resource_policy, tags
from emulator.functions.function_settings import spec_from_create, spec_from_update
from emulator.functions.function_state import FunctionState, IllegalLifecycleMove, Lifecycle, UpdateStatus
from emulator.functions.resource_policy import ResourcePolicy

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
CREATE = {"FunctionName": "fn", "Role": "arn:aws:iam::123456789012:role/r", "Handler": "app.handler",
          "Runtime": "python3.11"}


def test_a_pending_function_cannot_be_invoked_or_updated() -> None:
    lifecycle = Lifecycle(FunctionState.PENDING)
    with pytest.raises(ResourceConflict, match="currently in the following state: Pending"):
        lifecycle.check_invocable()
    with pytest.raises(ResourceConflict, match=f"An update is in progress for resource: {ARN}"):
        lifecycle.check_updatable(ARN)
    lifecycle.move_state(FunctionState.ACTIVE)
    lifecycle.check_invocable()
    with pytest.raises(IllegalLifecycleMove):
        lifecycle.move_state(FunctionState.PENDING)


def test_an_update_in_progress_refuses_a_second_one_and_shows_its_reason_when_failed() -> None:
    lifecycle = Lifecycle()
    lifecycle.move_update(UpdateStatus.IN_PROGRESS)
    with pytest.raises(ResourceConflict):
        lifecycle.check_updatable(ARN)
    lifecycle.check_invocable()  # invocations go on with the previous configuration
    lifecycle.move_update(UpdateStatus.FAILED, "bad package", "InvalidZipFileException")
    assert lifecycle.shape() == {"State": "Active", "LastUpdateStatus": "Failed", "LastUpdateStatusReason": "bad package",
                                 "LastUpdateStatusReasonCode": "InvalidZipFileException"}
    with pytest.raises(IllegalLifecycleMove):
        lifecycle.move_update(UpdateStatus.SUCCESSFUL)


def test_create_defaults_and_json_logging_levels() -> None:
    spec = spec_from_create({**CREATE, "LoggingConfig": {"LogFormat": "JSON"}}, Path("/code"))
    assert (spec.memory_mb, spec.timeout_s, spec.logging.application_log_level, spec.logging.system_log_level) == (
        128, 3, "INFO", "INFO")
    assert spec.log_group == "/aws/lambda/fn"


def test_several_model_violations_are_reported_together() -> None:
    with pytest.raises(ValidationError) as excinfo:
        spec_from_create({**CREATE, "Timeout": 0, "Description": "d" * 257}, Path("/code"))
    assert str(excinfo.value).startswith("2 validation errors detected: ")


def test_update_keeps_what_it_does_not_name_and_clears_the_dead_letter_queue_when_told() -> None:
    spec = spec_from_create({**CREATE, "DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
                             "Environment": {"Variables": {"KEEP": "1"}}}, Path("/code"))
    updated = spec_from_update(spec, {"MemorySize": 1024})
    assert (updated.memory_mb, updated.environment, updated.dead_letter_arn) == (1024, {"KEEP": "1"}, spec.dead_letter_arn)
    assert spec_from_update(spec, {"DeadLetterConfig": {}}).dead_letter_arn is None
    with pytest.raises(InvalidParameterValue):
        spec_from_update(spec, {"DeadLetterConfig": {"TargetArn": "arn:aws:s3:::bucket"}})


def test_tags_merge_up_to_fifty_and_remove() -> None:
    current = tags.merged({}, tags.check_tags({f"k{i}": "v" for i in range(49)}))
    assert len(tags.merged(current, {"k49": "v"})) == 50
    with pytest.raises(InvalidParameterValue):
        tags.merged(current, {"x": "1", "y": "2"})
    assert tags.without({"a": "1", "b": "2"}, ["a", "c"]) == {"b": "2"}
    with pytest.raises(ValidationError):
        tags.check_tags({"k" * 129: "v"})
    with pytest.raises(ValidationError):
        tags.check_tags({"emoji\U0001F600": "v"})


def test_policy_statements_and_revisions() -> None:
    policy = ResourcePolicy(ARN)
    added = resource_policy.add(policy, {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*",
                                         "PrincipalOrgID": "o-abcdefghij", "EventSourceToken": "tok"})
    assert added["Principal"] == "*"
    assert added["Condition"] == {"StringEquals": {"lambda:EventSourceToken": "tok", "aws:PrincipalOrgID": "o-abcdefghij"}}
    revision = policy.revision_id
    with pytest.raises(PreconditionFailed):
        resource_policy.remove(policy, "s", "stale")
    resource_policy.remove(policy, "s", revision)
    assert policy.statements == [] and policy.revision_id != revision
    with pytest.raises(ResourceNotFound):
        resource_policy.remove(policy, "s", None)


def test_a_policy_over_twenty_kilobytes_is_refused() -> None:
    policy = ResourcePolicy(ARN)
    source = "arn:aws:s3:::" + "b" * 900
    with pytest.raises(InvalidParameterValue, match="bigger than the limit"):
        for i in range(40):
            resource_policy.add(policy, {"StatementId": f"s{i}", "Action": "lambda:InvokeFunction",
                                         "Principal": "s3.amazonaws.com", "SourceArn": source})
    assert 0 < len(policy.statements) < 40


# -- log shipping: pure parts -----------------------------------------------------------------
def test_the_feed_is_bounded_and_counts_what_it_drops() -> None:
    from emulator.execution.log_feed import CloudWatchFeed

    feed = CloudWatchFeed(max_chunks=2, max_chars=100)
    for text in ("a\n", "b\n", "c\n"):
        feed.put("/g", "s", text)
    assert (len(feed), feed.dropped_chunks) == (2, 1)
    assert [c.text for c in feed.take()] == ["a\n", "b\n"] and len(feed) == 0
    feed.put("/g", "s", "x" * 101)
    assert feed.dropped_chars == 2 + 101


def test_put_log_events_batches_keep_the_api_limits() -> None:
    import json

    from emulator.service.log_shipper import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, _batches, _cut, _escape

    def event(message: str) -> str:
        return '{"timestamp":1,"message":' + _escape(message) + "}"

    many = [event("m") for _ in range(MAX_BATCH_EVENTS + 1)]
    assert [len(b) for b in _batches(many)] == [MAX_BATCH_EVENTS, 1]
    big = [event("x" * 200_000), event("é" * 100_000)] * 3
    for batch in _batches(big):
        real = sum(len(json.loads(e)["message"].encode()) + 26 for e in batch)
        assert real <= MAX_BATCH_BYTES
    assert len(_cut("é" * 200_000).encode()) <= 256 * 1024 - 26


def test_json_application_level_filters_lines_as_lambda_does() -> None:
    from emulator.execution.platform_log import application_filter
    from emulator.template.specs import LoggingSpec

    assert application_filter(LoggingSpec("Text")) is None
    assert application_filter(LoggingSpec("JSON", "INFO", "INFO")) is None
    keep = application_filter(LoggingSpec("JSON", "ERROR", "INFO"))
    text = 'plain\n{"level": "WARN", "m": 1}\n{"level": "error"}\n{"log_level": "ERROR"}\n{broken\n'
    assert keep(text) == '{"level": "error"}\n{"log_level": "ERROR"}\n'
