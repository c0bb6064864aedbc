"""emulator.sources.kinesis_retry: retry, bisect and checkpoint steps of a Kinesis lane."""

from __future__ import annotations

import json

import pytest

from emulator.sources.kinesis_retry import (
    RETRY_DELAY_S,
    BatchStep,
    FailureCondition,
    InvokeOutcome,
    InvokeReport,
    Segment,
    StreamRetrySettings,
    after_invoke,
    classify_response,
    expire_old_records,
)

OK = InvokeReport(InvokeOutcome.SUCCESS)
ERROR = InvokeReport(InvokeOutcome.FUNCTION_ERROR)
THROTTLED = InvokeReport(InvokeOutcome.NOT_INVOKED)


def partial(index: int) -> InvokeReport:
    return InvokeReport(InvokeOutcome.PARTIAL_FAILURE, index)


class Lane:
    """Drives the policy over a lane of numbered records, as the poller does."""

    def __init__(self, records: int, batch_size: int, settings: StreamRetrySettings, poison: set[int] = frozenset()) -> None:
        self.records = list(range(records))
        self.batch_size = batch_size
        self.settings = settings
        self.poison = poison
        self.segments: tuple[Segment, ...] = ()
        self.invocations: list[list[int]] = []
        self.processed: list[int] = []
        self.failed: list[tuple[list[int], FailureCondition, int]] = []
        self.now = 0.0

    def run(self, respond=None, max_steps: int = 10_000) -> None:
        for _ in range(max_steps):
            if not self.segments:
                if not self.records:
                    return
                self.segments = (Segment(min(self.batch_size, len(self.records))),)
            batch = self.records[: self.segments[0].count]
            self.invocations.append(batch)
            report = respond(batch) if respond else (ERROR if self.poison & set(batch) else OK)
            self.apply(after_invoke(self.segments, report, self.settings, self.now))
        raise AssertionError("the lane never finished")

    def apply(self, step: BatchStep) -> None:
        self.processed += self.records[: step.commit]
        del self.records[: step.commit]
        if step.fail:
            self.failed.append((self.records[: step.fail], step.condition, step.failed_invokes))
            del self.records[: step.fail]
        self.segments = step.segments
        if step.retry_at is not None:
            self.now = step.retry_at


def test_success_checkpoints_the_whole_batch() -> None:
    step = after_invoke((Segment(10),), OK, StreamRetrySettings(), now=0.0)
    assert step == BatchStep((), commit=10)


def test_by_default_a_function_error_retries_the_same_batch_forever() -> None:
    segments = (Segment(10),)
    for attempt in range(1, 200):
        step = after_invoke(segments, ERROR, StreamRetrySettings(), now=float(attempt))
        assert step.commit == 0 and step.fail == 0 and step.retried
        assert step.retry_at == attempt + RETRY_DELAY_S
        segments = step.segments
    assert segments == (Segment(10, retries=199, invokes=199),)


def test_throttles_do_not_count_as_retries() -> None:
    settings = StreamRetrySettings(maximum_retry_attempts=0)
    step = after_invoke((Segment(5),), THROTTLED, settings, now=3.0)
    assert step == BatchStep((Segment(5),), retry_at=3.0 + RETRY_DELAY_S)
    step = after_invoke(step.segments, ERROR, settings, now=4.0)
    assert step.fail == 5 and step.condition is FailureCondition.RETRY_ATTEMPTS_EXHAUSTED
    assert step.failed_invokes == 1


def test_retry_limit_then_on_failure_and_advance() -> None:
    lane = Lane(6, batch_size=3, settings=StreamRetrySettings(maximum_retry_attempts=2), poison={1})
    lane.run()
    assert lane.invocations == [[0, 1, 2]] * 3 + [[3, 4, 5]]
    assert lane.failed == [([0, 1, 2], FailureCondition.RETRY_ATTEMPTS_EXHAUSTED, 3)]
    assert lane.processed == [3, 4, 5]


