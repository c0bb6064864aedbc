"""Kinesis event source mappings driven through boto3
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html).

One emulator for the module (time scale 30: the 1 s poll cadence and retry delay take
33 ms, a 60 s record age 2 s); every test has its own stream and function, and each function appends every event
it receives to a file, so a test sees exactly what the function saw, in order.
"""

from __future__ import annotations

import base64
import calendar
import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest

from backend_testkit import RestartableMoto
from core_testkit import wait_until
from source_testkit import ACCOUNT, REGION, esm_metrics, mapping_for, mapping_state, queue_arn, stream_recorder, the_one_message
from source_testkit import create_mapping as create_enabled_mapping
from source_testkit import events_in as events
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

TIME_SCALE = 30.0
WAIT_S = 30.0  # bound for waits that normally end within a second or two


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def stream(name: str, shards: int = 1) -> dict[str, Any]:
    return {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": name, "ShardCount": shards}}


@pytest.fixture(scope="module")
def emu(out_dir: Path) -> Iterator[EmulatorHandle]:
    template = {
        "ShapeStream": stream("shape-stream", shards=2),
        "PoisonStream": stream("poison-stream"),
        "BisectStream": stream("bisect-stream"),
        "PartialStream": stream("partial-stream"),
        "OrderStream": stream("order-stream"),
        "PauseStream": stream("pause-stream"),
        "AgeStream": stream("age-stream"),
        "PositionStream": stream("position-stream"),
        "ThrottleStream": stream("throttle-stream"),
        "LateStream": stream("late-destination-stream"),
        "Failures": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "kinesis-failures"}},
        "TooOld": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "kinesis-too-old"}},
        "TooOldTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "kinesis-too-old", "Subscription": [
            {"Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["TooOld", "Arn"]}},
        ]}},
        # The SAM event path: the mapping comes from the template.
        "shape": stream_recorder(
            out_dir / "shape",
            Events={"Feed": {"Type": "Kinesis", "Properties": {
                "Stream": {"Fn::GetAtt": ["ShapeStream", "Arn"]}, "StartingPosition": "TRIM_HORIZON", "BatchSize": 10,
            }}},
        ),
        "blocked": stream_recorder(out_dir / "blocked", "poison"),
        "bisector": stream_recorder(out_dir / "bisector", "poison"),
        "late": stream_recorder(out_dir / "late", "poison"),
        "partial": stream_recorder(out_dir / "partial", "partial"),
        "ordered": stream_recorder(out_dir / "ordered", "slow"),
        "pausable": stream_recorder(out_dir / "pausable"),
        "aging": stream_recorder(out_dir / "aging", "poison"),
        "latest": stream_recorder(out_dir / "latest"),
        "attime": stream_recorder(out_dir / "attime"),
        "narrow": stream_recorder(out_dir / "narrow", "slow", ReservedConcurrentExecutions=1),
    }
    with running_emulator(template, time_scale=TIME_SCALE) as handle:
        yield handle


# -- helpers -------------------------------------------------------------------------------------
def datas(event: dict[str, Any]) -> list[str]:
    return [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]


