"""The EventSourceMapping resource: its settings, its lifecycle and its API shape.

Settings are a frozen value (`MappingSettings`), built and checked by
sources/validation.py from an API request or a template; the mapping is the mutable
resource around them (state, timestamps, last result). Field names and defaults follow the
Lambda API model (https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# "−1" means infinite for record age and retry attempts (the Lambda API model above).
INFINITE = -1
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# Source kinds (the event-source ARN's service field) and which of them are streams.
SQS, KINESIS, DYNAMODB = "sqs", "kinesis", "dynamodb"
STREAM_KINDS = frozenset({KINESIS, DYNAMODB})
SUPPORTED_KINDS = frozenset({SQS, KINESIS, DYNAMODB})
# StateTransitionReason values as AWS returns them (the model above and the example outputs
# of https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html): SQS mappings say
# USER_INITIATED, stream mappings "User action".
SQS_TRANSITION_REASON = "USER_INITIATED"
STREAM_TRANSITION_REASON = "User action"
# A stream mapping's LastProcessingResult before its first batch (the Kinesis page above).
NO_RECORDS_PROCESSED = "No records processed"


class MappingState(str, Enum):
    """`State` of an event source mapping (the Lambda API model above)."""

    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"

    def __str__(self) -> str:
        return self.value


# The lifecycle in one place, so an illegal transition is an error, not a silent state.
# Transitional states end in a stable one.
_TRANSITIONS: dict[MappingState, frozenset[MappingState]] = {
    MappingState.CREATING: frozenset({MappingState.ENABLED, MappingState.DISABLED, MappingState.DELETING}),
    MappingState.ENABLING: frozenset({MappingState.ENABLED, MappingState.DISABLED, MappingState.DELETING}),
    MappingState.ENABLED: frozenset({MappingState.DISABLING, MappingState.UPDATING, MappingState.DELETING}),
    MappingState.DISABLING: frozenset({MappingState.DISABLED, MappingState.DELETING}),
    MappingState.DISABLED: frozenset({MappingState.ENABLING, MappingState.UPDATING, MappingState.DELETING}),
    MappingState.UPDATING: frozenset({MappingState.ENABLED, MappingState.DISABLED, MappingState.DELETING}),
    MappingState.DELETING: frozenset(),
}
STABLE_STATES = frozenset({MappingState.ENABLED, MappingState.DISABLED})


class IllegalMappingTransition(RuntimeError):
    def __init__(self, uuid_: str, current: MappingState, target: MappingState) -> None:
        super().__init__(f"event source mapping {uuid_}: cannot go from {current} to {target}")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class MappingSettings:
    """What a mapping is configured to do; defaults are the API's."""

    batch_size: int
    maximum_batching_window_s: int = 0
    enabled: bool = True
    function_response_types: tuple[str, ...] = ()
    filter_criteria: dict[str, Any] | None = None
    # SQS only (ScalingConfig.MaximumConcurrency 2–1,000).
    maximum_concurrency: int | None = None
    # Streams only.
    starting_position: str | None = None
    starting_position_timestamp: float | None = None
    parallelization_factor: int = 1
    maximum_record_age_s: int = INFINITE
    maximum_retry_attempts: int = INFINITE
    bisect_batch_on_function_error: bool = False
    tumbling_window_s: int = 0
    on_failure_destination: str | None = None
    # Accepted and echoed, not emulated (see sources/validation.py).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def report_batch_item_failures(self) -> bool:
        return REPORT_BATCH_ITEM_FAILURES in self.function_response_types


def source_kind(event_source_arn: str) -> str:
    """The service field of an event source ARN ("sqs", "kinesis", "dynamodb", …)."""
    parts = event_source_arn.split(":", 5)
    return parts[2] if len(parts) == 6 else ""


@dataclass
class EventSourceMapping:
    """One mapping. Mutated only by the SourceManager (state) and its poller (last result)."""

    uuid: str
    function_arn: str  # unqualified, or qualified with a version or alias
    event_source_arn: str
    settings: MappingSettings
    region: str
    account_id: str
    state: MappingState = MappingState.CREATING
    state_transition_reason: str = ""
    last_processing_result: str | None = None
    last_modified: float = field(default_factory=time.time)
    # Where it came from: "api", or the template's logical id (for error messages).
    origin: str = "api"

    @classmethod
    def new(cls, function_arn: str, event_source_arn: str, settings: MappingSettings, *, region: str,
            account_id: str, origin: str = "api") -> "EventSourceMapping":
        kind = source_kind(event_source_arn)
        mapping = cls(str(uuid.uuid4()), function_arn, event_source_arn, settings, region, account_id, origin=origin)
        mapping.state_transition_reason = STREAM_TRANSITION_REASON if kind in STREAM_KINDS else SQS_TRANSITION_REASON
        if kind in STREAM_KINDS:
            mapping.last_processing_result = NO_RECORDS_PROCESSED
        return mapping

    @property
    def kind(self) -> str:
        return source_kind(self.event_source_arn)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:{self.uuid}"

    @property
    def function_name(self) -> str:
        return self.function_arn.split(":")[6]

    @property
    def qualifier(self) -> str | None:
        parts = self.function_arn.split(":")
        return parts[7] if len(parts) > 7 else None

    def transition(self, target: MappingState) -> None:
        if target not in _TRANSITIONS[self.state]:
            raise IllegalMappingTransition(self.uuid, self.state, target)
        self.state = target

    def to_api(self) -> dict[str, Any]:
        """The `EventSourceMappingConfiguration` shape of the API model, fields as AWS returns
        per kind."""
        s = self.settings
        body: dict[str, Any] = {"UUID": self.uuid}
        stream = self.kind in STREAM_KINDS
        if stream:
            body["StartingPosition"] = s.starting_position
            if s.starting_position_timestamp is not None:
                body["StartingPositionTimestamp"] = s.starting_position_timestamp
        body["BatchSize"] = s.batch_size
        body["MaximumBatchingWindowInSeconds"] = s.maximum_batching_window_s
        if stream:
            body["ParallelizationFactor"] = s.parallelization_factor
        body["EventSourceArn"] = self.event_source_arn
        if s.filter_criteria is not None:
            body["FilterCriteria"] = s.filter_criteria
        body["FunctionArn"] = self.function_arn
        body["LastModified"] = self.last_modified
        if self.last_processing_result is not None:
            body["LastProcessingResult"] = self.last_processing_result
        body["State"] = str(self.state)
        body["StateTransitionReason"] = self.state_transition_reason
        if stream:
            on_failure = {"Destination": s.on_failure_destination} if s.on_failure_destination else {}
            body["DestinationConfig"] = {"OnFailure": on_failure}
            body["MaximumRecordAgeInSeconds"] = s.maximum_record_age_s
            body["BisectBatchOnFunctionError"] = s.bisect_batch_on_function_error
            body["MaximumRetryAttempts"] = s.maximum_retry_attempts
            body["TumblingWindowInSeconds"] = s.tumbling_window_s
        body["FunctionResponseTypes"] = list(s.function_response_types)
        if s.maximum_concurrency is not None:
            body["ScalingConfig"] = {"MaximumConcurrency": s.maximum_concurrency}
        body.update(s.extra)
        body["EventSourceMappingArn"] = self.arn
        return body
