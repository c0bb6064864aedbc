"""The timeline (emulator/telemetry/): rings, distributions, per-second frames, queries and
the CloudWatch read API, on a virtual clock."""

from __future__ import annotations

import random

import pytest

from emulator.clock import VirtualClock
from emulator.functions.metrics import Metrics
from emulator.telemetry import cloudwatch
from emulator.telemetry.histogram import Distribution
from emulator.telemetry.timeline import SampleRing, Timeline, aligned_start, series_key, statistic

T0 = 1_700_000_000  # VirtualClock's wall clock at its start


class Result:
    def __init__(self, duration_ms: float, error: bool = False) -> None:
        self.duration_ms = duration_ms
        self.function_error = "Unhandled" if error else None
        self.error_type = "Exception" if error else None


def setup() -> tuple[VirtualClock, Timeline, Metrics]:
    clock = VirtualClock()
    timeline = Timeline(clock.wall, retention_s=100)
    return clock, timeline, Metrics(timeline)


def key(metric: str, **dims: str) -> object:
    return series_key("AWS/Lambda", metric, dims)


def values(timeline: Timeline, metric: str, stat: str = "Sum", **dims: str) -> list[tuple[int, float]]:
    return [(t - T0, statistic(d, stat)) for t, d in timeline.points(key(metric, **dims))]


# -- distributions ----------------------------------------------------------------------------
def test_percentiles_are_within_the_bucket_width() -> None:
    rng = random.Random(5)
    samples = [rng.lognormvariate(0, 2) for _ in range(20_000)]
    dist = Distribution()
    for value in samples:
        dist.add(value)
    ordered = sorted(samples)
    for p in (50, 90, 99, 99.9):
        exact = ordered[int(len(ordered) * p / 100) - 1]
        assert dist.percentile(p) == pytest.approx(exact, rel=0.025)
    assert dist.percentile(100) == max(samples) and dist.low == min(samples) and dist.count == 20_000
    assert dist.mean == pytest.approx(sum(samples) / len(samples))


def test_distributions_merge_and_travel_as_json() -> None:
    a, b, both = Distribution(), Distribution(), Distribution()
    for i in range(1, 500):
        (a if i % 2 else b).add(i / 7)
        both.add(i / 7)
    merged = Distribution.merged([a, Distribution.from_json(b.to_json())])
    assert merged.buckets == both.buckets and merged.count == both.count and merged.high == both.high
    assert Distribution().percentile(50) != Distribution().percentile(50)  # NaN when empty
    zero = Distribution()
    zero.add(0.0)
    assert zero.percentile(50) == 0.0


# -- rings ------------------------------------------------------------------------------------
def test_sample_ring_keeps_the_last_seconds_and_folds_a_second() -> None:
    ring = SampleRing(3, summing=False)
    for second, value in [(1, 5.0), (1, 7.0), (1, 6.0), (2, 1.0), (3, 2.0), (4, 3.0)]:
        ring.record(second, value)
    assert list(ring.items()) == [(2, 1.0), (3, 2.0), (4, 3.0)]  # bounded: the oldest went
    counts = SampleRing(2, summing=True)
    for second in (5, 5, 5, 6):
        counts.record(second, 1.0)
    assert list(counts.items()) == [(5, 3.0), (6, 1.0)]


def test_function_frames_are_bounded_by_the_retention() -> None:
    clock = VirtualClock()
    timeline = Timeline(clock.wall, retention_s=5)
    series = timeline.function("f")
    for _ in range(50):
        series.invocation(1.0, False, False, None)
        clock.advance(1)
    assert len(series.ring) == 5
    assert [t for t, _ in timeline.points(key("Invocations", FunctionName="f"))] == [T0 + s for s in range(44, 50)]


# -- the invoke path ---------------------------------------------------------------------------
def test_events_land_in_their_second() -> None:
    clock, timeline, metrics = setup()
    metrics.record_invocation("f", Result(2.0), cold=True, init_ms=100.0)
    metrics.record_invocation("f", Result(4.0, error=True), cold=False)
    metrics.record_throttle("f", "ReservedFunctionConcurrentInvocationLimitExceeded")
    clock.advance(1.5)
    metrics.record_invocation("f", Result(8.0), cold=False)
    metrics.record_throttle("f", "ConcurrentInvocationLimitExceeded")
    metrics.record_throttle("g", "ConcurrentInvocationLimitExceeded")
    assert values(timeline, "Invocations", FunctionName="f") == [(0, 2), (1, 1)]
    assert values(timeline, "Errors", FunctionName="f") == [(0, 1), (1, 0)]
    assert values(timeline, "ColdStarts", FunctionName="f") == [(0, 1), (1, 0)]
    assert values(timeline, "Throttles", FunctionName="f") == [(0, 1), (1, 1)]
    assert values(timeline, "Throttles", FunctionName="f", Reason="ConcurrentInvocationLimitExceeded") == [(0, 0), (1, 1)]
    assert values(timeline, "Throttles") == [(0, 1), (1, 2)]  # the account: every function
    assert values(timeline, "Duration", "Maximum", FunctionName="f") == [(0, 4.0), (1, 8.0)]
    assert values(timeline, "Duration", "SampleCount") == [(0, 2), (1, 1)]
    assert values(timeline, "InitDuration", "Average", FunctionName="f") == [(0, 100.0)]


