"""Thresholds (emulator/load/thresholds.py) and what they see of a report (emulator/load/report.py)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from emulator.load.report import ReportMetrics
from emulator.load.thresholds import SeriesData, ThresholdError, evaluate, parse
from emulator.telemetry.histogram import Distribution


def dist(*values: float) -> Distribution:
    out = Distribution()
    for value in values:
        out.add(value)
    return out


class Fake:
    def __init__(self, series: Mapping[tuple[str, tuple[tuple[str, str], ...]], SeriesData]) -> None:
        self._series = series

    def series(self, metric: str, dimensions: Mapping[str, str]) -> SeriesData | None:
        return self._series.get((metric, tuple(sorted(dimensions.items()))))

    def known(self, metric: str) -> bool:
        return metric in {"Duration", "Throttles", "Invocations", "IteratorAge", "DLQ", "Latency", "client.Requests",
                          "client.Throttled", "Errors", "ConcurrentExecutions"}


def counter(*values: float) -> SeriesData:
    return SeriesData("counter", "Count", tuple(values), None)


def test_parse() -> None:
    t = parse("p99(Duration{FunctionName=hello, Reason='x'}) < 200ms")
    assert (t.aggregate, t.percentile, t.metric, t.dimensions, t.op, t.value, t.unit) == (
        "p99", 99.0, "Duration", (("FunctionName", "hello"), ("Reason", "x")), "<", 200.0, "ms")
    assert parse("p99.9(Latency) <= 1.5s").percentile == 99.9
    assert parse("rate(Throttles) < 1%").unit == "%"
    assert parse("count(DLQ) == 0").op == "=="
    assert parse("  max(client.Latency)>=3 ").metric == "client.Latency"


@pytest.mark.parametrize("text", ["p99 Duration < 3", "median(Duration) < 3", "p0(Duration) < 1", "max(Duration) < 3%",
                                  "count(Throttles{FunctionName}) == 0", "max(Duration) ~ 3", "max(Duration) < fast"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ThresholdError):
        parse(text)


def test_percentile_with_units_in_the_metrics_own_unit() -> None:
    data = Fake({("Duration", ()): SeriesData("distribution", "Milliseconds", (), dist(*range(1, 101)))})
    assert evaluate(parse("p99(Duration) < 200ms"), data).ok
    assert not evaluate(parse("p99(Duration) < 50ms"), data).ok
    assert evaluate(parse("p99(Duration) < 0.2s"), data).ok
    outcome = evaluate(parse("p50(Duration) > 0.01s"), data)
    assert outcome.ok and outcome.observed == pytest.approx(0.05, rel=0.03)  # shown in seconds, as written
    assert evaluate(parse("max(Duration) == 100"), data).ok and evaluate(parse("count(Duration) == 100"), data).ok
    assert evaluate(parse("avg(Duration) == 50.5"), data).ok


def test_rate_of_throttles_over_attempts() -> None:
    data = Fake({("Throttles", ()): counter(1, 2), ("Invocations", ()): counter(50, 47)})
    outcome = evaluate(parse("rate(Throttles) < 5%"), data)
    assert outcome.ok and outcome.observed == pytest.approx(3.0)  # 3 of 100 attempts
    assert not evaluate(parse("rate(Throttles) < 2%"), data).ok
    assert evaluate(parse("rate(Throttles) < 0.05"), data).ok


def test_rate_by_reason_divides_by_all_attempts_of_the_function() -> None:
    reason = (("FunctionName", "f"), ("Reason", "R"))
    data = Fake({("Throttles", reason): counter(18), ("Throttles", (("FunctionName", "f"),)): counter(18),
                 ("Invocations", (("FunctionName", "f"),)): counter(2)})
    outcome = evaluate(parse("rate(Throttles{FunctionName=f, Reason=R}) == 90%"), data)
    assert outcome.ok, outcome.message


def test_counts_of_events_and_levels() -> None:
    data = Fake({("IteratorAge", ()): SeriesData("gauge", "Milliseconds", (10.0, 70_000.0, 5.0), None),
                 ("ConcurrentExecutions", ()): SeriesData("gauge", "Count", (1.0, 2.0), None)})
    assert not evaluate(parse("max(IteratorAge) < 60s"), data).ok
    assert evaluate(parse("max(IteratorAge) < 71s"), data).ok
    assert evaluate(parse("min(IteratorAge) == 5ms"), data).ok
    assert evaluate(parse("count(DLQ) == 0"), data).ok  # known, no data: nothing arrived
    outcome = evaluate(parse("count(ConcurrentExecutions) == 2"), data)
    assert not outcome.ok and "level" in outcome.message
    assert "not a time" in evaluate(parse("max(ConcurrentExecutions) < 2s"), data).message


def test_unknown_metric_and_missing_data_fail() -> None:
    data = Fake({})
    assert "unknown metric" in evaluate(parse("max(Nope) < 1"), data).message
    outcome = evaluate(parse("p99(Duration) < 200ms"), data)
    assert not outcome.ok and "no data" in outcome.message
    assert "rate() is defined for" in evaluate(parse("rate(Duration) < 1%"), data).message


# -- a report as thresholds see it ------------------------------------------------------------
def _series(namespace: str, metric: str, dims: dict, kind: str, t: list, values: list, unit: str = "Count") -> dict:
    out = {"namespace": namespace, "metric": metric, "dimensions": dims, "kind": kind, "unit": unit, "t": t, "summary": {}}
    if kind == "distribution":
        out["summary"]["histogram"] = dist(*values).to_json()
    else:
        out["value"] = values
    return out


def report() -> dict:
    series = [
        _series("AWS/Lambda", "Throttles", {}, "counter", [1, 2], [3, 4]),
        _series("AWS/Lambda", "Throttles", {"FunctionName": "a"}, "counter", [1, 2], [3, 0]),
        _series("AWS/Lambda", "Throttles", {"FunctionName": "b"}, "counter", [2], [4]),
        _series("AWS/Lambda", "Throttles", {"FunctionName": "a", "Reason": "R"}, "counter", [1], [3]),
        _series("AWS/Lambda", "Invocations", {}, "counter", [1, 2], [10, 10]),
        _series("AWS/Lambda", "Duration", {"FunctionName": "a"}, "distribution", [1], [1.0, 2.0], "Milliseconds"),
        _series("AWS/Lambda", "Duration", {"FunctionName": "b"}, "distribution", [1], [100.0, 200.0], "Milliseconds"),
        _series("AWS/Lambda", "IteratorAge", {"EventSourceMappingUUID": "u"}, "gauge", [1, 2], [5.0, 9.0], "Milliseconds"),
        _series("AWS/Lambda", "IteratorAge", {"EventSourceMappingUUID": "u", "ShardId": "s"}, "gauge", [1], [99.0], "Milliseconds"),
        _series("AWS/SQS", "NumberOfMessagesMovedToDLQ", {"QueueName": "q"}, "counter", [1, 2], [2, 3]),
        _series("AWS/Lambda", "DeadLetterDeliveries", {"FunctionName": "a"}, "counter", [2], [1]),
    ]
    client_series = {"second": [0, 1], "sent": [5, 5], "offered": [5, 6], "dropped": [0, 1], "responses": [5, 5], "ok": [4, 5],
                     "throttled": [1, 0], "errors": [0, 0], "throttles_by_reason": {"R": [1, 0]}, "errors_by_kind": {}}
    return {"client": {"series": client_series, "latency_histogram": dist(10.0, 20.0).to_json()},
            "emulator": {"timeline": {"series": series}}}


def test_report_picks_the_least_detailed_series_so_nothing_counts_twice() -> None:
    data = ReportMetrics(report())
    assert sum(data.series("Throttles", {}).values) == 7  # the account's series, not a + b + (a, R)
    assert sum(data.series("Throttles", {"Reason": "R"}).values) == 3
    assert sum(data.series("Throttles", {"FunctionName": "a"}).values) == 3
    assert data.series("Duration", {}).dist.count == 4  # merged over the functions
    assert data.series("IteratorAge", {}).values == (5.0, 9.0)  # the mapping's, not the shard's
    assert evaluate(parse("max(IteratorAge{ShardId=s}) == 99ms"), data).ok
    assert evaluate(parse("rate(Throttles) < 26%"), data).ok  # 7 / (20 + 7)


def test_report_dlq_counts_redrives_and_dead_letters() -> None:
    data = ReportMetrics(report())
    assert evaluate(parse("count(DLQ) == 6"), data).ok
    assert not evaluate(parse("count(DLQ) == 0"), data).ok


def test_report_client_metrics() -> None:
    data = ReportMetrics(report())
    assert evaluate(parse("count(Requests) == 10"), data).ok
    assert evaluate(parse("count(client.Throttled{Reason=R}) == 1"), data).ok
    assert evaluate(parse("rate(Dropped) < 10%"), data).ok  # 1 of 11 offered
    assert evaluate(parse("rate(Failed) == 10%"), data).ok
    assert evaluate(parse("p50(Latency) < 15ms"), data).ok


def test_names_resolve_to_the_generator_the_functions_or_a_namespace() -> None:
    base = report()
    base["emulator"]["timeline"]["series"] += [
        _series("AWS/ApiGateway", "Latency", {"ApiName": "shop", "Stage": "Prod"}, "gauge", [1], [900.0], "Milliseconds"),
        _series("AWS/ApiGateway", "Count", {"ApiName": "shop", "Stage": "Prod"}, "counter", [1, 2], [6, 4]),
        _series("AWS/ApiGateway", "Count", {"ApiId": "h1", "Stage": "$default"}, "counter", [1], [5]),
        _series("AWS/ApiGateway", "5XXError", {"ApiName": "shop", "Stage": "Prod"}, "counter", [1], [1]),
        _series("AWS/ApiGateway", "Throttles", {"ApiName": "shop", "Stage": "Prod", "Layer": "stage"}, "counter", [1], [50]),
        _series("AWS/Lambda", "Errors", {"FunctionName": "a"}, "counter", [1], [2]),
    ]
    data = ReportMetrics(base)
    assert evaluate(parse("p50(Latency) < 15ms"), data).ok  # the generator's, not the gateway's
    assert evaluate(parse("max(AWS/ApiGateway:Latency) == 900ms"), data).ok
    assert evaluate(parse("count(AWS/ApiGateway:Count) == 15"), data).ok  # a REST and an HTTP API's stages add up
    assert evaluate(parse("rate(5XXError{ApiName=shop}) == 10%"), data).ok  # 1 of the REST stage's 10
    assert evaluate(parse("count(Throttles) == 7"), data).ok  # AWS/Lambda's before AWS/ApiGateway's
    assert evaluate(parse("count(Errors) == 2"), data).ok and evaluate(parse("count(client.Errors) == 0"), data).ok
