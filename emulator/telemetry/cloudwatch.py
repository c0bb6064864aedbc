"""CloudWatch's read API over the timeline: GetMetricData, GetMetricStatistics, ListMetrics.

Requests and answers are plain dicts shaped as the CloudWatch API model names them
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html,
API_GetMetricStatistics.html, API_ListMetrics.html), timestamps as epoch seconds; the
wire protocols (CBOR, JSON, query) are emulator/api/cloudwatch_api.py's business.

As on CloudWatch, a metric is named by its namespace, name and exact set of dimensions;
periods are aligned on StartTime and a period without data is left out. Metric math and
Metrics Insights queries are not emulated: such a query answers InvalidParameterValue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emulator.errors import UserError
from emulator.telemetry import catalog
from emulator.telemetry.timeline import Datum, SeriesKey, Timeline, parse_percentile, series_key, statistic

# GetMetricData: at most 500 queries per call; ListMetrics pages of 500
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListMetrics.html).
MAX_QUERIES = 500
LIST_PAGE = 500
# GetMetricData returns at most 100,800 datapoints per call (same page).
DEFAULT_MAX_DATAPOINTS = 100_800
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


class CloudWatchError(UserError):
    """An error of the CloudWatch API: `code` is CloudWatch's (not Lambda's) error code."""

    status = 400


class InvalidParameterValue(CloudWatchError):
    code = "InvalidParameterValue"


class MissingParameter(CloudWatchError):
    code = "MissingParameter"


class InvalidParameterCombination(CloudWatchError):
    code = "InvalidParameterCombination"


class InvalidNextToken(CloudWatchError):
    code = "InvalidNextToken"


def _required(request: Mapping[str, Any], name: str) -> Any:
    value = request.get(name)
    if value is None:
        raise MissingParameter(f"The parameter {name} is required.")
    return value


def _period(raw: Any) -> int:
    try:
        period = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"The parameter Period must be a whole number of seconds, got {raw!r}.") from None
    if period < 1:
        raise InvalidParameterValue("The parameter Period must be greater than 0.")
    return period


def _time(raw: Any, name: str) -> float:
    if isinstance(raw, (int, float)) and math.isfinite(raw):
        return float(raw)
    raise InvalidParameterValue(f"The parameter {name} must be a timestamp.")


def _key(metric: Mapping[str, Any]) -> SeriesKey:
    namespace = _required(metric, "Namespace")
    name = _required(metric, "MetricName")
    dimensions = {}
    for dimension in metric.get("Dimensions") or ():
        if not isinstance(dimension, Mapping) or "Name" not in dimension or "Value" not in dimension:
            raise InvalidParameterValue("Each dimension needs a Name and a Value.")
        dimensions[str(dimension["Name"])] = str(dimension["Value"])
    return series_key(str(namespace), str(name), dimensions)


def _unit_matches(key: SeriesKey, unit: Any) -> bool:
    if not unit:
        return True
    info = catalog.info(key.namespace, key.metric)
    return info is not None and info.unit == unit


def _check_stat(name: str) -> str:
    if name in STATISTICS or parse_percentile(name) is not None:
        return name
    raise InvalidParameterValue(f"The statistic {name!r} is not supported: use {', '.join(STATISTICS)} or a percentile (p99).")


# -- GetMetricData --------------------------------------------------------------------------
def get_metric_data(timeline: Timeline, request: Mapping[str, Any]) -> dict[str, Any]:
    queries = _required(request, "MetricDataQueries")
    if not isinstance(queries, list) or not queries:
        raise InvalidParameterValue("MetricDataQueries must list at least one query.")
    if len(queries) > MAX_QUERIES:
        raise InvalidParameterValue(f"At most {MAX_QUERIES} MetricDataQueries per call.")
    start = _time(_required(request, "StartTime"), "StartTime")
    end = _time(_required(request, "EndTime"), "EndTime")
    if end <= start:
        raise InvalidParameterValue("The parameter StartTime must be earlier than EndTime.")
    ascending = request.get("ScanBy") == "TimestampAscending"
    budget = int(request.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS)
    results = []
    for query in queries:
        if not isinstance(query, Mapping) or not query.get("Id"):
            raise MissingParameter("Each of MetricDataQueries needs an Id.")
        if query.get("Expression"):
            raise InvalidParameterValue("Metric math and Metrics Insights expressions are not emulated; query a MetricStat.")
        stat_query = query.get("MetricStat")
        if not isinstance(stat_query, Mapping):
            raise MissingParameter(f"Query {query['Id']}: MetricStat is required.")
        if query.get("ReturnData") is False:
            continue
        key = _key(_required(stat_query, "Metric"))
        stat = _check_stat(str(_required(stat_query, "Stat")))
        period = _period(query.get("Period") or stat_query.get("Period"))
        points = timeline.aggregate(key, start, end, period) if _unit_matches(key, stat_query.get("Unit")) else []
        values = [(t, statistic(datum, stat)) for t, datum in points]
        values = [(t, v) for t, v in values if math.isfinite(v)]
        if not ascending:
            values.reverse()
        status = "Complete"
        if len(values) > budget:
            values, status = values[:budget], "PartialData"
        budget -= len(values)
        results.append({
            "Id": query["Id"], "Label": query.get("Label") or key.metric, "StatusCode": status,
            "Timestamps": [float(t) for t, _ in values], "Values": [v for _, v in values],
        })
    return {"MetricDataResults": results, "Messages": []}


# -- GetMetricStatistics --------------------------------------------------------------------
def get_metric_statistics(timeline: Timeline, request: Mapping[str, Any]) -> dict[str, Any]:
    key = _key(request)
    start = _time(_required(request, "StartTime"), "StartTime")
    end = _time(_required(request, "EndTime"), "EndTime")
    period = _period(_required(request, "Period"))
    statistics = [str(s) for s in request.get("Statistics") or ()]
    extended = [str(s) for s in request.get("ExtendedStatistics") or ()]
    if not statistics and not extended:
        raise MissingParameter("Either Statistics or ExtendedStatistics is required.")
    for name in statistics:
        if name not in STATISTICS:
            raise InvalidParameterValue(f"The statistic {name!r} is not one of {', '.join(STATISTICS)}.")
    for name in extended:
        if parse_percentile(name) is None:
            raise InvalidParameterValue(f"The extended statistic {name!r} is not a percentile (p99).")
    info = catalog.info(key.namespace, key.metric)
    unit = request.get("Unit") or (info.unit if info else "None")
    points = timeline.aggregate(key, start, end, period) if _unit_matches(key, request.get("Unit")) else []
    datapoints = [_datapoint(t, datum, statistics, extended, unit) for t, datum in points]
    return {"Label": key.metric, "Datapoints": datapoints}


def _datapoint(t: int, datum: Datum, statistics: list[str], extended: list[str], unit: str) -> dict[str, Any]:
    point: dict[str, Any] = {"Timestamp": float(t), "Unit": unit}
    for name in statistics:
        point[name] = statistic(datum, name)
    if extended:
        point["ExtendedStatistics"] = {name: statistic(datum, name) for name in extended}
    return point


# -- ListMetrics ----------------------------------------------------------------------------
def list_metrics(timeline: Timeline, request: Mapping[str, Any]) -> dict[str, Any]:
    namespace = request.get("Namespace")
    name = request.get("MetricName")
    filters = []
    for dimension in request.get("Dimensions") or ():
        if not isinstance(dimension, Mapping) or "Name" not in dimension:
            raise InvalidParameterValue("Each dimension filter needs a Name.")
        filters.append((str(dimension["Name"]), None if dimension.get("Value") is None else str(dimension["Value"])))
    keys = [key for key in timeline.keys()
            if (not namespace or key.namespace == namespace) and (not name or key.metric == name)
            and all(_dimension_matches(key, f) for f in filters)]
    start = 0
    token = request.get("NextToken")
    if token:
        try:
            start = int(str(token))
        except ValueError:
            raise InvalidNextToken("The NextToken is not valid.") from None
        if not 0 <= start <= len(keys):
            raise InvalidNextToken("The NextToken is not valid.")
    page = keys[start:start + LIST_PAGE]
    body: dict[str, Any] = {"Metrics": [{"Namespace": k.namespace, "MetricName": k.metric,
                                         "Dimensions": [{"Name": n, "Value": v} for n, v in k.dims]} for k in page]}
    if start + LIST_PAGE < len(keys):
        body["NextToken"] = str(start + LIST_PAGE)
    return body


def _dimension_matches(key: SeriesKey, wanted: tuple[str, str | None]) -> bool:
    name, value = wanted
    return any(n == name and (value is None or v == value) for n, v in key.dims)


OPERATIONS = {
    "GetMetricData": get_metric_data,
    "GetMetricStatistics": get_metric_statistics,
    "ListMetrics": list_metrics,
}