def test_bisect_isolates_the_poison_record_without_spending_retries() -> None:
    settings = StreamRetrySettings(maximum_retry_attempts=1, bisect_on_function_error=True)
    lane = Lane(8, batch_size=8, settings=settings, poison={5})
    lane.run()
    assert lane.invocations == [
        [0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [4, 5],
        [4],
        [5],
        [5],  # the one retry
        [6, 7],
    ]
    assert lane.processed == [0, 1, 2, 3, 4, 6, 7]
    assert lane.failed == [([5], FailureCondition.RETRY_ATTEMPTS_EXHAUSTED, 5)]


def test_bisect_halves_carry_the_retry_count_of_their_parent() -> None:
    settings = StreamRetrySettings(maximum_retry_attempts=3, bisect_on_function_error=True)
    step = after_invoke((Segment(5, retries=2, invokes=4),), ERROR, settings, now=0.0)
    assert step == BatchStep((Segment(3, 2, 5), Segment(2, 2, 5)), bisected=True)
    assert step.retry_at is None  # halves run at once


def test_with_zero_retries_and_bisect_only_the_poison_record_is_lost() -> None:
    settings = StreamRetrySettings(maximum_retry_attempts=0, bisect_on_function_error=True)
    lane = Lane(100, batch_size=100, settings=settings, poison={37, 80})
    lane.run()
    assert sorted(lane.processed) == [i for i in range(100) if i not in (37, 80)]
    assert [records for records, _, _ in lane.failed] == [[37], [80]]


def test_partial_response_checkpoints_before_the_lowest_failed_record() -> None:
    settings = StreamRetrySettings(report_batch_item_failures=True)
    step = after_invoke((Segment(10),), partial(4), settings, now=7.0)
    assert step.commit == 4
    assert step.segments == (Segment(6, retries=1, invokes=1),)
    assert step.retried and step.retry_at == 7.0 + RETRY_DELAY_S


def test_partial_response_naming_the_first_record_is_a_plain_retry() -> None:
    settings = StreamRetrySettings(report_batch_item_failures=True, maximum_retry_attempts=0)
    step = after_invoke((Segment(10),), partial(0), settings, now=0.0)
    assert step.commit == 0 and step.fail == 10


def test_partial_response_with_bisect_splits_at_the_sequence_number_for_free() -> None:
    settings = StreamRetrySettings(report_batch_item_failures=True, bisect_on_function_error=True, maximum_retry_attempts=0)
    step = after_invoke((Segment(10, retries=0),), partial(6), settings, now=0.0)
    assert step == BatchStep((Segment(4, 0, 1),), commit=6, bisected=True)


def test_partial_responses_drive_a_lane_past_a_poison_record() -> None:
    settings = StreamRetrySettings(report_batch_item_failures=True, maximum_retry_attempts=1)

    def respond(batch: list[int]) -> InvokeReport:
        return partial(batch.index(3)) if 3 in batch else OK

    lane = Lane(6, batch_size=6, settings=settings)
    lane.run(respond)
    assert lane.invocations == [[0, 1, 2, 3, 4, 5], [3, 4, 5]]
    assert lane.processed == [0, 1, 2]
    assert lane.failed == [([3, 4, 5], FailureCondition.RETRY_ATTEMPTS_EXHAUSTED, 2)]


def test_exhausting_retries_keeps_the_rest_of_the_pending_work() -> None:
    settings = StreamRetrySettings(maximum_retry_attempts=0, bisect_on_function_error=True)
    step = after_invoke((Segment(1, 0, 3), Segment(4, 0, 3)), ERROR, settings, now=0.0)
    assert step == BatchStep(
        (Segment(4, 0, 3),), fail=1, condition=FailureCondition.RETRY_ATTEMPTS_EXHAUSTED, failed_invokes=4
    )


# -- record age ------------------------------------------------------------------------------
def test_records_older_than_the_maximum_age_go_to_on_failure() -> None:
    settings = StreamRetrySettings(maximum_record_age_s=60)
    arrivals = [0.0, 10.0, 50.0, 70.0]
    step = expire_old_records((Segment(4, 2, 3), Segment(2)), arrivals, settings, now=105.0)
    assert step == BatchStep(
        (Segment(2, 2, 3), Segment(2)), fail=2, condition=FailureCondition.RECORD_AGE_EXCEEDED, failed_invokes=3
    )
    assert str(step.condition) == "RecordAgeExceeded"


def test_a_fully_expired_batch_is_dropped_whole() -> None:
    settings = StreamRetrySettings(maximum_record_age_s=60)
    step = expire_old_records((Segment(2),), [0.0, 1.0], settings, now=100.0)
    assert step is not None and step.segments == () and step.fail == 2


def test_no_age_limit_by_default_and_none_when_young() -> None:
    assert expire_old_records((Segment(2),), [0.0, 1.0], StreamRetrySettings(), now=1e9) is None
    assert expire_old_records((Segment(2),), [0.0, 1.0], StreamRetrySettings(maximum_record_age_s=60), now=60.0) is None


# -- the function's answer ---------------------------------------------------------------------
SEQS = ["101", "102", "103"]


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}'])
def test_success_answers(body: bytes) -> None:
    assert classify_response(None, body, SEQS, True) == OK


@pytest.mark.parametrize(
    "failures",
    [[{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"itemId": "102"}], [{"itemIdentifier": "999"}], ["102"], "102"],
)
def test_whole_batch_failure_answers(failures: object) -> None:
    body = json.dumps({"batchItemFailures": failures}).encode()
    assert classify_response(None, body, SEQS, True) == ERROR


@pytest.mark.parametrize("body", [b'"ok"', b"[1]", b"not json"])
def test_an_answer_that_is_not_an_object_fails_the_batch(body: bytes) -> None:
    assert classify_response(None, body, SEQS, True) == ERROR  # as for SQS; UNCONFIRMED


def test_the_lowest_named_sequence_number_wins() -> None:
    body = json.dumps({"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "102"}]}).encode()
    assert classify_response(None, body, SEQS, True) == partial(1)


def test_partial_answers_are_ignored_unless_the_mapping_asks_for_them() -> None:
    body = json.dumps({"batchItemFailures": [{"itemIdentifier": "102"}]}).encode()
    assert classify_response(None, body, SEQS, False) == OK


def test_a_function_error_fails_the_batch_whatever_the_body() -> None:
    assert classify_response("Unhandled", b'{"batchItemFailures": []}', SEQS, True) == ERROR
