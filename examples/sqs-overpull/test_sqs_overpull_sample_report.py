"""The committed sample reports (sample-report/buggy and sample-report/fixed) still read as the
story the README tells: with the bug, throttles and valid messages in the DLQ; with the fix,
neither. Nothing is run: the reports are checked against today's schema, thresholds and
renderer (examples/sample_reports.py), then read."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "sample-report"
SENT = 200  # load.yaml: 20 SendMessageBatch calls of 10 messages

_spec = importlib.util.spec_from_file_location("sample_reports", HERE.parent / "sample_reports.py")
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)


def test_the_buggy_report_shows_throttles_filling_the_dlq() -> None:
    report = samples.checked_report(SAMPLES / "buggy")
    assert report["scenario"]["target"]["queue"] == "overpull-bug"
    assert report["client"]["totals"]["sent"] == report["client"]["totals"]["expected_requests"] == SENT // 10
    assert report["verdict"] == "fail"
    assert samples.total(report, "NumberOfMessagesSent", "AWS/SQS", QueueName="overpull-bug") == SENT
    # The throttle wave: 5 pollers for a function that runs 2 at a time.
    mapping = samples.mapping_uuid(report, "overpull-bug-consumer")
    assert samples.peak(report, "Pollers", EventSourceMappingUUID=mapping) == 5
    assert samples.peak(report, "ConcurrentExecutions", FunctionName="overpull-bug-consumer") == 2
    throttles = samples.total(report, "Throttles", FunctionName="overpull-bug-consumer",
                              Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
    assert throttles > 0
    # The DLQ filling, with valid messages: the handler never failed.
    moved = samples.total(report, "NumberOfMessagesMovedToDLQ", "AWS/SQS", QueueName="overpull-bug")
    assert moved > 0
    assert samples.total(report, "Errors", FunctionName="overpull-bug-consumer") == 0
    # Every arrival has its cause: throttled batches, and batches whose retries after throttles
    # left too little visibility timeout for their run (the message was moved while it ran).
    causes = {cause: samples.total(report, "DeadLetterBoundEventCount", EventSourceMappingUUID=mapping, Cause=cause)
              for cause in ("Throttled", "Failed", "VisibilityTimeoutExpired", "Other")}
    assert sum(causes.values()) == moved and causes["Throttled"] > 0
    assert causes["Failed"] == causes["Other"] == 0
    assert moved + samples.total(report, "NumberOfMessagesDeleted", "AWS/SQS", QueueName="overpull-bug") == SENT
    assert "sqs-throttles-to-dlq" in {a["rule"] for a in report["advice"]}


def test_the_fixed_report_shows_neither() -> None:
    report = samples.checked_report(SAMPLES / "fixed")
    assert report["scenario"]["target"]["queue"] == "overpull-fix"
    assert report["verdict"] == "pass"
    mapping = samples.mapping_uuid(report, "overpull-fix-consumer")
    assert samples.peak(report, "Pollers", EventSourceMappingUUID=mapping) == 2  # MaximumConcurrency
    assert samples.total(report, "Throttles") == 0
    assert samples.total(report, "NumberOfMessagesMovedToDLQ", "AWS/SQS", QueueName="overpull-fix") == 0
    assert samples.total(report, "NumberOfMessagesDeleted", "AWS/SQS", QueueName="overpull-fix") == SENT
    assert "sqs-throttles-to-dlq" not in {a["rule"] for a in report["advice"]}
