"""The emulator's figures in Prometheus's text format, through prometheus_client.

One `CollectorRegistry` per server (never the library's global one: two emulators in one
process, as the pytest plugin runs them, must not mix). At each scrape the caller hands
the current /_emulator/metrics snapshot to `render`; the collector turns it into metric
families: cumulative counters as `*_total`, levels as gauges, and from the timeline the
handler Duration quantiles of the last minute and the latest queue and stream samples.
Names are CloudWatch's in Prometheus's snake case, with `function_name`, `reason`,
`event_source_mapping_uuid`, `queue_name`, `stream_name` labels (docs/timeline.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from emulator.telemetry import catalog
from emulator.telemetry.timeline import Timeline, series_key

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Duration quantiles cover this many seconds back from the scrape.
RECENT_WINDOW_S = 60
QUANTILES = (0.5, 0.9, 0.99)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# /_emulator/metrics per-function counters -> Prometheus counter (without _total).
_FUNCTION_COUNTERS = (
    ("Invocations", "lambda_invocations"), ("Errors", "lambda_errors"), ("Timeouts", "lambda_timeouts"),
    ("ColdStarts", "lambda_cold_starts"), ("AsyncEventsReceived", "lambda_async_events_received"),
    ("AsyncEventsRetried", "lambda_async_events_retried"), ("AsyncEventsDropped", "lambda_async_events_dropped"),
    ("DeadLetterErrors", "lambda_dead_letter_errors"), ("DestinationDeliveryFailures", "lambda_destination_delivery_failures"),
    ("ProvisionedConcurrencyInvocations", "lambda_provisioned_concurrency_invocations"),
    ("ProvisionedConcurrencySpilloverInvocations", "lambda_provisioned_concurrency_spillover_invocations"),
)
_ACCOUNT_GAUGES = (
    ("account_in_flight", "lambda_concurrent_executions", "executions running now, all functions"),
    ("claimed_concurrency", "lambda_claimed_account_concurrency", "ClaimedAccountConcurrency"),
    ("unreserved_in_flight", "lambda_unreserved_concurrent_executions", "UnreservedConcurrentExecutions"),
    ("account_limit", "lambda_account_concurrency_limit", "the account's concurrency limit"),
    ("unreserved_limit", "lambda_unreserved_concurrency_limit", "the unreserved pool"),
)
_MAPPING_COUNTERS = (
    (("MessagesReceived", "RecordsRead"), "lambda_esm_polled_events"),
    (("InvokedEventCount",), "lambda_esm_invoked_events"),
    (("FailedInvokeEventCount",), "lambda_esm_failed_invoke_events"),
    (("MessagesDeleted",), "lambda_esm_deleted_events"),
    (("RecordsDiscarded",), "lambda_esm_dropped_events"),
    (("OnFailureDestinationDeliveredEventCount",), "lambda_esm_on_failure_destination_delivered_events"),
    (("Throttles", "ThrottledBatches"), "lambda_esm_throttles"),
)
_SAMPLED = (catalog.SQS, catalog.KINESIS)


# How far back a scrape looks for a level's latest sample (they are sampled every second).
RECENT_S = 60


def snake(name: str) -> str:
    """"ApproximateNumberOfMessagesVisible" -> "approximate_number_of_messages_visible"."""
    return _CAMEL.sub("_", name.replace(".", "_")).lower()


class EmulatorCollector(Collector):
    def __init__(self, timeline: Timeline | None) -> None:
        self.timeline = timeline
        self.snapshot: Mapping[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        functions: Mapping[str, Mapping[str, Any]] = snapshot.get("functions") or {}
        for field, name in _FUNCTION_COUNTERS:
            family = CounterMetricFamily(name, f"{field} per function (CloudWatch's {field})", labels=["function_name"])
            for function, counters in functions.items():
                family.add_metric([function], float(counters.get(field) or 0))
            yield family
        throttles = CounterMetricFamily("lambda_throttles", "throttled invocation requests (429) by Reason",
                                        labels=["function_name", "reason"])
        for function, counters in functions.items():
            for reason, count in (counters.get("ThrottlesByReason") or {}).items():
                throttles.add_metric([function, reason], float(count))
        yield throttles
        concurrency = GaugeMetricFamily("lambda_function_concurrent_executions", "executions running now",
                                        labels=["function_name"])
        for function, counters in functions.items():
            concurrency.add_metric([function], float(counters.get("ConcurrentExecutions") or 0))
        yield concurrency
        account: Mapping[str, Any] = snapshot.get("account") or {}
        for field, name, text in _ACCOUNT_GAUGES:
            if field in account:
                yield GaugeMetricFamily(name, text, value=float(account[field]))
        queue = snapshot.get("async_queue") or {}
        yield GaugeMetricFamily("lambda_async_queue_pending_events", "async events queued, running or being delivered",
                                value=float(queue.get("pending") or 0))
        yield from self._mappings(snapshot.get("event_source_mappings") or {})
        if self.timeline is not None:
            yield from self._durations(self.timeline, functions)
            yield from self._sampled(self.timeline)

    @staticmethod
    def _mappings(mappings: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
        labels = ["event_source_mapping_uuid", "function_arn"]
        for fields, name in _MAPPING_COUNTERS:
            family = CounterMetricFamily(name, f"event source mapping: {fields[0]}", labels=labels)
            for uuid, counters in mappings.items():
                value = next((counters[f] for f in fields if f in counters), None)
                if value is not None:
                    family.add_metric([uuid, str(counters.get("FunctionArn", ""))], float(value))
            yield family
        for field, name in (("Pollers", "lambda_esm_pollers"), ("BatchesInFlight", "lambda_esm_concurrent_batches"),
                            ("IteratorAgeMilliseconds", "lambda_esm_iterator_age_milliseconds")):
            family = GaugeMetricFamily(name, f"event source mapping: {field}", labels=labels)
            for uuid, counters in mappings.items():
                if field in counters:
                    family.add_metric([uuid, str(counters.get("FunctionArn", ""))], float(counters[field] or 0))
            yield family

    @staticmethod
    def _durations(timeline: Timeline, functions: Mapping[str, Any]) -> Iterator[Metric]:
        family = GaugeMetricFamily("lambda_duration_milliseconds",
                                   f"handler Duration quantiles over the last {RECENT_WINDOW_S} s",
                                   labels=["function_name", "quantile"])
        now = timeline.now()
        for function in functions:
            points = timeline.aggregate(series_key(catalog.LAMBDA, "Duration", {"FunctionName": function}),
                                        now - RECENT_WINDOW_S + 1, now + 1, RECENT_WINDOW_S)
            if points and points[-1][1].dist is not None:
                dist = points[-1][1].dist
                for q in QUANTILES:
                    family.add_metric([function, f"{q:g}"], dist.percentile(q * 100))
        yield family

    @staticmethod
    def _sampled(timeline: Timeline) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        # Only the latest sample of a level is exposed: read the last minute, not the whole
        # history (an hour of it took ~300 ms of the event loop per scrape).
        since = timeline.now() - RECENT_S
        for key in timeline.keys(start=since):
            info = catalog.info(key.namespace, key.metric)
            if key.namespace not in _SAMPLED or info is None or info.kind is not catalog.Kind.GAUGE:
                continue
            points = timeline.points(key, start=since)
            if not points:
                continue
            prefix = "sqs" if key.namespace == catalog.SQS else "kinesis"
            name = f"{prefix}_{snake(key.metric)}"
            labels = [snake(n) for n, _ in key.dims]
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, f"{key.namespace} {key.metric}, latest sample", labels=labels)
            value = points[-1][1].high
            if math.isfinite(value):
                family.add_metric([v for _, v in key.dims], value)
        yield from families.values()


class PrometheusExporter:
    """A registry of one server's figures."""

    def __init__(self, timeline: Timeline | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = EmulatorCollector(timeline)
        self.registry.register(self.collector)

    def render(self, snapshot: Mapping[str, Any], openmetrics: bool = False) -> tuple[bytes, str]:
        """(body, content type) of the current figures."""
        self.collector.snapshot = snapshot
        try:
            if openmetrics:
                return generate_openmetrics(self.registry), OPENMETRICS_CONTENT_TYPE
            return generate_latest(self.registry), TEXT_CONTENT_TYPE
        finally:
            self.collector.snapshot = {}


def wants_prometheus(accept: str) -> tuple[bool, bool]:
    """(Prometheus text wanted, OpenMetrics wanted) from an Accept header: JSON stays the
    default; a scraper asks for text/plain or application/openmetrics-text."""
    lowered = accept.lower()
    openmetrics = "application/openmetrics-text" in lowered
    return openmetrics or "text/plain" in lowered, openmetrics
