"""The committed sample report (sample-report/) still reads as the story the README tells:
both consumers on one stream in one run; the buggy one's iterator age grows for the whole run
while it fails on the same batch, the fixed one's falls back to 0 once it has sent the poison
record to its on-failure queue. Nothing is run: the report is checked against today's schema,
thresholds and renderer (examples/sample_reports.py), then read."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS = 100  # load.yaml: 10 PutRecords calls of 10 records

_spec = importlib.util.spec_from_file_location("sample_reports", HERE.parent / "sample_reports.py")
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)


def test_the_sample_report_shows_the_stuck_shard_and_the_fix() -> None:
    report = samples.checked_report(HERE / "sample-report")
    assert report["scenario"]["target"]["stream"] == "orders"
    assert report["client"]["totals"]["sent"] == report["client"]["totals"]["expected_requests"] == RECORDS // 10
    assert samples.total(report, "IncomingRecords", "AWS/Kinesis", StreamName="orders") == RECORDS
    # The verdict fails on the buggy consumer's threshold alone.
    assert report["verdict"] == "fail"
    assert {t["expression"].split("=")[1].split("}")[0]: t["ok"] for t in report["thresholds"]} == {
        "fixed-consumer": True, "buggy-consumer": False}
    # buggy-consumer: stuck. It fails every second, and its iterator age only grows.
    buggy = samples.series(report, "IteratorAge", FunctionName="buggy-consumer")["value"]
    assert buggy == sorted(buggy) and buggy[-1] == max(buggy) > 5_000
    assert samples.total(report, "Errors", FunctionName="buggy-consumer") >= len(buggy) - 2
    buggy_mapping = samples.mapping_uuid(report, "buggy-consumer")
    assert samples.total(report, "OnFailureDestinationDeliveredEventCount", EventSourceMappingUUID=buggy_mapping) == 0
    # fixed-consumer: bisects to the poison record, sends its position on, keeps up.
    fixed = samples.series(report, "IteratorAge", FunctionName="fixed-consumer")["value"]
    assert fixed[-1] == 0 and max(fixed) < 5_000
    fixed_mapping = samples.mapping_uuid(report, "fixed-consumer")
    assert samples.total(report, "OnFailureDestinationDeliveredEventCount", EventSourceMappingUUID=fixed_mapping) == 1
    assert samples.total(report, "NumberOfMessagesSent", "AWS/SQS", QueueName="orders-poison") == 1
    assert report["emulator"]["metrics"]["event_source_mappings"][fixed_mapping]["RecordsProcessed"] == RECORDS - 1
