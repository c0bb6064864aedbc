"""What a Kinesis lane does after each invocation: retry, bisect, checkpoint or give up.

A pure policy (a function of explicit state, no I/O, no clock of its own) over the lane's
pending work, written next to https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
and https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html:

* On a function error Lambda retries the whole batch and the shard (here: the lane) waits.
* `BisectBatchOnFunctionError` splits a failed batch in two; "splitting does not consume
  the retry quota", so the halves carry the parent's retry count and run at once.
* `MaximumRetryAttempts` (−1 = infinite) counts function errors only: throttles and other
  failures before the function ran do not count (the on-failure page).
* `MaximumRecordAgeInSeconds` (−1 = infinite) discards records older than that before an
  invocation, whatever the reason they waited.
* `ReportBatchItemFailures`: Lambda checkpoints before the lowest failed sequence number
  and retries from there; with bisect on, the batch is bisected at that sequence number and
  only the rest is retried (both pages).
* After exhaustion the batch's metadata goes to the OnFailure destination and the lane
  moves past it.

The lane's pending work is a tuple of `Segment`s covering a prefix of its buffered
records, head first; the head segment is the next batch to invoke. A fresh batch is one
segment; a bisect replaces the head with its two halves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from emulator.sources.kinesis_batching import POLL_INTERVAL_S
from emulator.sources.sqs_records import failed_item_ids

# The current defaults, −1 = infinite:
# https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html and the Lambda
# API model (https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
# AWS's older example outputs show 10,000 / 604,800 for a new mapping; the current pages
# win. Ranges are checked in sources/validation.py.
INFINITE = -1
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = INFINITE
DEFAULT_MAXIMUM_RECORD_AGE_S = INFINITE
# AWS documents no delay before retrying the same batch (README, "Choices where AWS is
# ambiguous"): the shard poller's next cycle (Kinesis: once per second, POLL_INTERVAL_S;
# DynamoDB Streams: its own interval, in StreamRetrySettings) is used, for function errors
# and for throttles alike. Halves of a bisected batch and the rest of a partial batch run
# at once.
RETRY_DELAY_S = POLL_INTERVAL_S


class FailureCondition(str, Enum):
    """`requestContext.condition` of the on-failure record."""

    RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"  # in AWS's example records (pages above)
    # AWS's docs are silent on the condition of a record that ran out of time; this value
    # is seen in other emulators and typed SDK definitions only (README, "Choices where AWS
    # is ambiguous").
    RECORD_AGE_EXCEEDED = "RecordAgeExceeded"

    def __str__(self) -> str:
        return self.value


class InvokeOutcome(Enum):
    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"  # the whole batch failed
    PARTIAL_FAILURE = "partial_failure"  # batchItemFailures named a record of the batch
    NOT_INVOKED = "not_invoked"  # throttled or failed before the function ran


@dataclass(frozen=True)
class InvokeReport:
    outcome: InvokeOutcome
    failed_index: int = 0  # PARTIAL_FAILURE: index of the lowest failed record in the batch


@dataclass(frozen=True)
class StreamRetrySettings:
    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_record_age_s: int = DEFAULT_MAXIMUM_RECORD_AGE_S
    bisect_on_function_error: bool = False
    report_batch_item_failures: bool = False
    retry_delay_s: float = RETRY_DELAY_S


@dataclass(frozen=True)
class Segment:
    """A pending batch: `count` records, the function-error retries it has used, and how
    many times its records were sent to the function (`approximateInvokeCount`)."""

    count: int
    retries: int = 0
    invokes: int = 0


@dataclass(frozen=True)
class BatchStep:
    """What follows an invocation (or an age check). Apply in order: finish `commit`
    records from the lane's head, then hand the next `fail` records to OnFailure and
    finish them too; `segments` is the pending work after that."""

    segments: tuple[Segment, ...]
    commit: int = 0
    fail: int = 0
    condition: FailureCondition | None = None
    failed_invokes: int = 0  # approximateInvokeCount for the on-failure record
    retry_at: float | None = None  # None: the head segment may run at once
    bisected: bool = False
    retried: bool = False  # a function-error retry was consumed


# -- the policy ------------------------------------------------------------------------------
def after_invoke(segments: Sequence[Segment], report: InvokeReport, settings: StreamRetrySettings, now: float) -> BatchStep:
    """The step after invoking `segments[0]` with `report` as the result."""
    head, rest = segments[0], tuple(segments[1:])
    if report.outcome is InvokeOutcome.NOT_INVOKED:
        return BatchStep((head, *rest), retry_at=now + settings.retry_delay_s)
    head = replace(head, invokes=head.invokes + 1)
    if report.outcome is InvokeOutcome.SUCCESS:
        return BatchStep(rest, commit=head.count)
    if report.outcome is InvokeOutcome.PARTIAL_FAILURE and 0 < report.failed_index < head.count:
        done = report.failed_index
        remainder = replace(head, count=head.count - done)
        if settings.bisect_on_function_error:
            # S35: bisected at the returned sequence number; the split costs no retry.
            return BatchStep((remainder, *rest), commit=done, bisected=True)
        return replace(_on_error(remainder, rest, settings, now), commit=done)
    return _on_error(head, rest, settings, now)


def _on_error(head: Segment, rest: tuple[Segment, ...], settings: StreamRetrySettings, now: float) -> BatchStep:
    if settings.bisect_on_function_error and head.count > 1:
        first = (head.count + 1) // 2
        halves = (replace(head, count=first), replace(head, count=head.count - first))
        return BatchStep((*halves, *rest), bisected=True)
    limit = settings.maximum_retry_attempts
    if limit == INFINITE or head.retries < limit:
        retried = replace(head, retries=head.retries + 1)
        return BatchStep((retried, *rest), retry_at=now + settings.retry_delay_s, retried=True)
    return BatchStep(
        rest, fail=head.count, condition=FailureCondition.RETRY_ATTEMPTS_EXHAUSTED, failed_invokes=head.invokes
    )


def expire_old_records(
    segments: Sequence[Segment], arrivals: Sequence[float], settings: StreamRetrySettings, now: float
) -> BatchStep | None:
    """Before invoking `segments[0]`: hand its records older than MaximumRecordAgeInSeconds
    to OnFailure (the on-failure page: retries end when records "exceed max age").
    `arrivals` are the arrival times of the head segment's records, in order, on the
    clock's timeline."""
    max_age = settings.maximum_record_age_s
    if max_age == INFINITE or not segments:
        return None
    head, rest = segments[0], tuple(segments[1:])
    expired = 0
    for arrival in arrivals[: head.count]:
        if now - arrival <= max_age:
            break
        expired += 1
    if expired == 0:
        return None
    left = (replace(head, count=head.count - expired),) if expired < head.count else ()
    return BatchStep(
        (*left, *rest), fail=expired, condition=FailureCondition.RECORD_AGE_EXCEEDED, failed_invokes=head.invokes
    )


