"""The sampler: once a second, the levels nothing reports as events, into the timeline.

Off the invoke path, it reads the ledger (account concurrency and limits, provisioned
utilisation), the pollers' counters (asked of the poller process, as /_emulator/metrics
does) and the backend's queue, stream and DynamoDB table figures (one call to the moto
child: emulator/moto_child/queue_metrics.py), and turns cumulative counters into per-second
counts. What it reads comes through `SamplerPorts`, so this module knows neither the
service nor the backend.

It samples every emulated second, just after the second begins (so every second has its
sample, and a run shorter than a second still sees the levels of the second it ran in), but
never more often than MIN_REAL_PERIOD_S of real time: with `--time-scale 60` a sample covers
15 emulated seconds (the levels in between are not seen; events are still recorded in their
own second).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.telemetry import catalog
from emulator.telemetry.catalog import RECEIVE_COUNT_BUCKETS
from emulator.telemetry.timeline import SeriesKey, Timeline, series_key

log = logging.getLogger("emulator.telemetry")

MIN_REAL_PERIOD_S = 0.25
# How far into an emulated second its sample is taken (emulated seconds): inside the second
# for certain, however the clock's float rounds.
SAMPLE_OFFSET_S = 0.01
# A backend or poller process slower than this to answer skips one sample, not the loop.
SAMPLE_TIMEOUT_S = 5.0

# Poller counters (sources/sqs_poller.py, sources/kinesis_poller.py snapshots: cumulative)
# -> AWS's event source mapping metric counted per second.
_MAPPING_COUNTERS: dict[str, tuple[str, ...]] = {
    "PolledEventCount": ("MessagesReceived", "RecordsRead"),
    "InvokedEventCount": ("InvokedEventCount",),
    "FailedInvokeEventCount": ("FailedInvokeEventCount",),
    "DeletedEventCount": ("MessagesDeleted",),
    "DroppedEventCount": ("RecordsDiscarded",),
    "OnFailureDestinationDeliveredEventCount": ("OnFailureDestinationDeliveredEventCount",),
    "FilteredOutEventCount": ("FilteredOutEventCount",),
}
_TOPIC_COUNTERS = tuple(m.name for m in catalog.TOPIC_METRICS if m.kind is catalog.Kind.COUNTER)
_QUEUE_GAUGES = {"visible": "ApproximateNumberOfMessagesVisible", "not_visible": "ApproximateNumberOfMessagesNotVisible",
                 "delayed": "ApproximateNumberOfMessagesDelayed", "oldest_age_s": "ApproximateAgeOfOldestMessage"}
_QUEUE_COUNTERS = {"received": "NumberOfMessagesReceived", "deleted": "NumberOfMessagesDeleted",
                   "dead_lettered": "NumberOfMessagesMovedToDLQ"}
# The capacity layer's cumulative counters per table and global index (CloudWatch's names).
_CAPACITY_COUNTERS = ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents", "WriteThrottleEvents")
_PROVISIONED = ("ProvisionedReadCapacityUnits", "ProvisionedWriteCapacityUnits")


@dataclass(frozen=True)
class LedgerView:
    """The account figures the sampler reads (ConcurrencyLedger.snapshot's keys)."""

    snapshot: dict[str, int]
    provisioned_usage: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class SamplerPorts:
    ledger: Callable[[], LedgerView]
    functions: Callable[[], Iterable[str]]
    concurrency_limit: Callable[[str], int]
    # Every mapping's counters by UUID (SourceManager.snapshot).
    mappings: Callable[[], Awaitable[Mapping[str, Mapping[str, Any]]]]
    # The backend's queue and stream figures, or None (no backend, or one without them).
    backend: Callable[[], Awaitable[Mapping[str, Any] | None]] | None = None
    # The API Gateway front door's counters (FrontDoor.snapshot), when the template has APIs.
    api_gateway: Callable[[], Mapping[str, Any]] | None = None
    # SNS's counters per topic (SnsLambdaFanout.snapshot), with a backend.
    sns: Callable[[], Awaitable[Mapping[str, Any]]] | None = None


class CounterDeltas:
    """Per-second counts from cumulative counters; a counter that went down was restarted
    (a poller restarted, the backend came back empty): its new value is the count."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], float] = {}

    def delta(self, key: tuple[str, ...], value: float) -> float:
        previous = self._last.get(key)
        self._last[key] = value
        if previous is None:
            return value
        return value - previous if value >= previous else value

    def clear(self) -> None:
        self._last.clear()


def next_sample(wall: float, last_second: int | None, time_scale: float) -> tuple[int, float]:
    """(the emulated second to sample next, the real seconds to wait for it) at emulated time
    `wall`, the last sample having been of `last_second`: the next second not yet sampled,
    and at least MIN_REAL_PERIOD_S of real time after the last one, sampled SAMPLE_OFFSET_S
    after it begins."""
    second = math.floor(wall - SAMPLE_OFFSET_S) + 1
    if last_second is not None:
        second = max(second, math.ceil(last_second + MIN_REAL_PERIOD_S * time_scale))
    return second, max(0.0, (second + SAMPLE_OFFSET_S - wall) / time_scale)


class Sampler:
    def __init__(self, timeline: Timeline, ports: SamplerPorts, time_scale: float = 1.0) -> None:
        self.timeline = timeline
        self.ports = ports
        self.time_scale = time_scale
        self._deltas = CounterDeltas()

    async def run(self) -> None:
        last: int | None = None
        while True:
            last, delay = next_sample(self.timeline.wall(), last, self.time_scale)
            await asyncio.sleep(delay)
            await self.sample_now()

    async def sample_now(self) -> None:
        """One sample, given up (and logged) when a source does not answer in time."""
        try:
            await asyncio.wait_for(self.sample(), SAMPLE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.debug("timeline sample skipped: a source did not answer within %.0f s", SAMPLE_TIMEOUT_S)

    def reset(self) -> None:
        """After the emulator's reset: counters start again from zero."""
        self._deltas.clear()

    async def sample(self) -> None:
        timeline = self.timeline
        timeline.tick()
        second = timeline.now()
        self._sample_account(second)
        if self.ports.api_gateway is not None:
            self.record_api_gateway(self.ports.api_gateway(), second)
        self.record_mappings(await self.ports.mappings(), second)
        if self.ports.backend is not None:
            try:
                figures = await self.ports.backend()
            except Exception as exc:  # the backend restarting, or gone: the next sample tries again
                log.debug("timeline: backend figures unavailable: %s", exc)
                figures = None
            if figures:
                self.record_backend(figures, second)
        if self.ports.sns is not None:
            try:
                self.record_sns(await self.ports.sns(), second)
            except Exception as exc:  # the backend restarting: the next sample tries again
                log.debug("timeline: SNS figures unavailable: %s", exc)

    def _sample_account(self, second: int) -> None:
        timeline = self.timeline
        view = self.ports.ledger()
        account = view.snapshot
        for metric, field in (("ClaimedAccountConcurrency", "claimed_concurrency"),
                              ("UnreservedConcurrentExecutions", "unreserved_in_flight"),
                              ("AccountConcurrencyLimit", "account_limit"),
                              ("UnreservedConcurrencyLimit", "unreserved_limit")):
            timeline.record_gauge(series_key(catalog.LAMBDA, metric), account[field], second)
        for function in self.ports.functions():
            timeline.record_gauge(_fn("ConcurrencyLimit", function), self.ports.concurrency_limit(function), second)
        for function, (busy, total) in view.provisioned_usage.items():
            timeline.record_gauge(_fn("ProvisionedConcurrencyUtilization", function), busy / total, second)

    # -- event source mappings -------------------------------------------------------------
    def record_mappings(self, mappings: Mapping[str, Mapping[str, Any]], second: int) -> None:
        timeline = self.timeline
        function_ages: dict[str, float] = {}
        stream_ages: dict[str, float] = {}
        for uuid, counters in mappings.items():
            dims = {"EventSourceMappingUUID": uuid}
            for metric, fields in _MAPPING_COUNTERS.items():
                for field in fields:
                    if field in counters:
                        delta = self._deltas.delta(("mapping", uuid, field), float(counters[field] or 0))
                        timeline.record_count(series_key(catalog.LAMBDA, metric, dims), delta, second)
                        break
            for cause, value in (counters.get("DeadLetterBoundByCause") or {}).items():
                delta = self._deltas.delta(("mapping", uuid, "dlq-bound", cause), float(value or 0))
                timeline.record_count(series_key(catalog.LAMBDA, "DeadLetterBoundEventCount", {**dims, "Cause": cause}),
                                      delta, second)
            timeline.record_gauge(series_key(catalog.LAMBDA, "Pollers", dims), counters.get("Pollers") or 0, second)
            timeline.record_gauge(series_key(catalog.LAMBDA, "ConcurrentBatches", dims), counters.get("BatchesInFlight") or 0, second)
            shards = counters.get("Shards")
            if not isinstance(shards, Mapping):
                continue
            age = float(counters.get("IteratorAgeMilliseconds") or 0)
            timeline.record_gauge(series_key(catalog.LAMBDA, "IteratorAge", dims), age, second)
            function = _resource_name(str(counters.get("FunctionArn", "")), "function:")
            if function:
                function_ages[function] = max(function_ages.get(function, 0.0), age)
            # AWS/Kinesis series for Kinesis mappings only (a DynamoDB stream's ARN also has "stream/").
            source_arn = str(counters.get("EventSourceArn", ""))
            stream = _resource_name(source_arn, "stream/") if source_arn.startswith("arn:aws:kinesis:") else ""
            for shard_id, shard in shards.items():
                shard_age = float(shard.get("IteratorAgeMilliseconds") or 0)
                timeline.record_gauge(series_key(catalog.LAMBDA, "IteratorAge", {**dims, "ShardId": shard_id}), shard_age, second)
                if stream:
                    timeline.record_gauge(series_key(catalog.KINESIS, "IteratorAgeMilliseconds",
                                                     {"StreamName": stream, "ShardId": shard_id}), shard_age, second)
                    stream_ages[stream] = max(stream_ages.get(stream, 0.0), shard_age)
        for function, age in function_ages.items():
            timeline.record_gauge(_fn("IteratorAge", function), age, second)
        for stream, age in stream_ages.items():
            timeline.record_gauge(series_key(catalog.KINESIS, "GetRecords.IteratorAgeMilliseconds", {"StreamName": stream}),
                                  age, second)

    # -- queues, streams and tables in the backend ----------------------------------------
    def record_backend(self, figures: Mapping[str, Any], second: int) -> None:
        timeline = self.timeline
        queues = [q for q in figures.get("sqs") or () if isinstance(q, Mapping) and q.get("name")]
        moved_in: dict[str, float] = {}  # DLQ ARN -> messages its sources moved in this second
        for queue in queues:
            name = str(queue["name"])
            dims = {"QueueName": name}
            for field, metric in _QUEUE_GAUGES.items():
                value = queue.get(field)
                if value is not None:
                    timeline.record_gauge(series_key(catalog.SQS, metric, dims), value, second)
            for field, metric in _QUEUE_COUNTERS.items():
                if queue.get(field) is not None:
                    delta = self._deltas.delta(("queue", name, field), float(queue[field]))
                    timeline.record_count(series_key(catalog.SQS, metric, dims), delta, second)
                    if field == "dead_lettered" and queue.get("dead_letter_target"):
                        target = str(queue["dead_letter_target"])
                        moved_in[target] = moved_in.get(target, 0.0) + delta
            counts = queue.get("receive_counts")
            if isinstance(counts, Mapping):
                for bucket, value in receive_count_buckets(counts).items():
                    timeline.record_gauge(series_key(catalog.SQS, "ApproximateNumberOfMessagesByReceiveCount",
                                                     {**dims, "ReceiveCount": bucket}), value, second)
        for queue in queues:  # NumberOfMessagesSent leaves out what a redrive policy moved in, as AWS does
            if queue.get("added") is not None:
                added = self._deltas.delta(("queue", str(queue["name"]), "added"), float(queue["added"]))
                sent = max(0.0, added - moved_in.get(str(queue.get("arn")), 0.0))
                timeline.record_count(series_key(catalog.SQS, "NumberOfMessagesSent", {"QueueName": str(queue["name"])}),
                                      sent, second)
        for stream in figures.get("kinesis") or ():
            if not isinstance(stream, Mapping) or not stream.get("name"):
                continue
            dims = {"StreamName": str(stream["name"])}
            for field, metric in (("incoming_records", "IncomingRecords"), ("incoming_bytes", "IncomingBytes")):
                delta = self._deltas.delta(("stream", str(stream["name"]), field), float(stream.get(field) or 0))
                timeline.record_count(series_key(catalog.KINESIS, metric, dims), delta, second)
        for table in figures.get("dynamodb") or ():
            if isinstance(table, Mapping) and table.get("TableName"):
                self._record_table(table, second)

    def _record_table(self, table: Mapping[str, Any], second: int) -> None:
        """A table's and its global indexes' capacity series (dimension TableName, and
        GlobalSecondaryIndexName for an index)."""
        name = str(table["TableName"])
        arn = str(table.get("TableArn") or name)  # deltas by ARN: a same-named table elsewhere is another table
        provisioned = table.get("BillingMode") != "PAY_PER_REQUEST"
        parts: list[tuple[str, dict[str, str], Mapping[str, Any], tuple[str, ...]]] = [
            ("", {"TableName": name}, table, (*_CAPACITY_COUNTERS, "ThrottledRequests"))]
        for index, figures in (table.get("GlobalSecondaryIndexes") or {}).items():
            if isinstance(figures, Mapping):
                parts.append((index, {"TableName": name, "GlobalSecondaryIndexName": index}, figures, _CAPACITY_COUNTERS))
        for index, dims, figures, counters in parts:
            for metric in counters:
                delta = self._deltas.delta(("table", arn, index, metric), float(figures.get(metric) or 0))
                self.timeline.record_count(series_key(catalog.DYNAMODB, metric, dims), delta, second)
            if provisioned:
                for metric in _PROVISIONED:
                    self.timeline.record_gauge(series_key(catalog.DYNAMODB, metric, dims), figures.get(metric) or 0, second)

    # -- the API Gateway front door -------------------------------------------------------------
    def record_api_gateway(self, snapshot: Mapping[str, Any], second: int) -> None:
        """Per stage, and per method (REST: Method and Resource) or route (HTTP: Route), as
        CloudWatch's dimensions have them: counts from the gateway's cumulative counters,
        latencies as the mean of the requests answered since the last sample."""
        for api_id, api in (snapshot.get("apis") or {}).items():
            rest = api.get("Type") == "REST"
            for stage, counters in (api.get("Stages") or {}).items():
                dims = {"ApiName": str(api.get("Name")), "Stage": stage} if rest else {"ApiId": api_id, "Stage": stage}
                self._record_api_counters(("api", api_id, stage), dims, counters, rest, second)
                for route_key, route in (counters.get("Routes") or {}).items():
                    if rest:
                        method, _, resource = str(route_key).partition(" ")
                        route_dims = {**dims, "Method": method, "Resource": resource}
                    else:
                        route_dims = {**dims, "Route": str(route_key)}
                    self._record_api_counters(("api", api_id, stage, str(route_key)), route_dims, route, rest, second)

    def _record_api_counters(self, key: tuple[str, ...], dims: dict[str, str], counters: Mapping[str, Any], rest: bool,
                             second: int) -> None:
        timeline = self.timeline
        names = ("Count", "4XXError", "5XXError", "CacheHitCount", "CacheMissCount") if rest else ("Count", "4xx", "5xx")
        for metric in names:
            if metric not in counters and metric.startswith("Cache"):
                continue
            delta = self._deltas.delta((*key, metric), float(counters.get(metric) or 0))
            timeline.record_count(series_key(catalog.API_GATEWAY, metric, dims), delta, second)
        for metric in ("Latency", "IntegrationLatency"):
            stats = counters.get(metric) or {}
            count = self._deltas.delta((*key, metric, "n"), float(stats.get("SampleCount") or 0))
            total = self._deltas.delta((*key, metric, "sum"), float(stats.get("Sum") or 0))
            if count > 0:
                timeline.record_gauge(series_key(catalog.API_GATEWAY, metric, dims), total / count, second)
        for layer, value in (counters.get("ThrottlesByLayer") or {}).items():
            delta = self._deltas.delta((*key, "throttles", layer), float(value))
            timeline.record_count(series_key(catalog.API_GATEWAY, "Throttles", {**dims, "Layer": layer}), delta, second)

    # -- SNS topics --------------------------------------------------------------------------------
    def record_sns(self, snapshot: Mapping[str, Any], second: int) -> None:
        """Per topic: counts from the cumulative counters, PublishSize as the second's mean."""
        timeline = self.timeline
        for topic_arn, counters in (snapshot.get("topics") or {}).items():
            name = str(topic_arn).rsplit(":", 1)[-1]
            dims = {"TopicName": name}
            for metric in _TOPIC_COUNTERS:
                if metric in counters:
                    delta = self._deltas.delta(("topic", name, metric), float(counters[metric] or 0))
                    timeline.record_count(series_key(catalog.SNS, metric, dims), delta, second)
            published = self._deltas.delta(("topic", name, "published-for-size"),
                                           float(counters.get("NumberOfMessagesPublished") or 0))
            size = self._deltas.delta(("topic", name, "PublishSize"), float(counters.get("PublishSize") or 0))
            if published > 0:
                timeline.record_gauge(series_key(catalog.SNS, "PublishSize", dims), size / published, second)


def receive_count_buckets(counts: Mapping[str, int]) -> dict[str, int]:
    """Live messages by receive count, every count from 0 to RECEIVE_COUNT_BUCKETS - 1 and
    one bucket "N+" for the rest (so the number of series stays fixed)."""
    out = {str(n): 0 for n in range(RECEIVE_COUNT_BUCKETS)}
    top = f"{RECEIVE_COUNT_BUCKETS}+"
    out[top] = 0
    for raw, value in counts.items():
        count = int(raw)
        out[str(count) if count < RECEIVE_COUNT_BUCKETS else top] += int(value)
    return out


def _fn(metric: str, function: str) -> SeriesKey:
    return series_key(catalog.LAMBDA, metric, {"FunctionName": function})


def _resource_name(arn: str, marker: str) -> str:
    """"arn:aws:lambda:r:a:function:NAME[:qualifier]" -> NAME (marker "function:"), and
    "arn:aws:kinesis:r:a:stream/NAME" -> NAME (marker "stream/")."""
    index = arn.find(marker)
    if index < 0:
        return ""
    return arn[index + len(marker):].split(":", 1)[0].split("/", 1)[0]
