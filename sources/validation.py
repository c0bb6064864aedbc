"""Checks of CreateEventSourceMapping / UpdateEventSourceMapping parameters, as Lambda does.

Two layers, in Lambda's order:

1. Model constraints (ranges, enums, list lengths of the Lambda API model:
   https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json),
   answered in AWS's wording: "1 validation error detected: Value '0' at 'batchSize'
   failed to satisfy constraint: Member must have value greater than or equal to 1".
2. Rules that depend on the kind of source (SQS standard or FIFO, Kinesis, DynamoDB), with
   the messages AWS is observed to return where known (sources cited per message).

Everything raises `InvalidParameterValue` naming the parameter. The functions are pure:
the manager passes in what it learnt about the source (its kind, whether it is FIFO).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from emulator.errors import InvalidParameterValue
from emulator.patterns.event_filter import DEFAULT_MAX_FILTERS, FilterCriteriaError, compile_filters
from emulator.sources.mapping import (
    DYNAMODB, INFINITE, REPORT_BATCH_ITEM_FAILURES, SQS, STREAM_KINDS, MappingSettings,
)

# Default BatchSize per kind (the Lambda API model above); SQS FIFO allows at most 10
# (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html).
DEFAULT_SQS_BATCH_SIZE = 10
DEFAULT_STREAM_BATCH_SIZE = 100
MAX_FIFO_BATCH_SIZE = 10
# A BatchSize over 10 needs a batching window of at least 1 s (the model's BatchSize text).
MAX_BATCH_SIZE_WITHOUT_WINDOW = 10
# MaximumRecordAgeInSeconds is −1 or 60–604,800 (0–59 pass the model's range, then fail:
# the model's documentation of the field).
MIN_RECORD_AGE_S = 60
# The model's integer ranges. Key: (name in AWS's messages, min, max).
INTEGER_RANGES: dict[str, tuple[str, int, int]] = {
    "BatchSize": ("batchSize", 1, 10_000),
    "MaximumBatchingWindowInSeconds": ("maximumBatchingWindowInSeconds", 0, 300),
    "ParallelizationFactor": ("parallelizationFactor", 1, 10),
    "MaximumRecordAgeInSeconds": ("maximumRecordAgeInSeconds", -1, 604_800),
    "MaximumRetryAttempts": ("maximumRetryAttempts", -1, 10_000),
    "TumblingWindowInSeconds": ("tumblingWindowInSeconds", 0, 900),
}
# ScalingConfig.MaximumConcurrency 2–1,000 (the model).
MAXIMUM_CONCURRENCY_RANGE = ("scalingConfig.maximumConcurrency", 2, 1000)
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
FUNCTION_RESPONSE_TYPES = (REPORT_BATCH_ITEM_FAILURES,)
MAX_FUNCTION_RESPONSE_TYPES = 1
# A filter pattern is at most 4,096 characters (the model).
MAX_FILTER_PATTERN = 4096
# On-failure destinations of stream mappings (the model's DestinationConfig).
ON_FAILURE_SERVICES = ("sqs", "sns", "s3")
# Parameters that only one family of sources accepts (the model's documentation of each
# field says which sources it applies to).
STREAM_ONLY = (
    "StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "MaximumRecordAgeInSeconds",
    "MaximumRetryAttempts", "BisectBatchOnFunctionError", "TumblingWindowInSeconds", "DestinationConfig",
)
SQS_ONLY = ("ScalingConfig",)
# Accepted, stored and echoed, but with no local effect.
PASSTHROUGH = ("KMSKeyArn", "MetricsConfig", "LoggingConfig", "ProvisionedPollerConfig")


def _unsupported(parameter: str) -> InvalidParameterValue:
    # Wording observed from Lambda for DestinationConfig on a source that has none
    # (LocalStack's AWS-verified ESM tests; not in AWS's docs); used for every kind-specific
    # parameter.
    return InvalidParameterValue(f"Unsupported {parameter} parameter for given event source mapping type.")


# -- layer 1: the API model ---------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def model_violations(request: Mapping[str, Any]) -> list[str]:
    """Every model constraint the request breaks, in AWS's words."""
    problems: list[str] = []
    for key, (wire, low, high) in INTEGER_RANGES.items():
        _check_int(problems, request.get(key), wire, low, high)
    scaling = request.get("ScalingConfig")
    if isinstance(scaling, Mapping):
        wire, low, high = MAXIMUM_CONCURRENCY_RANGE
        _check_int(problems, scaling.get("MaximumConcurrency"), wire, low, high)
    position = request.get("StartingPosition")
    if position is not None and position not in STARTING_POSITIONS:
        problems.append(f"Value '{position}' at 'startingPosition' failed to satisfy constraint: "
                        f"Member must satisfy enum value set: [{', '.join(STARTING_POSITIONS)}]")
    types = request.get("FunctionResponseTypes")
    if types is not None:
        if not isinstance(types, list) or len(types) > MAX_FUNCTION_RESPONSE_TYPES:
            problems.append(f"Value '{types}' at 'functionResponseTypes' failed to satisfy constraint: "
                            f"Member must have length less than or equal to {MAX_FUNCTION_RESPONSE_TYPES}")
        elif any(t not in FUNCTION_RESPONSE_TYPES for t in types):
            problems.append(f"Value '[{', '.join(map(str, types))}]' at 'functionResponseTypes' failed to satisfy "
                            f"constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
                            f"[{', '.join(FUNCTION_RESPONSE_TYPES)}]]")
    criteria = request.get("FilterCriteria")
    filters = criteria.get("Filters") if isinstance(criteria, Mapping) else None
    for index, item in enumerate(filters if isinstance(filters, list) else [], start=1):
        pattern = item.get("Pattern") if isinstance(item, Mapping) else None
        if isinstance(pattern, str) and len(pattern) > MAX_FILTER_PATTERN:
            problems.append(f"Value '{pattern[:40]}...' at 'filterCriteria.filters.{index}.member.pattern' failed to "
                            f"satisfy constraint: Member must have length less than or equal to {MAX_FILTER_PATTERN}")
    return problems


