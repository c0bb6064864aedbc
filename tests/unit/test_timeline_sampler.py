"""The sampler (emulator/telemetry/sampler.py): pollers' and backend figures into the
timeline, cumulative counters into per-second counts; and the moto child's counters it reads
(emulator/moto_child/sqs_store.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from emulator.clock import ScaledClock, VirtualClock
from emulator.telemetry.sampler import LedgerView, Sampler, SamplerPorts, next_sample, receive_count_buckets
from emulator.telemetry.timeline import Timeline, series_key, statistic

T0 = 1_700_000_000


def sampler(mappings: list[dict[str, Any]] | None = None, backend: list[dict[str, Any]] | None = None) -> tuple[VirtualClock, Timeline, Sampler]:
    clock = VirtualClock()
    timeline = Timeline(clock.wall)
    feed_mappings = iter(mappings or [])
    feed_backend = iter(backend or [])

    async def read_mappings() -> dict[str, Any]:
        return next(feed_mappings, {})

    async def read_backend() -> dict[str, Any] | None:
        return next(feed_backend, None)

    ports = SamplerPorts(
        ledger=lambda: LedgerView({"claimed_concurrency": 7, "unreserved_in_flight": 3, "account_limit": 1000,
                                   "unreserved_limit": 990}, {"pc": (1, 4)}),
        functions=lambda: ["f", "pc"],
        concurrency_limit=lambda name: 10 if name == "f" else 990,
        mappings=read_mappings,
        backend=read_backend,
    )
    return clock, timeline, Sampler(timeline, ports)


def series(timeline: Timeline, namespace: str, metric: str, **dims: str) -> list[tuple[int, float]]:
    return [(t - T0, statistic(d, "Maximum")) for t, d in timeline.points(series_key(namespace, metric, dims))]


def sample(clock: VirtualClock, s: Sampler, times: int) -> None:
    for _ in range(times):
        asyncio.run(s.sample())
        clock.advance(1)


def test_account_and_function_levels() -> None:
    clock, timeline, s = sampler()
    sample(clock, s, 2)
    assert series(timeline, "AWS/Lambda", "ClaimedAccountConcurrency") == [(0, 7), (1, 7)]
    assert series(timeline, "AWS/Lambda", "UnreservedConcurrentExecutions") == [(0, 3), (1, 3)]
    assert series(timeline, "AWS/Lambda", "ConcurrencyLimit", FunctionName="f") == [(0, 10), (1, 10)]
    assert series(timeline, "AWS/Lambda", "ProvisionedConcurrencyUtilization", FunctionName="pc") == [(0, 0.25), (1, 0.25)]


def test_mapping_counters_become_per_second_counts_and_survive_a_restart() -> None:
    sqs = "arn:aws:lambda:us-east-1:1:function:consumer"
    snapshots = [
        {"u": {"FunctionArn": sqs, "MessagesReceived": 10, "MessagesDeleted": 8, "InvokedEventCount": 10, "Pollers": 5,
               "BatchesInFlight": 2}},
        {"u": {"FunctionArn": sqs, "MessagesReceived": 25, "MessagesDeleted": 20, "InvokedEventCount": 20, "Pollers": 6,
               "BatchesInFlight": 1}},
        {"u": {"FunctionArn": sqs, "MessagesReceived": 4, "MessagesDeleted": 4, "InvokedEventCount": 4, "Pollers": 5,
               "BatchesInFlight": 0}},  # the poller process restarted: its counters began again
    ]
    clock, timeline, s = sampler(snapshots)
    sample(clock, s, 3)
    dims = {"EventSourceMappingUUID": "u"}
    assert series(timeline, "AWS/Lambda", "PolledEventCount", **dims) == [(0, 10), (1, 15), (2, 4)]
    assert series(timeline, "AWS/Lambda", "DeletedEventCount", **dims) == [(0, 8), (1, 12), (2, 4)]
    assert series(timeline, "AWS/Lambda", "Pollers", **dims) == [(0, 5), (1, 6), (2, 5)]
    assert series(timeline, "AWS/Lambda", "ConcurrentBatches", **dims) == [(0, 2), (1, 1), (2, 0)]


def test_stream_mappings_report_iterator_age_per_shard_function_and_stream() -> None:
    snapshot = {"u": {"FunctionArn": "arn:aws:lambda:us-east-1:1:function:reader:live",
                      "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/clicks", "RecordsRead": 5,
                      "IteratorAgeMilliseconds": 900, "Pollers": 2, "BatchesInFlight": 1,
                      "Shards": {"shardId-0": {"IteratorAgeMilliseconds": 900}, "shardId-1": {"IteratorAgeMilliseconds": 10}}}}
    clock, timeline, s = sampler([snapshot])
    sample(clock, s, 1)
    assert series(timeline, "AWS/Lambda", "IteratorAge", EventSourceMappingUUID="u") == [(0, 900)]
    assert series(timeline, "AWS/Lambda", "IteratorAge", EventSourceMappingUUID="u", ShardId="shardId-1") == [(0, 10)]
    assert series(timeline, "AWS/Lambda", "IteratorAge", FunctionName="reader") == [(0, 900)]
    assert series(timeline, "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", StreamName="clicks") == [(0, 900)]
    assert series(timeline, "AWS/Kinesis", "IteratorAgeMilliseconds", StreamName="clicks", ShardId="shardId-0") == [(0, 900)]
    assert series(timeline, "AWS/Lambda", "PolledEventCount", EventSourceMappingUUID="u") == [(0, 5)]


def test_queues_sent_leaves_out_what_a_redrive_moved_in() -> None:
    dlq_arn = "arn:aws:sqs:us-east-1:1:orders-dlq"
    first = {"sqs": [
        {"name": "orders", "arn": "arn:aws:sqs:us-east-1:1:orders", "dead_letter_target": dlq_arn, "visible": 5,
         "not_visible": 2, "delayed": 0, "oldest_age_s": 3.5, "added": 10, "received": 6, "deleted": 3, "dead_lettered": 0,
         "receive_counts": {"0": 5, "1": 2}},
        {"name": "orders-dlq", "arn": dlq_arn, "dead_letter_target": None, "visible": 0, "not_visible": 0, "delayed": 0,
         "oldest_age_s": None, "added": 0, "received": 0, "deleted": 0, "dead_lettered": 0, "receive_counts": {}},
    ], "kinesis": [{"name": "clicks", "incoming_records": 100, "incoming_bytes": 5000}]}
    second = {"sqs": [
        {**first["sqs"][0], "visible": 0, "not_visible": 0, "oldest_age_s": None, "added": 10, "dead_lettered": 4,
         "receive_counts": {}},
        {**first["sqs"][1], "visible": 4, "added": 6, "receive_counts": {"2": 3, "12": 1}},  # 4 moved in, 2 sent
    ], "kinesis": [{"name": "clicks", "incoming_records": 130, "incoming_bytes": 6000}]}
    clock, timeline, s = sampler(backend=[first, second])
    sample(clock, s, 2)
    assert series(timeline, "AWS/SQS", "NumberOfMessagesSent", QueueName="orders") == [(0, 10), (1, 0)]
    assert series(timeline, "AWS/SQS", "NumberOfMessagesSent", QueueName="orders-dlq") == [(0, 0), (1, 2)]
    assert series(timeline, "AWS/SQS", "NumberOfMessagesMovedToDLQ", QueueName="orders") == [(0, 0), (1, 4)]
    assert series(timeline, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName="orders-dlq") == [(0, 0), (1, 4)]
    assert series(timeline, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName="orders") == [(0, 3.5)]
    by_count = series(timeline, "AWS/SQS", "ApproximateNumberOfMessagesByReceiveCount", QueueName="orders-dlq", ReceiveCount="10+")
    assert by_count == [(0, 0), (1, 1)]
    assert series(timeline, "AWS/Kinesis", "IncomingRecords", StreamName="clicks") == [(0, 100), (1, 30)]


def test_receive_count_buckets_are_fixed() -> None:
    buckets = receive_count_buckets({"0": 1, "3": 2, "10": 4, "11": 1})
    assert list(buckets) == [str(n) for n in range(10)] + ["10+"]
    assert (buckets["0"], buckets["3"], buckets["10+"], buckets["5"]) == (1, 2, 5, 0)


def test_a_backend_without_figures_is_skipped() -> None:
    clock, timeline, s = sampler(backend=[None])
    sample(clock, s, 1)
    assert not [k for k in timeline.keys() if k.namespace == "AWS/SQS"]


def test_api_gateway_stages() -> None:
    clock, timeline, s = sampler()
    snapshots = iter([
        {"apis": {"a1": {"Name": "shop", "Type": "REST", "Stages": {"Prod": {
            "Count": 10, "4XXError": 1, "5XXError": 2, "Latency": {"SampleCount": 10, "Sum": 50.0},
            "IntegrationLatency": {"SampleCount": 10, "Sum": 30.0}, "ThrottlesByLayer": {"stage": 1}}}},
                  "h1": {"Name": "api", "Type": "HTTP", "Stages": {"$default": {"Count": 4, "4xx": 0, "5xx": 0,
                                                                                 "Latency": {"SampleCount": 0}}}}}},
        {"apis": {"a1": {"Name": "shop", "Type": "REST", "Stages": {"Prod": {
            "Count": 14, "4XXError": 1, "5XXError": 2, "Latency": {"SampleCount": 14, "Sum": 90.0},
            "IntegrationLatency": {"SampleCount": 14, "Sum": 30.0}, "ThrottlesByLayer": {"stage": 3}}}}}},
    ])
    s.ports = s.ports.__class__(**{**s.ports.__dict__, "api_gateway": lambda: next(snapshots)})
    sample(clock, s, 2)
    rest = {"ApiName": "shop", "Stage": "Prod"}
    assert series(timeline, "AWS/ApiGateway", "Count", **rest) == [(0, 10), (1, 4)]
    assert series(timeline, "AWS/ApiGateway", "5XXError", **rest) == [(0, 2), (1, 0)]
    assert series(timeline, "AWS/ApiGateway", "Latency", **rest) == [(0, 5.0), (1, 10.0)]  # each second's mean
    assert series(timeline, "AWS/ApiGateway", "IntegrationLatency", **rest) == [(0, 3.0), (1, 0.0)]
    assert series(timeline, "AWS/ApiGateway", "Throttles", Layer="stage", **rest) == [(0, 1), (1, 2)]
    assert series(timeline, "AWS/ApiGateway", "Count", ApiId="h1", Stage="$default") == [(0, 4)]


def test_sns_topics_counts_per_second_and_publish_size_mean() -> None:
    clock, timeline, s = sampler()
    topic = "arn:aws:sns:us-east-1:123456789012:orders"
    feed = iter([
        {"topics": {topic: {"NumberOfMessagesPublished": 2, "PublishSize": 300, "NumberOfNotificationsDelivered": 3,
                            "NumberOfNotificationsFilteredOut": 1, "NumberOfNotificationsFilteredOut-MessageBody": 1}}},
        {"topics": {topic: {"NumberOfMessagesPublished": 5, "PublishSize": 1200, "NumberOfNotificationsDelivered": 9,
                            "NumberOfNotificationsFilteredOut": 1, "NumberOfNotificationsFilteredOut-MessageBody": 1,
                            "LambdaDeliveryAttemptsRejected": 4}}},
    ])

    async def read_sns() -> dict[str, Any]:
        return next(feed, {})

    s.ports = replace(s.ports, sns=read_sns)
    sample(clock, s, 2)

    def counts(metric: str) -> list[tuple[int, float]]:
        return [(t - T0, statistic(d, "Sum")) for t, d in timeline.points(series_key("AWS/SNS", metric, {"TopicName": "orders"}))]

    assert counts("NumberOfMessagesPublished") == [(0, 2), (1, 3)]
    assert counts("NumberOfNotificationsDelivered") == [(0, 3), (1, 6)]
    assert counts("NumberOfNotificationsFilteredOut-MessageBody") == [(0, 1), (1, 0)]
    assert counts("LambdaDeliveryAttemptsRejected") == [(1, 4)]
    assert series(timeline, "AWS/SNS", "PublishSize", TopicName="orders") == [(0, 150), (1, 300)]


def test_dynamodb_stream_mappings_report_iterator_age_and_no_kinesis_stream() -> None:
    """A DynamoDB stream ARN also holds "stream/": its mapping's ages are Lambda's IteratorAge,
    never an AWS/Kinesis stream named after the stream's label."""
    snapshot = {"d": {"FunctionArn": "arn:aws:lambda:us-east-1:1:function:audit",
                      "EventSourceArn": "arn:aws:dynamodb:us-east-1:1:table/orders/stream/2024-01-01T00:00:00.000",
                      "RecordsRead": 3, "IteratorAgeMilliseconds": 400, "Pollers": 1, "BatchesInFlight": 0,
                      "Shards": {"shardId-0001": {"IteratorAgeMilliseconds": 400}}}}
    clock, timeline, s = sampler([snapshot])
    sample(clock, s, 1)
    assert series(timeline, "AWS/Lambda", "IteratorAge", EventSourceMappingUUID="d") == [(0, 400)]
    assert series(timeline, "AWS/Lambda", "IteratorAge", EventSourceMappingUUID="d", ShardId="shardId-0001") == [(0, 400)]
    assert series(timeline, "AWS/Lambda", "IteratorAge", FunctionName="audit") == [(0, 400)]
    assert not [k for k in timeline.keys() if k.namespace == "AWS/Kinesis"]


