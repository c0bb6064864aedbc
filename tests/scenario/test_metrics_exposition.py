"""The emulator's figures where tools look: Prometheus text (parsed with prometheus_client's
own parser), and CloudWatch's read API on the one endpoint in each of its wire protocols
(boto3's CBOR, JSON, query), with exact throttle counts held by a gate."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from core_testkit import GATED_OK_SOURCE, Gate, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

CALLS = 12
RESERVED = 3
REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
AUTH = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """An emulator after CALLS calls of a function with reserved concurrency RESERVED, the
    admitted ones held at a gate until every other call was throttled."""
    template = {"Gated": inline_function(GATED_OK_SOURCE, FunctionName="gated", ReservedConcurrentExecutions=RESERVED, Timeout=60)}
    with running_emulator(template, log_invocations=False) as handle:
        gate = Gate(tmp_path_factory.mktemp("gate"))
        lam = handle.lambda_client

        def call(_: int) -> str:
            try:
                lam.invoke(FunctionName="gated", Payload=json.dumps({"gate": gate.path}))
                return "ok"
            except ClientError as error:
                return error.response.get("Reason", "?")

        with ThreadPoolExecutor(CALLS) as pool:
            futures = [pool.submit(call, i) for i in range(CALLS)]
            try:
                assert wait_until(lambda: gate.arrived() == RESERVED and sum(f.done() for f in futures) == CALLS - RESERVED)
            finally:
                gate.open()
            outcomes = [f.result() for f in futures]
        assert outcomes.count("ok") == RESERVED and outcomes.count(REASON) == CALLS - RESERVED
        handle.run(_tick(handle))  # the sampler's second, now: the account's gauges have a sample
        yield handle


async def _tick(handle: EmulatorHandle) -> None:
    assert handle.server is not None and handle.server.sampler is not None
    await handle.server.sampler.sample()


def get(handle: EmulatorHandle, path: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(handle.url + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_prometheus_text_parses_with_the_exact_counts(throttled: EmulatorHandle) -> None:
    content_type, text = get(throttled, "/metrics")
    assert content_type.startswith("text/plain")
    found = samples(text)
    assert found[("lambda_invocations_total", (("function_name", "gated"),))] == RESERVED
    assert found[("lambda_throttles_total", (("function_name", "gated"), ("reason", REASON)))] == CALLS - RESERVED
    assert found[("lambda_account_concurrency_limit", ())] == 1000
    assert ("lambda_duration_milliseconds", (("function_name", "gated"), ("quantile", "0.99"))) in found


def test_the_metrics_endpoint_negotiates(throttled: EmulatorHandle) -> None:
    content_type, body = get(throttled, "/_emulator/metrics")
    assert content_type.startswith("application/json")
    assert json.loads(body)["functions"]["gated"]["Throttles"] == CALLS - RESERVED
    content_type, text = get(throttled, "/_emulator/metrics", accept="text/plain;version=0.0.4")
    assert content_type.startswith("text/plain") and samples(text)[("lambda_invocations_total", (("function_name", "gated"),))] == RESERVED
    content_type, text = get(throttled, "/metrics", accept="application/openmetrics-text;version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and text.rstrip().endswith("# EOF")


def window() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=1)


def test_boto3_get_metric_data_returns_the_throttles(throttled: EmulatorHandle) -> None:
    cloudwatch = throttled.client("cloudwatch")
    start, end = window()
    dims = [{"Name": "FunctionName", "Value": "gated"}]
    answer = cloudwatch.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        {"Id": "throttles", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Dimensions": dims},
                                           "Period": 1, "Stat": "Sum"}},
        {"Id": "by_reason", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Throttles",
                                                      "Dimensions": dims + [{"Name": "Reason", "Value": REASON}]},
                                           "Period": 60, "Stat": "Sum"}},
        {"Id": "invocations", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": dims},
                                             "Period": 60, "Stat": "Sum"}},
        {"Id": "concurrency", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "ConcurrentExecutions",
                                                        "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
    ])
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert sum(results["throttles"]["Values"]) == CALLS - RESERVED
    assert all(isinstance(t, dt.datetime) for t in results["throttles"]["Timestamps"])
    assert sum(results["by_reason"]["Values"]) == CALLS - RESERVED
    assert sum(results["invocations"]["Values"]) == RESERVED
    assert max(results["concurrency"]["Values"]) == RESERVED
    statistics = cloudwatch.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Duration", Dimensions=dims,
                                                  StartTime=start, EndTime=end, Period=600, Statistics=["SampleCount"],
                                                  ExtendedStatistics=["p99"])
    assert sum(p["SampleCount"] for p in statistics["Datapoints"]) == RESERVED
    listed = cloudwatch.list_metrics(Namespace="AWS/Lambda", MetricName="Throttles")["Metrics"]
    assert {"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Dimensions": dims + [{"Name": "Reason", "Value": REASON}]} in listed
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def _post(handle: EmulatorHandle, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(handle.url + "/", data=body, method="POST", headers={"Authorization": AUTH, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_query_and_json_protocols(throttled: EmulatorHandle) -> None:
    start, end = window()
    form = ("Action=GetMetricData&Version=2010-08-01&StartTime={}&EndTime={}&ScanBy=TimestampAscending"
            "&MetricDataQueries.member.1.Id=t&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FLambda"
            "&MetricDataQueries.member.1.MetricStat.Metric.MetricName=Throttles"
            "&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=FunctionName"
            "&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=gated"
            "&MetricDataQueries.member.1.MetricStat.Period=1&MetricDataQueries.member.1.MetricStat.Stat=Sum").format(
        start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    status, body = _post(throttled, form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"<GetMetricDataResponse" in body
    values = re.search(rb"<Values>(.*?)</Values>", body).group(1)  # type: ignore[union-attr]
    assert sum(float(v) for v in re.findall(rb"<member>([^<]+)</member>", values)) == CALLS - RESERVED
    request = {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "gated"}],
               "StartTime": start.timestamp(), "EndTime": end.timestamp(), "Period": 600, "Statistics": ["Sum"]}
    status, body = _post(throttled, json.dumps(request).encode(), {"Content-Type": "application/x-amz-json-1.0",
                                                                    "X-Amz-Target": "GraniteServiceVersion20100801.GetMetricStatistics"})
    assert status == 200 and sum(p["Sum"] for p in json.loads(body)["Datapoints"]) == RESERVED
    status, body = _post(throttled, b"Action=GetMetricData&Version=2010-08-01", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"<Code>MissingParameter</Code>" in body


def test_other_cloudwatch_calls_still_reach_the_backend(throttled: EmulatorHandle) -> None:
    status, body = _post(throttled, b"Action=ListDashboards&Version=2010-08-01", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"ListDashboards" in body


def test_the_timeline_endpoint(throttled: EmulatorHandle) -> None:
    _, body = get(throttled, "/_emulator/timeline?since=-600")
    export = json.loads(body)
    names = {(s["metric"], tuple(s["dimensions"].items())) for s in export["series"]}
    assert ("Throttles", (("FunctionName", "gated"), ("Reason", REASON))) in names
    assert export["now"] >= export["end"] - 1 >= export["start"]
    request = urllib.request.Request(throttled.url + "/_emulator/timeline?since=soon")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    caught.value.close()
    assert caught.value.code == 400


def test_with_the_timeline_off_metrics_still_serve(tmp_path: Path) -> None:
    template = {"Echo": inline_function("def handler(e, c):\n    return e\n", FunctionName="echo")}
    with running_emulator(template, timeline=False, backend="none") as handle:
        assert handle.invoke("echo", {"a": 1}) == {"a": 1}
        assert handle.server is not None and handle.server.sampler is None and handle.metrics()["functions"]["echo"]["Invocations"] == 1
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(handle.url + "/_emulator/timeline", timeout=10)
        caught.value.close()
        assert caught.value.code == 400
        assert samples(get(handle, "/metrics")[1])[("lambda_invocations_total", (("function_name", "echo"),))] == 1


def test_a_reset_samples_the_levels_again_at_once() -> None:
    """A reset clears the timeline, this second's samples too; the levels are taken again as
    it ends, so a run that starts and ends within that second still sees its function's
    concurrency limit (a report showed none about one run in eight)."""
    template = {"Echo": inline_function("def handler(e, c):\n    return e\n", FunctionName="echo", ReservedConcurrentExecutions=4)}
    with running_emulator(template, backend="none") as handle:
        for _ in range(3):
            handle.reset()
            export = json.loads(get(handle, "/_emulator/timeline?since=-1")[1])
            limits = [s for s in export["series"] if s["metric"] == "ConcurrencyLimit" and s["dimensions"] == {"FunctionName": "echo"}]
            assert limits and limits[0]["summary"]["max"] == 4, export["series"]
