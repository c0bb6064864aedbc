"""The limits advisor's rules, on hand-made facts and observations (no emulator)."""

from __future__ import annotations

import pytest

from emulator.advice.facts import AppFacts, FunctionFacts, MappingFacts, QueueFacts, StreamFacts, from_json
from emulator.advice.observed import FunctionObserved, Observed, QueueObserved, StreamObserved, from_timeline
from emulator.advice.rules import WARNING, advise, check_run, check_settings, has_warnings


def sqs_app(reserved: int | None = 2, maximum_concurrency: int | None = None, visibility: int = 60,
            max_receive: int | None = 5, timeout: int = 10) -> AppFacts:
    return AppFacts(
        functions={"consumer": FunctionFacts("consumer", timeout_s=timeout, reserved_concurrency=reserved)},
        queues={"jobs": QueueFacts("jobs", visibility, dead_letter_queue="jobs-dlq", max_receive_count=max_receive)},
        mappings=(MappingFacts("consumer", "sqs", "jobs", 10, maximum_concurrency),),
    )


def rules(findings, severity=WARNING):
    return sorted(f.rule for f in findings if f.severity == severity)


def test_reserved_concurrency_below_five_on_an_sqs_consumer_warns() -> None:
    found = check_settings(sqs_app(reserved=2))
    assert rules(found) == ["sqs-reserved-concurrency"]
    assert "up to 3 of them are throttled" in found[0].message
    assert found[0].source_url.startswith("https://docs.aws.amazon.com/lambda/")


def test_five_reserved_and_maximum_concurrency_at_the_reservation_is_quiet() -> None:
    assert rules(check_settings(sqs_app(reserved=5, maximum_concurrency=5))) == []
    assert not has_warnings(check_settings(sqs_app(reserved=None)))


def test_maximum_concurrency_above_the_reservation_is_overpull() -> None:
    found = check_settings(sqs_app(reserved=5, maximum_concurrency=10))
    assert rules(found) == ["sqs-overpull"]
    assert "at most 5" in found[0].message


def test_reservation_without_maximum_concurrency_is_an_info() -> None:
    assert rules(check_settings(sqs_app(reserved=20)), "info") == ["sqs-overpull"]


@pytest.mark.parametrize("visibility, warns", [(59, True), (60, False)])
def test_visibility_timeout_must_be_six_times_the_function_timeout(visibility: int, warns: bool) -> None:
    found = check_settings(sqs_app(reserved=None, visibility=visibility, timeout=10))
    assert ("sqs-visibility-timeout" in rules(found)) is warns


def test_the_batching_window_adds_to_the_visibility_timeout_needed() -> None:
    facts = sqs_app(reserved=None, visibility=60, timeout=10)
    facts = AppFacts(functions=facts.functions, queues=facts.queues,
                     mappings=(MappingFacts("consumer", "sqs", "jobs", 10, None, batching_window_s=5),))
    assert "= 65 s" in [f for f in check_settings(facts) if f.rule == "sqs-visibility-timeout"][0].message


@pytest.mark.parametrize("count, warns", [(4, True), (5, False), (None, False)])
def test_max_receive_count_under_five_warns(count: int | None, warns: bool) -> None:
    assert ("sqs-max-receive-count" in rules(check_settings(sqs_app(reserved=None, max_receive=count)))) is warns


def test_concurrency_estimate_is_rate_times_average_duration() -> None:
    facts = AppFacts(functions={"api": FunctionFacts("api", reserved_concurrency=10)})
    observed = Observed(seconds=10, functions={"api": FunctionObserved(
        invocations=500, duration_count=500, duration_sum_ms=500 * 100.0, peak_concurrency=6, busiest_second=60)})
    [finding] = check_run(facts, observed)
    assert finding.rule == "concurrency-estimate" and finding.severity == "info"
    # 50 requests/s x 0.1 s = 5 concurrent; the busiest second 60 x 0.1 = 6
    assert "50.0 requests/s x 100.0 ms average = 5.0 concurrent" in finding.message
    assert "6.0 in the busiest second" in finding.message and "observed peak 6, limit 10" in finding.message


def test_concurrency_estimate_warns_at_the_limit_or_with_throttles() -> None:
    facts = AppFacts(functions={"api": FunctionFacts("api", reserved_concurrency=5)})
    busy = FunctionObserved(invocations=500, duration_count=500, duration_sum_ms=500 * 100.0, busiest_second=50)
    assert check_run(facts, Observed(10, {"api": busy}))[0].severity == WARNING
    throttled = FunctionObserved(invocations=10, duration_count=10, duration_sum_ms=10.0, throttles=1, busiest_second=11)
    assert check_run(facts, Observed(10, {"api": throttled}))[0].severity == WARNING