# -- reading the function's answer ---------------------------------------------------------
def classify_response(
    function_error: str | None, payload: bytes, sequence_numbers: Sequence[str], report_batch_item_failures: bool
) -> InvokeReport:
    """The outcome of an invocation that ran (the with-kinesis page, "Success and failure
    conditions").

    Without ReportBatchItemFailures any answer that is not a function error is a success.
    With it, the answer is read as for SQS (sources/sqs_records.failed_item_ids: an empty or
    null list or response is a success; an empty, null or unknown `itemIdentifier`, or an
    entry without that key, fails the whole batch, and so does an answer that is not a JSON
    object, which AWS does not document: README, "Choices where AWS is ambiguous");
    otherwise Lambda checkpoints before the lowest sequence number named.
    """
    if function_error:
        return InvokeReport(InvokeOutcome.FUNCTION_ERROR)
    if not report_batch_item_failures:
        return InvokeReport(InvokeOutcome.SUCCESS)
    failed = failed_item_ids(payload, sequence_numbers)
    if failed is None:
        return InvokeReport(InvokeOutcome.FUNCTION_ERROR)
    if not failed:
        return InvokeReport(InvokeOutcome.SUCCESS)
    # A batch is in sequence order, so the lowest sequence number is the first one named.
    lowest = min(index for index, seq in enumerate(sequence_numbers) if seq in failed)
    return InvokeReport(InvokeOutcome.PARTIAL_FAILURE, lowest)