def test_concurrency_peaks_count_in_the_second_they_close_and_long_runs_show_every_second() -> None:
    clock, timeline, metrics = setup()
    for _ in range(3):
        metrics.concurrency_changed("f", 1)
    metrics.concurrency_changed("f", -1)
    metrics.concurrency_changed("g", 1)
    timeline.tick()  # the sampler, each second
    clock.advance(1)
    timeline.tick()
    clock.advance(1)
    timeline.tick()
    clock.advance(0.5)
    metrics.concurrency_changed("f", -1)  # f's two end half-way through second 2
    metrics.concurrency_changed("f", -1)
    clock.advance(0.5)
    timeline.tick()
    assert values(timeline, "ConcurrentExecutions", "Maximum", FunctionName="f") == [(0, 3), (1, 2), (2, 2)]
    assert values(timeline, "ConcurrentExecutions", "Maximum", FunctionName="g") == [(0, 1), (1, 1), (2, 1), (3, 1)]
    # The account's: the most at once between two ticks, in the second the interval began.
    assert values(timeline, "ConcurrentExecutions", "Maximum") == [(0, 3), (1, 3), (2, 3)]


def test_async_events() -> None:
    clock, timeline, metrics = setup()
    metrics.async_received("f")
    metrics.async_attempt("f", 0.0)
    clock.advance(60)
    metrics.async_attempt("f", 60_000.0)
    metrics.async_failed("f", "RetriesExhausted")
    metrics.delivery_failed("f", dead_letter=True)
    metrics.delivered("f", dead_letter=True, reason="RetriesExhausted")
    metrics.delivery_failed("f", dead_letter=False)
    assert values(timeline, "AsyncEventsReceived", FunctionName="f") == [(0, 1), (60, 0)]
    assert values(timeline, "AsyncEventAge", "Maximum", FunctionName="f") == [(0, 0.0), (60, 60_000.0)]
    assert values(timeline, "AsyncEventsDropped", FunctionName="f")[-1] == (60, 1)
    assert values(timeline, "DeadLetterErrors", FunctionName="f")[-1] == (60, 1)
    assert values(timeline, "DeadLetterDeliveries", FunctionName="f")[-1] == (60, 1)
    assert values(timeline, "DestinationDeliveryFailures", FunctionName="f")[-1] == (60, 1)
    assert metrics.of("f").dead_letter.failures == 1 and metrics.of("f").dead_letter.delivered == 1


def test_reset_forgets_the_timeline() -> None:
    _, timeline, metrics = setup()
    metrics.record_invocation("f", Result(1.0), cold=False)
    metrics.reset()
    assert timeline.keys() == []
    metrics.record_invocation("f", Result(1.0), cold=False)
    assert values(timeline, "Invocations", FunctionName="f") == [(0, 1)]


def test_without_a_timeline_metrics_work_as_before() -> None:
    metrics = Metrics()
    metrics.concurrency_changed("f", 1)
    metrics.record_invocation("f", Result(1.0), cold=True, init_ms=3.0)
    metrics.concurrency_changed("f", -1)
    assert metrics.of("f").invocations == 1 and metrics.of("f").series is None


# -- periods and export --------------------------------------------------------------------------
def test_periods_align_as_cloudwatch_rounds_start_time() -> None:
    assert aligned_start(T0 + 125.7, 60) == T0 + 120 - (T0 % 60)  # down to a whole minute
    assert aligned_start(T0 + 7, 5) == T0 + 5 - (T0 % 5)
    assert aligned_start(T0 + 7.3, 1) == T0 + 7
    clock, timeline, metrics = setup()
    for second in range(10):
        for _ in range(second + 1):
            metrics.record_invocation("f", Result(float(second)), cold=False)
        clock.advance(1)
    points = timeline.aggregate(key("Invocations", FunctionName="f"), T0, T0 + 10, 5)
    assert [(t - T0, statistic(d, "Sum"), statistic(d, "SampleCount"), statistic(d, "Maximum")) for t, d in points] == [
        (0, 15.0, 5.0, 5.0), (5, 40.0, 5.0, 10.0)]
    durations = timeline.aggregate(key("Duration", FunctionName="f"), T0, T0 + 10, 10)
    assert statistic(durations[0][1], "SampleCount") == 55
    assert statistic(durations[0][1], "p50") == pytest.approx(6.0, rel=0.02)