def test_unreserved_pool_exhausted() -> None:
    observed = Observed(10, unreserved_peak=100, unreserved_limit=100)
    assert rules(check_run(AppFacts(), observed)) == ["unreserved-pool"]
    observed = Observed(10, unreserved_peak=50, unreserved_limit=100,
                        account_throttles_by_reason={"ConcurrentInvocationLimitExceeded": 3})
    assert "3 throttles" in check_run(AppFacts(), observed)[0].message
    assert check_run(AppFacts(), Observed(10, unreserved_peak=99, unreserved_limit=100)) == []


def test_kinesis_shard_written_above_its_limits() -> None:
    facts = AppFacts(streams={"clicks": StreamFacts("clicks", shards=2)})
    # 2,001 records/s over 2 shards is 1,000.5 per shard; 2 MiB/s is exactly 1 MiB/s per shard
    hot = Observed(10, streams={"clicks": StreamObserved(peak_records_per_s=2001, peak_bytes_per_s=2 * 1024 * 1024)})
    assert rules(check_run(facts, hot)) == ["kinesis-shard-throughput"]
    fine = Observed(10, streams={"clicks": StreamObserved(peak_records_per_s=2000, peak_bytes_per_s=2 * 1024 * 1024)})
    assert check_run(facts, fine) == []
    on_demand = AppFacts(streams={"clicks": StreamFacts("clicks", shards=2, on_demand=True)})
    assert check_run(on_demand, hot) == []


def test_messages_moved_to_the_dlq_while_throttled() -> None:
    facts = sqs_app()
    observed = Observed(10, functions={"consumer": FunctionObserved(throttles=7)},
                        queues={"jobs": QueueObserved(moved_to_dlq=4)})
    found = check_run(facts, observed)
    assert rules(found) == ["sqs-throttles-to-dlq"]
    assert "4 messages" in found[0].message and "7 times" in found[0].message


def test_async_event_age_near_its_maximum() -> None:
    facts = AppFacts(functions={"worker": FunctionFacts("worker", maximum_event_age_s=60)})
    old = FunctionObserved(invocations=1, duration_count=1, duration_sum_ms=1.0, async_age_max_ms=30_000, busiest_second=1)
    assert "async-event-age" in rules(check_run(facts, Observed(10, {"worker": old})))
    young = FunctionObserved(invocations=1, duration_count=1, duration_sum_ms=1.0, async_age_max_ms=29_999, busiest_second=1)
    assert "async-event-age" not in rules(check_run(facts, Observed(10, {"worker": young})))


def test_observed_from_a_timeline_export() -> None:
    export = {"start": 100, "end": 110, "series": [
        {"namespace": "AWS/Lambda", "metric": "Invocations", "dimensions": {"FunctionName": "f"}, "t": [100, 101], "value": [30, 20]},
        {"namespace": "AWS/Lambda", "metric": "Throttles", "dimensions": {"FunctionName": "f"}, "t": [101], "value": [5]},
        {"namespace": "AWS/Lambda", "metric": "Throttles", "dimensions": {"FunctionName": "f", "Reason": "R"}, "t": [101], "value": [5]},
        {"namespace": "AWS/Lambda", "metric": "ConcurrentExecutions", "dimensions": {"FunctionName": "f"}, "t": [100, 101], "value": [3, 4]},
        {"namespace": "AWS/Lambda", "metric": "Duration", "dimensions": {"FunctionName": "f"}, "summary": {"count": 50, "sum": 500.0}},
        {"namespace": "AWS/Kinesis", "metric": "IncomingBytes", "dimensions": {"StreamName": "s"}, "t": [100, 101], "value": [10, 40]},
        {"namespace": "AWS/SQS", "metric": "NumberOfMessagesMovedToDLQ", "dimensions": {"QueueName": "q"}, "t": [101], "value": [2]},
        {"namespace": "AWS/ApiGateway", "metric": "Count", "dimensions": {"ApiName": "shop", "Stage": "Prod"}, "t": [100], "value": [9]},
        {"namespace": "AWS/ApiGateway", "metric": "Count", "dimensions": {"ApiId": "abc", "Stage": "$default"}, "t": [100], "value": [4]},
    ]}
    seen = from_timeline(export)
    fn = seen.functions["f"]
    assert (seen.seconds, fn.invocations, fn.throttles, fn.peak_concurrency, fn.busiest_second) == (10, 50, 5, 4, 30)
    assert fn.throttles_by_reason == {"R": 5} and fn.average_duration_ms == 10.0
    assert fn.billed_ms_estimate == 525.0
    assert seen.streams["s"].bytes == 50 and seen.streams["s"].peak_bytes_per_s == 40
    assert seen.queues["q"].moved_to_dlq == 2
    assert (seen.apis["shop"].kind, seen.apis["shop"].requests, seen.apis["abc"].kind) == ("REST", 9, "HTTP")


def test_facts_round_trip_through_json() -> None:
    facts = sqs_app(reserved=3, maximum_concurrency=2)
    assert from_json(facts.to_json()) == facts


def test_advise_puts_warnings_first() -> None:
    found = advise(sqs_app(reserved=20, visibility=1))
    assert [f.severity for f in found] == sorted((f.severity for f in found), key=lambda s: s != WARNING)