def put(emu: EmulatorHandle, name: str, items: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """PutRecords of (partition key, data); returns [{"data", "key", "SequenceNumber", "ShardId"}]."""
    entries = [{"Data": data.encode(), "PartitionKey": key} for key, data in items]
    result = emu.client("kinesis").put_records(StreamName=name, Records=entries)
    assert result["FailedRecordCount"] == 0
    return [{"data": data, "key": key, **r} for (key, data), r in zip(items, result["Records"])]


def create_mapping(emu: EmulatorHandle, function: str, stream_name: str, **settings: Any) -> str:
    return create_enabled_mapping(emu, function, stream_arn(stream_name), WAIT_S, **settings)


# -- the event shape and order ----------------------------------------------------------------
def test_records_reach_the_handler_with_the_exact_shape_in_order_per_shard(emu: EmulatorHandle, out_dir: Path) -> None:
    before = time.time()
    sent = put(emu, "shape-stream", [(f"user-{i % 7}", f"record-{i}") for i in range(40)])
    out = out_dir / "shape"
    assert wait_until(lambda: sum(len(e["Records"]) for e in events(out)) >= 40, WAIT_S)
    received = events(out)
    by_seq = {(s["ShardId"], s["SequenceNumber"]): s for s in sent}
    assert len(by_seq) == 40, "sequence numbers are unique per shard"

    delivered: dict[str, list[str]] = defaultdict(list)
    for event in received:
        assert set(event) == {"Records"}
        assert 1 <= len(event["Records"]) <= 10  # BatchSize
        shards_in_batch = {r["eventID"].split(":")[0] for r in event["Records"]}
        assert len(shards_in_batch) == 1, "a batch holds records of one shard"
        for record in event["Records"]:
            shard, seq = record["eventID"].split(":")
            original = by_seq[(shard, seq)]
            assert record == {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": original["key"],
                    "sequenceNumber": original["SequenceNumber"],
                    "data": base64.b64encode(original["data"].encode()).decode(),
                    "approximateArrivalTimestamp": record["kinesis"]["approximateArrivalTimestamp"],
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{original['ShardId']}:{original['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-emulator-role",
                "awsRegion": REGION,
                "eventSourceARN": stream_arn("shape-stream"),
            }
            arrival = record["kinesis"]["approximateArrivalTimestamp"]
            assert isinstance(arrival, float) and before - 5 <= arrival <= time.time() + 5  # epoch seconds
            delivered[shard].append(seq)
    for shard, seqs in delivered.items():
        put_order = [s["SequenceNumber"] for s in sent if s["ShardId"] == shard]
        assert seqs == put_order, f"{shard}: delivered once each, in the order they were put"
    assert sorted(delivered) == sorted({s["ShardId"] for s in sent})

    metrics = esm_metrics(emu, mapping_for(emu, "shape"))
    assert metrics["RecordsProcessed"] == 40
    assert set(metrics["Shards"]) == {"shardId-000000000000", "shardId-000000000001"}
    assert all("IteratorAgeMilliseconds" in shard for shard in metrics["Shards"].values())


# -- a poison record with the defaults blocks its shard -------------------------------------------
def test_a_poison_record_blocks_the_shard_with_default_settings(emu: EmulatorHandle, out_dir: Path) -> None:
    out = out_dir / "blocked"
    put(emu, "poison-stream", [("k", "ok-0"), ("k", "ok-1"), ("k", "poison"), ("k", "ok-3")])
    uuid = create_mapping(emu, "blocked", "poison-stream", BatchSize=10)
    assert wait_until(lambda: esm_metrics(emu, uuid)["FunctionErrors"] >= 3, WAIT_S)
    first_age = esm_metrics(emu, uuid)["IteratorAgeMilliseconds"]
    put(emu, "poison-stream", [("k", f"late-{i}") for i in range(5)])
    calls = esm_metrics(emu, uuid)["GetRecordsCalls"]
    # several more poll cycles and retries go by
    assert wait_until(lambda: esm_metrics(emu, uuid)["FunctionErrors"] >= 8 and esm_metrics(emu, uuid)["GetRecordsCalls"] >= calls + 3, WAIT_S)

    seen = events(out)
    assert {tuple(datas(e)) for e in seen} == {("ok-0", "ok-1", "poison", "ok-3")}, "the same batch, again and again"
    metrics = esm_metrics(emu, uuid)
    assert metrics["RecordsProcessed"] == 0 and metrics["RecordsDiscarded"] == 0
    assert metrics["Retries"] >= 7
    assert metrics["IteratorAgeMilliseconds"] > first_age, "the iterator age grows while the shard is blocked"
    mapping = emu.lambda_client.get_event_source_mapping(UUID=uuid)
    assert mapping["LastProcessingResult"] == "PROBLEM: Function call failed"
    assert mapping["MaximumRetryAttempts"] == -1 and mapping["BisectBatchOnFunctionError"] is False


# -- the fix: bisect + retry limit + on-failure destination (kinesis-on-failure-destination.html) --
def test_bisect_with_a_retry_limit_isolates_the_poison_record_and_reports_it(emu: EmulatorHandle, out_dir: Path) -> None:
    names = [f"good-{i}" for i in range(8)]
    names[5] = "poison"
    sent = put(emu, "bisect-stream", [("k", name) for name in names])
    uuid = create_mapping(
        emu, "bisector", "bisect-stream", BatchSize=8, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn("kinesis-failures")}},
    )
    record = the_one_message(emu, "kinesis-failures", WAIT_S)
    poison = sent[5]
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bisector"
    assert record["requestContext"]["approximateInvokeCount"] == 5  # 8 → 4 → 2 → 1, then one retry
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = record["KinesisBatchInfo"]
    assert info["shardId"] == poison["ShardId"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison["SequenceNumber"]
    assert info["batchSize"] == 1
    assert info["streamArn"] == stream_arn("bisect-stream")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    # Stamped by the real wall clock, as async records are, even under --time-scale.
    stamped = calendar.timegm(time.strptime(record["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(stamped - time.time()) < 10, record["timestamp"]

    put(emu, "bisect-stream", [("k", "after-the-poison")])
    out = out_dir / "bisector"
    ok = lambda: {d for e in events(out) if "poison" not in datas(e) for d in datas(e)}  # noqa: E731
    assert wait_until(lambda: "after-the-poison" in ok(), WAIT_S), "the shard moved on"
    assert ok() == set(names + ["after-the-poison"]) - {"poison"}
    metrics = esm_metrics(emu, uuid)
    assert metrics["OnFailureRecordsSent"] == 1 and metrics["Bisections"] == 3 and metrics["Retries"] == 1


def test_an_on_failure_record_is_retried_until_its_destination_can_take_it(emu: EmulatorHandle, out_dir: Path) -> None:
    """A destination that fails at first (a queue created a moment late) loses no record: the
    delivery is retried with back-off while the records are young enough, the shard waiting."""
    sqs = emu.client("sqs")
    uuid = create_mapping(
        emu, "late", "late-destination-stream", MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn("kinesis-late-failures")}},
    )
    [poison] = put(emu, "late-destination-stream", [("k", "poison")])
    # Two failed attempts (or, as before the retries, the record given up at once).
    tried = lambda: esm_metrics(emu, uuid).get("OnFailureDeliveryRetries", 0) >= 2 or esm_metrics(emu, uuid)["OnFailureDeliveryFailures"]  # noqa: E731
    assert wait_until(tried, WAIT_S)
    sqs.create_queue(QueueName="kinesis-late-failures")
    info = the_one_message(emu, "kinesis-late-failures", WAIT_S)["KinesisBatchInfo"]
    assert info["startSequenceNumber"] == poison["SequenceNumber"]
    put(emu, "late-destination-stream", [("k", "after")])
    assert wait_until(lambda: any("after" in datas(e) for e in events(out_dir / "late")), WAIT_S), "the shard moved on"
    metrics = esm_metrics(emu, uuid)
    assert (metrics["OnFailureRecordsSent"], metrics["OnFailureDeliveryFailures"], metrics["RecordsDiscarded"]) == (1, 0, 0)


# -- ReportBatchItemFailures --------------------------------------------------------------------
def test_partial_batch_response_checkpoints_before_the_lowest_failed_record(emu: EmulatorHandle, out_dir: Path) -> None:
    names = [f"item-{i}" for i in range(10)]
    names[4], names[7] = "flaky-4", "flaky-7"
    sent = put(emu, "partial-stream", [("k", name) for name in names])
    uuid = create_mapping(emu, "partial", "partial-stream", BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    out = out_dir / "partial"
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 10, WAIT_S)
    seqs = [[r["kinesis"]["sequenceNumber"] for r in e["Records"]] for e in events(out)]
    all_seqs = [s["SequenceNumber"] for s in sent]
    # first call reports 4 and 7: checkpoint before 4; the retry starts at 4 and succeeds
    assert seqs == [all_seqs, all_seqs[4:]]
    assert esm_metrics(emu, uuid)["Retries"] == 1


# -- ParallelizationFactor keeps order per partition key ---------------------------------------
def test_parallelization_factor_runs_lanes_concurrently_in_order_per_key(emu: EmulatorHandle, out_dir: Path) -> None:
    keys = [f"device-{k}" for k in range(12)]
    sent = put(emu, "order-stream", [(keys[i % 12], f"{keys[i % 12]}/{i}") for i in range(120)])
    uuid = create_mapping(emu, "ordered", "order-stream", BatchSize=5, ParallelizationFactor=4)
    out = out_dir / "ordered"
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 120, WAIT_S)
    per_key: dict[str, list[int]] = defaultdict(list)
    for event in events(out):
        for record in event["Records"]:
            per_key[record["kinesis"]["partitionKey"]].append(int(record["kinesis"]["sequenceNumber"]))
    expected = defaultdict(list)
    for s in sent:
        expected[s["key"]].append(int(s["SequenceNumber"]))
    assert per_key == expected, "every key's records once each, in sequence order"
    metrics = emu.metrics()
    assert metrics["event_source_mappings"][uuid]["Shards"]["shardId-000000000000"]["Lanes"] == 4
    assert metrics["functions"]["ordered"]["ConcurrentExecutionsPeak"] > 1, "lanes ran batches at the same time"


# -- Disable / Enable / Update resume from the checkpoint --------------------------------------
def test_disable_and_enable_resume_from_the_checkpoint(emu: EmulatorHandle, out_dir: Path) -> None:
    out = out_dir / "pausable"
    uuid = create_mapping(emu, "pausable", "pause-stream", BatchSize=100)
    put(emu, "pause-stream", [("k", f"first-{i}") for i in range(3)])
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 3, WAIT_S)

    emu.lambda_client.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert wait_until(lambda: mapping_state(emu, uuid) == "Disabled", WAIT_S)
    assert esm_metrics(emu, uuid)["Pollers"] == 0
    put(emu, "pause-stream", [("k", f"paused-{i}") for i in range(3)])
    time.sleep(0.5)  # fifteen poll intervals at this time scale: nothing may be read
    assert [d for e in events(out) for d in datas(e)] == [f"first-{i}" for i in range(3)]

    emu.lambda_client.update_event_source_mapping(UUID=uuid, Enabled=True, BatchSize=2)
    assert wait_until(lambda: mapping_state(emu, uuid) == "Enabled", WAIT_S)
    assert wait_until(lambda: len([d for e in events(out) for d in datas(e)]) == 6, WAIT_S)
    received = [datas(e) for e in events(out)]
    assert [d for batch in received for d in batch] == [f"first-{i}" for i in range(3)] + [f"paused-{i}" for i in range(3)]
    assert all(len(batch) <= 2 for batch in received[1:]), "the update's BatchSize applies"

    emu.lambda_client.delete_event_source_mapping(UUID=uuid)
    assert wait_until(lambda: uuid not in emu.metrics()["event_source_mappings"], WAIT_S)


# -- MaximumRecordAgeInSeconds, to an SNS on-failure destination --------------------------------
def test_records_older_than_the_maximum_age_go_to_on_failure(emu: EmulatorHandle, out_dir: Path) -> None:
    sqs = emu.client("sqs")
    queue_url = sqs.get_queue_url(QueueName="kinesis-too-old")["QueueUrl"]  # subscribed to the topic
    sent = put(emu, "age-stream", [("k", "ok-0"), ("k", "poison"), ("k", "ok-2")])
    uuid = create_mapping(
        emu, "aging", "age-stream", BatchSize=10, MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:sns:{REGION}:{ACCOUNT}:kinesis-too-old"}},
    )
    # Retried without limit until the records are a minute old (2 s at this time scale).
    # Records expire one by one by their arrival time, so the three may be reported in one
    # record or, when their arrival stamps straddle a retry, in two.
    records: list[dict] = []

    def all_reported() -> bool:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
            notification = json.loads(message["Body"])
            assert notification["Type"] == "Notification"
            assert notification["TopicArn"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:kinesis-too-old"
            records.append(json.loads(notification["Message"]))
        return sum(r["KinesisBatchInfo"]["batchSize"] for r in records) >= 3

    assert wait_until(all_reported, WAIT_S)
    assert {r["requestContext"]["condition"] for r in records} == {"RecordAgeExceeded"}  # AWS documents no value; README 'Choices'
    infos = sorted((r["KinesisBatchInfo"] for r in records), key=lambda info: int(info["startSequenceNumber"]))
    assert (infos[0]["startSequenceNumber"], infos[-1]["endSequenceNumber"], sum(i["batchSize"] for i in infos)) == (
        sent[0]["SequenceNumber"], sent[2]["SequenceNumber"], 3,
    )
    metrics = esm_metrics(emu, uuid)
    assert metrics["RecordsExpired"] == 3 and metrics["Retries"] >= 10
    assert max(r["requestContext"]["approximateInvokeCount"] for r in records) == metrics["FunctionErrors"]


# -- StartingPosition LATEST and AT_TIMESTAMP; two mappings on one stream ------------------------
def test_latest_and_at_timestamp_start_where_they_say(emu: EmulatorHandle, out_dir: Path) -> None:
    put(emu, "position-stream", [("k", "old-0"), ("k", "old-1")])
    time.sleep(0.05)  # arrival stamps have millisecond resolution: keep the two groups apart
    boundary = time.time()
    time.sleep(0.05)
    put(emu, "position-stream", [("k", "mid-0")])
    at_time = create_mapping(emu, "attime", "position-stream", StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=boundary)
    latest = create_mapping(emu, "latest", "position-stream", StartingPosition="LATEST")
    put(emu, "position-stream", [("k", "new-0"), ("k", "new-1")])
    assert wait_until(lambda: esm_metrics(emu, latest)["RecordsProcessed"] == 2 and esm_metrics(emu, at_time)["RecordsProcessed"] == 3, WAIT_S)
    assert [d for e in events(out_dir / "latest") for d in datas(e)] == ["new-0", "new-1"]
    assert [d for e in events(out_dir / "attime") for d in datas(e)] == ["mid-0", "new-0", "new-1"]


# -- throttles are retried and do not count as retries (kinesis-on-failure-destination.html) ----
def test_throttled_batches_are_retried_without_spending_retry_attempts(emu: EmulatorHandle, out_dir: Path) -> None:
    keys = [f"key-{k}" for k in range(8)]
    put(emu, "throttle-stream", [(keys[i % 8], f"r{i}") for i in range(40)])
    # four lanes, one unit of reserved concurrency: most attempts are throttled
    uuid = create_mapping(emu, "narrow", "throttle-stream", BatchSize=5, ParallelizationFactor=4, MaximumRetryAttempts=0)
    assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 40, WAIT_S)
    metrics = esm_metrics(emu, uuid)
    assert metrics["ThrottledBatches"] > 0
    assert metrics["Retries"] == 0 and metrics["RecordsDiscarded"] == 0 and metrics["FunctionErrors"] == 0
    assert emu.metrics()["functions"]["narrow"]["Throttles"] == metrics["ThrottledBatches"]
    assert sorted(d for e in events(out_dir / "narrow") for d in datas(e)) == sorted(f"r{i}" for i in range(40))


def test_pollers_survive_a_backend_that_dies_and_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The backend (a moto server the test owns, behind --aws-endpoint) is killed under a
    running shard reader: GetRecords failures are counted and logged once, the reader keeps
    polling, and reads the recreated stream once the backend answers again. (The stream is
    empty before the kill: moto's shard iterators encode the last sequence number read, and a
    recreated stream numbers its records from 1 again.)"""
    template = {"RestartStream": stream("restart-stream"), "restart": stream_recorder(tmp_path / "restart")}
    with RestartableMoto() as moto, running_emulator(template, time_scale=TIME_SCALE, aws_endpoint=moto.url) as emu:
        uuid = create_mapping(emu, "restart", "restart-stream")
        assert wait_until(lambda: esm_metrics(emu, uuid)["GetRecordsCalls"] >= 2, WAIT_S)
        caplog.clear()
        moto.kill()
        assert wait_until(lambda: esm_metrics(emu, uuid)["GetRecordsErrors"] >= 5, WAIT_S)
        moto.start()
        emu.client("kinesis").create_stream(StreamName="restart-stream", ShardCount=1)
        put(emu, "restart-stream", [("k", f"after-{i}") for i in range(3)])
        assert wait_until(lambda: esm_metrics(emu, uuid)["RecordsProcessed"] == 3, WAIT_S)
        assert [d for event in events(tmp_path / "restart") for d in datas(event)] == ["after-0", "after-1", "after-2"]
        emu.check()
        assert esm_metrics(emu, uuid)["Pollers"] == 1
        warnings = [r for r in caplog.records if r.name.startswith("emulator.sources") and r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per burst, not once per failed call
        assert "restart-stream" in warnings[0].getMessage()