def _check_int(problems: list[str], value: Any, wire: str, low: int, high: int) -> None:
    if value is None:
        return
    if not _is_int(value):
        problems.append(f"Value '{value}' at '{wire}' failed to satisfy constraint: Member must be an integer")
    elif value < low:
        problems.append(f"Value '{value}' at '{wire}' failed to satisfy constraint: "
                        f"Member must have value greater than or equal to {low}")
    elif value > high:
        problems.append(f"Value '{value}' at '{wire}' failed to satisfy constraint: "
                        f"Member must have value less than or equal to {high}")


def check_model(request: Mapping[str, Any]) -> None:
    problems = model_violations(request)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise InvalidParameterValue(f"{count} validation {noun} detected: " + "; ".join(problems))


# -- layer 2: rules of each kind of source ---------------------------------------------------
def settings_from_request(request: Mapping[str, Any], *, kind: str, fifo: bool = False,
                          event_source_arn: str = "", now: float | None = None,
                          base: MappingSettings | None = None, max_filters: int = DEFAULT_MAX_FILTERS) -> MappingSettings:
    """CreateEventSourceMapping parameters (or, with `base`, an update of them) → settings.

    `now` (epoch seconds) enables the "timestamp not in the future" check of a create;
    `max_filters` is the account's quota of FilterCriteria filters per mapping.
    """
    check_model(request)
    given = {k: v for k, v in request.items() if v is not None}
    merged = {**settings_to_request(base), **given} if base else given
    stream = kind in STREAM_KINDS
    for key in (SQS_ONLY if stream else STREAM_ONLY):
        if key in given:
            raise _unsupported(key)
    default_batch = DEFAULT_STREAM_BATCH_SIZE if stream else DEFAULT_SQS_BATCH_SIZE
    batch_size = merged.get("BatchSize") or default_batch
    window = merged.get("MaximumBatchingWindowInSeconds") or 0
    enabled = merged.get("Enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidParameterValue(f"Enabled must be true or false, got {enabled!r}")
    if kind == SQS:
        _check_sqs_batching(batch_size, window, fifo)
    settings = MappingSettings(
        batch_size=batch_size,
        maximum_batching_window_s=window,
        enabled=enabled,
        function_response_types=tuple(merged.get("FunctionResponseTypes") or ()),
        filter_criteria=_filter_criteria(merged.get("FilterCriteria"), kind, max_filters),
        maximum_concurrency=_maximum_concurrency(merged.get("ScalingConfig")),
        extra={key: merged[key] for key in PASSTHROUGH if merged.get(key) is not None},
    )
    if not stream:
        return settings
    return _stream_settings(settings, merged, kind=kind, event_source_arn=event_source_arn,
                            now=now if base is None else None)


def _check_sqs_batching(batch_size: int, window: int, fifo: bool) -> None:
    if fifo and batch_size > MAX_FIFO_BATCH_SIZE:
        # Observed (pulumi-aws-serverless#20, 2018, when every SQS source allowed ≤ 10).
        raise InvalidParameterValue(f"Maximum batch size must be between 1 and {MAX_FIFO_BATCH_SIZE} inclusive")
    if fifo and window > 0:
        # Observed through CloudFormation (aws-lambda-dotnet#1758, 2024); the rule is on the SQS
        # parameters page.
        raise InvalidParameterValue("Batching window is not supported for FIFO queues")
    if batch_size > MAX_BATCH_SIZE_WITHOUT_WINDOW and window < 1:
        # Observed (amazon.aws#1995, chalice#1778, many others); the rule is in the model.
        raise InvalidParameterValue("Maximum batch window in seconds must be greater than 0 if maximum batch size "
                                    "is greater than 10")


def _stream_settings(settings: MappingSettings, merged: Mapping[str, Any], *, kind: str, event_source_arn: str,
                     now: float | None) -> MappingSettings:
    position = merged.get("StartingPosition")
    if position is None:
        # AWS's wording, observed in LocalStack's AWS-verified ESM tests (not in AWS's docs).
        raise InvalidParameterValue("1 validation error detected: Value null at 'startingPosition' failed to "
                                    "satisfy constraint: Member must not be null.")
    timestamp = _timestamp(merged.get("StartingPositionTimestamp"))
    if position == "AT_TIMESTAMP":
        if kind == DYNAMODB:
            # AWS's wording, observed in LocalStack's AWS-verified ESM tests (not in AWS's docs);
            # AT_TIMESTAMP is for Kinesis, not DynamoDB Streams (the model).
            raise InvalidParameterValue(f"Unsupported starting position for arn type: {event_source_arn}")
        if timestamp is None:
            raise InvalidParameterValue("StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP")
        if now is not None and timestamp > now:
            # The timestamp may not be in the future (the model).
            raise InvalidParameterValue("StartingPositionTimestamp cannot be in the future")
    elif timestamp is not None:
        raise InvalidParameterValue("StartingPositionTimestamp is only allowed when StartingPosition is AT_TIMESTAMP")
    record_age = merged.get("MaximumRecordAgeInSeconds", INFINITE)
    if record_age is None:
        record_age = INFINITE
    if record_age != INFINITE and record_age < MIN_RECORD_AGE_S:
        # −1 or 60–604,800 (the model); AWS's docs do not give the error's wording, so this
        # message is ours.
        raise InvalidParameterValue(f"MaximumRecordAgeInSeconds must be -1 (infinite) or between {MIN_RECORD_AGE_S} "
                                    f"and 604800, got {record_age}")
    retries = merged.get("MaximumRetryAttempts", INFINITE)
    bisect = merged.get("BisectBatchOnFunctionError", False)
    if not isinstance(bisect, bool):
        raise InvalidParameterValue(f"BisectBatchOnFunctionError must be true or false, got {bisect!r}")
    return replace(
        settings,
        starting_position=position,
        starting_position_timestamp=timestamp,
        parallelization_factor=merged.get("ParallelizationFactor") or 1,
        maximum_record_age_s=record_age,
        maximum_retry_attempts=INFINITE if retries is None else retries,
        bisect_batch_on_function_error=bisect,
        tumbling_window_s=merged.get("TumblingWindowInSeconds") or 0,
        on_failure_destination=_on_failure(merged.get("DestinationConfig")),
    )


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParameterValue(f"StartingPositionTimestamp must be a time in epoch seconds, got {value!r}")
    return float(value)


def _on_failure(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise InvalidParameterValue("DestinationConfig must be an object with OnFailure")
    if config.get("OnSuccess"):
        # The model: OnSuccess is not supported on event source mappings; the wording is
        # observed (LocalStack's AWS-verified ESM tests).
        raise _unsupported("DestinationConfig")
    on_failure = config.get("OnFailure") or {}
    destination = on_failure.get("Destination") if isinstance(on_failure, Mapping) else None
    if not destination:
        return None
    parts = str(destination).split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ON_FAILURE_SERVICES:
        raise InvalidParameterValue(f"DestinationConfig.OnFailure.Destination {destination!r} is not supported: use "
                                    "the ARN of an SQS queue, an SNS topic or an S3 bucket")
    return str(destination)


def _maximum_concurrency(scaling: Any) -> int | None:
    if scaling is None:
        return None
    if not isinstance(scaling, Mapping):
        raise InvalidParameterValue("ScalingConfig must be an object with MaximumConcurrency")
    return scaling.get("MaximumConcurrency")


def _filter_criteria(criteria: Any, kind: str, max_filters: int) -> dict[str, Any] | None:
    """The criteria as given, once Lambda's checks pass (the patterns compiled by the pollers'
    own code, emulator/patterns/event_filter.py, so what is accepted here is what they run)."""
    if criteria is None:
        return None
    try:
        compile_filters(criteria, kind, max_filters)
    except FilterCriteriaError as exc:
        raise InvalidParameterValue(str(exc)) from None
    return dict(criteria)


def check_visibility_timeout(visibility_timeout_s: int, function_timeout_s: int) -> None:
    """An SQS queue's visibility timeout must be at least the function's timeout
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: "Set the
    queue visibility timeout to at least six times the function timeout"; less than the
    timeout itself is refused). Lambda's wording, as users' error output shows it:
    "Queue visibility timeout: 60 seconds is less than Function timeout: 120 seconds"."""
    if visibility_timeout_s < function_timeout_s:
        raise InvalidParameterValue(f"Queue visibility timeout: {visibility_timeout_s} seconds is less than Function "
                                    f"timeout: {function_timeout_s} seconds")


def settings_to_request(settings: MappingSettings | None) -> dict[str, Any]:
    """The request parameters that produce `settings` (to merge an update onto)."""
    if settings is None:
        return {}
    s = settings
    request: dict[str, Any] = {
        "BatchSize": s.batch_size,
        "MaximumBatchingWindowInSeconds": s.maximum_batching_window_s,
        "Enabled": s.enabled,
        "FunctionResponseTypes": list(s.function_response_types),
        "FilterCriteria": s.filter_criteria,
        "ScalingConfig": None if s.maximum_concurrency is None else {"MaximumConcurrency": s.maximum_concurrency},
        **s.extra,
    }
    if s.starting_position is not None:
        request.update({
            "StartingPosition": s.starting_position,
            "StartingPositionTimestamp": s.starting_position_timestamp,
            "ParallelizationFactor": s.parallelization_factor,
            "MaximumRecordAgeInSeconds": s.maximum_record_age_s,
            "MaximumRetryAttempts": s.maximum_retry_attempts,
            "BisectBatchOnFunctionError": s.bisect_batch_on_function_error,
            "TumblingWindowInSeconds": s.tumbling_window_s,
            "DestinationConfig": {"OnFailure": {"Destination": s.on_failure_destination}}
            if s.on_failure_destination else None,
        })
    return {k: v for k, v in request.items() if v is not None}