def test_export_carries_per_second_values_and_a_summary() -> None:
    clock, timeline, metrics = setup()
    metrics.record_invocation("f", Result(2.0), cold=False)
    clock.advance(1)
    metrics.record_invocation("f", Result(4.0), cold=False)
    timeline.record_gauge(series_key("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "q"}), 7)
    export = timeline.export(T0, T0 + 2)
    by_name = {(s["metric"], tuple(s["dimensions"].items())): s for s in export["series"]}
    invocations = by_name[("Invocations", (("FunctionName", "f"),))]
    assert invocations["t"] == [T0, T0 + 1] and invocations["value"] == [1, 1] and invocations["summary"]["sum"] == 2
    duration = by_name[("Duration", (("FunctionName", "f"),))]
    assert duration["kind"] == "distribution" and duration["max"] == [2.0, 4.0]
    assert Distribution.from_json(duration["summary"]["histogram"]).count == 2
    queue = by_name[("ApproximateNumberOfMessagesVisible", (("QueueName", "q"),))]
    assert queue["value"] == [7.0] and queue["unit"] == "Count" and queue["aws"]
    assert (export["start"], export["end"]) == (T0, T0 + 2)


# -- the CloudWatch read API --------------------------------------------------------------------
def throttled_timeline() -> Timeline:
    clock, timeline, metrics = setup()
    for second in range(3):
        for _ in range(second + 1):
            metrics.record_throttle("f", "ReservedFunctionConcurrentInvocationLimitExceeded")
        metrics.record_invocation("f", Result(10.0 * (second + 1)), cold=False)
        clock.advance(1)
    return timeline


def query(metric: str, stat: str, period: int, dims: dict | None = None, qid: str = "q") -> dict:
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                                                 "Dimensions": [{"Name": k, "Value": v} for k, v in (dims or {}).items()]},
                                      "Period": period, "Stat": stat}}


def test_get_metric_data() -> None:
    timeline = throttled_timeline()
    answer = cloudwatch.get_metric_data(timeline, {
        "MetricDataQueries": [query("Throttles", "Sum", 1, {"FunctionName": "f"}), query("Throttles", "Sum", 60, qid="all"),
                              query("Duration", "p99", 1, {"FunctionName": "f"}, "d")],
        "StartTime": T0, "EndTime": T0 + 60, "ScanBy": "TimestampAscending"})
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert results["q"]["Timestamps"] == [T0, T0 + 1, T0 + 2] and results["q"]["Values"] == [1, 2, 3]
    assert results["all"]["Values"] == [6] and results["all"]["StatusCode"] == "Complete"
    assert results["d"]["Values"] == pytest.approx([10, 20, 30], rel=0.02)
    descending = cloudwatch.get_metric_data(timeline, {"MetricDataQueries": [query("Throttles", "Sum", 1, {"FunctionName": "f"})],
                                                       "StartTime": T0, "EndTime": T0 + 60})
    assert descending["MetricDataResults"][0]["Values"] == [3, 2, 1]  # TimestampDescending by default


@pytest.mark.parametrize(("request_", "error"), [
    ({"StartTime": T0, "EndTime": T0 + 1}, cloudwatch.MissingParameter),
    ({"MetricDataQueries": [{"Id": "e", "Expression": "SUM(METRICS())"}], "StartTime": T0, "EndTime": T0 + 1},
     cloudwatch.InvalidParameterValue),
    ({"MetricDataQueries": [query("Throttles", "Median", 1)], "StartTime": T0, "EndTime": T0 + 1}, cloudwatch.InvalidParameterValue),
    ({"MetricDataQueries": [query("Throttles", "Sum", 0)], "StartTime": T0, "EndTime": T0 + 1}, cloudwatch.InvalidParameterValue),
    ({"MetricDataQueries": [query("Throttles", "Sum", 1)], "StartTime": T0 + 1, "EndTime": T0}, cloudwatch.InvalidParameterValue),
])
def test_get_metric_data_refuses(request_: dict, error: type) -> None:
    with pytest.raises(error):
        cloudwatch.get_metric_data(throttled_timeline(), request_)


def test_get_metric_statistics_and_list_metrics() -> None:
    timeline = throttled_timeline()
    answer = cloudwatch.get_metric_statistics(timeline, {
        "Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
        "StartTime": T0, "EndTime": T0 + 60, "Period": 60, "Statistics": ["SampleCount", "Maximum"], "ExtendedStatistics": ["p50"]})
    [point] = answer["Datapoints"]
    assert (point["SampleCount"], point["Maximum"], point["Unit"]) == (3, 30.0, "Milliseconds")
    assert point["ExtendedStatistics"]["p50"] == pytest.approx(20.0, rel=0.02)
    listed = cloudwatch.list_metrics(timeline, {"Namespace": "AWS/Lambda", "MetricName": "Throttles",
                                                "Dimensions": [{"Name": "Reason"}]})
    assert listed["Metrics"] == [{"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Dimensions": [
        {"Name": "FunctionName", "Value": "f"}, {"Name": "Reason", "Value": "ReservedFunctionConcurrentInvocationLimitExceeded"}]}]
    everything = cloudwatch.list_metrics(timeline, {})
    assert {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": []} in everything["Metrics"]
    assert "NextToken" not in everything
    with pytest.raises(cloudwatch.InvalidNextToken):
        cloudwatch.list_metrics(timeline, {"NextToken": "x"})