def test_dynamodb_tables_and_global_indexes() -> None:
    arn = "arn:aws:dynamodb:us-east-1:1:table/orders"
    index = {"ProvisionedReadCapacityUnits": 5, "ProvisionedWriteCapacityUnits": 2, "ConsumedReadCapacityUnits": 0.0,
             "ConsumedWriteCapacityUnits": 4.0, "ReadThrottleEvents": 0, "WriteThrottleEvents": 1}
    first = {"dynamodb": [
        {"TableName": "orders", "TableArn": arn, "BillingMode": "PROVISIONED", "ProvisionedReadCapacityUnits": 10,
         "ProvisionedWriteCapacityUnits": 5, "ConsumedReadCapacityUnits": 2.5, "ConsumedWriteCapacityUnits": 12.0,
         "ReadThrottleEvents": 0, "WriteThrottleEvents": 3, "ThrottledRequests": 3,
         "GlobalSecondaryIndexes": {"by-owner": index}},
        {"TableName": "events", "TableArn": "arn:aws:dynamodb:us-east-1:1:table/events", "BillingMode": "PAY_PER_REQUEST",
         "ProvisionedReadCapacityUnits": 0, "ProvisionedWriteCapacityUnits": 0, "ConsumedReadCapacityUnits": 0.0,
         "ConsumedWriteCapacityUnits": 7.0, "ReadThrottleEvents": 0, "WriteThrottleEvents": 0, "ThrottledRequests": 0,
         "GlobalSecondaryIndexes": {}},
    ]}
    second = {"dynamodb": [
        {**first["dynamodb"][0], "ProvisionedWriteCapacityUnits": 8, "ConsumedWriteCapacityUnits": 20.0,
         "ConsumedReadCapacityUnits": 3.0, "WriteThrottleEvents": 3, "ThrottledRequests": 3,
         "GlobalSecondaryIndexes": {"by-owner": {**index, "ConsumedWriteCapacityUnits": 9.0, "WriteThrottleEvents": 4}}},
        {**first["dynamodb"][1], "ConsumedWriteCapacityUnits": 2.0},  # deleted and created again: counts from zero
    ]}
    clock, timeline, s = sampler(backend=[first, second])
    sample(clock, s, 2)
    table = {"TableName": "orders"}
    gsi = {"TableName": "orders", "GlobalSecondaryIndexName": "by-owner"}
    assert series(timeline, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", **table) == [(0, 12), (1, 8)]
    assert series(timeline, "AWS/DynamoDB", "ConsumedReadCapacityUnits", **table) == [(0, 2.5), (1, 0.5)]
    assert series(timeline, "AWS/DynamoDB", "WriteThrottleEvents", **table) == [(0, 3), (1, 0)]
    assert series(timeline, "AWS/DynamoDB", "ThrottledRequests", **table) == [(0, 3), (1, 0)]
    assert series(timeline, "AWS/DynamoDB", "ProvisionedWriteCapacityUnits", **table) == [(0, 5), (1, 8)]
    assert series(timeline, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", **gsi) == [(0, 4), (1, 5)]
    assert series(timeline, "AWS/DynamoDB", "WriteThrottleEvents", **gsi) == [(0, 1), (1, 3)]
    assert series(timeline, "AWS/DynamoDB", "ProvisionedReadCapacityUnits", **gsi) == [(0, 5), (1, 5)]
    assert not series(timeline, "AWS/DynamoDB", "ThrottledRequests", **gsi)  # a request is throttled at its table
    assert series(timeline, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", TableName="events") == [(0, 7), (1, 2)]
    assert not series(timeline, "AWS/DynamoDB", "ProvisionedWriteCapacityUnits", TableName="events")  # on demand


def test_api_gateway_methods_routes_and_cache_counts() -> None:
    clock, timeline, s = sampler()

    def snapshot(hits: int, misses: int, route_count: int) -> dict:
        return {"apis": {
            "a1": {"Name": "shop", "Type": "REST", "Stages": {"Prod": {
                "Count": hits + misses, "CacheHitCount": hits, "CacheMissCount": misses,
                "Routes": {"GET /pets/{id}": {"Count": hits + misses, "CacheHitCount": hits, "CacheMissCount": misses,
                                              "ThrottlesByLayer": {"method": route_count}}}}}},
            "h1": {"Name": "api", "Type": "HTTP", "Stages": {"$default": {
                "Count": route_count, "Routes": {"$default": {"Count": route_count, "4xx": 1}}}}}}}

    snapshots = iter([snapshot(3, 1, 2), snapshot(10, 2, 5)])
    s.ports = s.ports.__class__(**{**s.ports.__dict__, "api_gateway": lambda: next(snapshots)})
    sample(clock, s, 2)
    stage = {"ApiName": "shop", "Stage": "Prod"}
    method = {**stage, "Method": "GET", "Resource": "/pets/{id}"}
    assert series(timeline, "AWS/ApiGateway", "CacheHitCount", **stage) == [(0, 3), (1, 7)]
    assert series(timeline, "AWS/ApiGateway", "CacheMissCount", **method) == [(0, 1), (1, 1)]
    assert series(timeline, "AWS/ApiGateway", "Throttles", Layer="method", **method) == [(0, 2), (1, 3)]
    assert series(timeline, "AWS/ApiGateway", "Count", ApiId="h1", Stage="$default", Route="$default") == [(0, 2), (1, 3)]
    assert series(timeline, "AWS/ApiGateway", "4xx", ApiId="h1", Stage="$default", Route="$default") == [(0, 1), (1, 0)]
    assert not series(timeline, "AWS/ApiGateway", "CacheHitCount", ApiId="h1", Stage="$default")


def test_every_emulated_second_is_sampled_once_just_after_it_begins() -> None:
    # Time scale 1: the next second's start (+10 ms), whether the last sample was on time or late.
    assert next_sample(100.5, None, 1.0) == (101, pytest.approx(0.51))
    assert next_sample(101.01, 101, 1.0) == (102, pytest.approx(1.0))
    assert next_sample(101.7, 101, 1.0) == (102, pytest.approx(0.31))  # a late sample: still the next second
    assert next_sample(101.005, 100, 1.0) == (101, pytest.approx(0.005))  # woken a hair early: no second skipped
    assert next_sample(101.011, 101, 1.0)[0] == 102  # never the same second twice
    # Faster time: never more often than every 0.25 s of real time (10x: every 3 emulated seconds).
    assert next_sample(101.01, 101, 10.0) == (104, pytest.approx(0.3))
    assert next_sample(101.01, 101, 60.0) == (116, pytest.approx(0.25))


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_sampler_loop_samples_each_second_once() -> None:
    """The sampler's loop on a loop whose time looptime fast-forwards: one sample in every
    emulated second, even when each sample takes a while."""
    loop = asyncio.get_running_loop()
    clock = ScaledClock(1.0, monotonic=loop.time, wall=lambda: T0 + 0.5)
    timeline = Timeline(clock.wall)

    def slow_ledger() -> LedgerView:
        return LedgerView({"claimed_concurrency": 0, "unreserved_in_flight": 0, "account_limit": 1000, "unreserved_limit": 1000}, {})

    async def mappings() -> dict[str, Any]:
        await asyncio.sleep(0.3)  # a slow poller process: the next sample is still in the next second
        return {}

    ports = SamplerPorts(ledger=slow_ledger, functions=lambda: ["f"], concurrency_limit=lambda name: 2, mappings=mappings)
    task = asyncio.create_task(Sampler(timeline, ports).run())
    await asyncio.sleep(10.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert series(timeline, "AWS/Lambda", "ConcurrencyLimit", FunctionName="f") == [(n, 2.0) for n in range(1, 11)]
