"""Counters per function, named after Lambda's CloudWatch metrics, served at /_emulator/metrics.

With a timeline (emulator/telemetry/timeline.py), the same events are also recorded per
second there; each function's `FunctionSeries` hangs on its counters, so the invoke path
looks the function up once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from emulator.policy.async_retry import DropReason

if TYPE_CHECKING:
    from emulator.telemetry.timeline import FunctionSeries, Timeline

# Why a reset or a shutdown dropped pending async events (the keys of Metrics.pending_dropped),
# and the timeline's Reason for them.
DROPPED_BY_RESET = "reset"
DROPPED_AT_SHUTDOWN = "shutdown"
_PENDING_DROP_REASON = {DROPPED_BY_RESET: DropReason.RESET, DROPPED_AT_SHUTDOWN: DropReason.SHUTDOWN}


class _Result(Protocol):
    function_error: str | None
    error_type: str | None


@dataclass
class DeliveryCounters:
    """Deliveries of destination records or of dead letters, which are retried until they
    succeed or the event's age runs out (emulator/policy/async_retry.py)."""

    attempts: int = 0
    delivered: int = 0
    # Failed attempts, each counted, as AWS counts DestinationDeliveryFailures and
    # DeadLetterErrors (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).
    failures: int = 0
    dropped: int = 0  # deliveries given up at their deadline: the record is lost


@dataclass
class FunctionMetrics:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    throttles: Counter = field(default_factory=Counter)  # by Reason
    concurrent_executions: int = 0
    concurrent_executions_peak: int = 0
    provisioned_invocations: int = 0
    provisioned_spillover_invocations: int = 0
    async_events_received: int = 0
    async_events_retried: int = 0
    async_events_expired: int = 0
    async_events_dropped: int = 0
    async_events_succeeded: int = 0
    destination: DeliveryCounters = field(default_factory=DeliveryCounters)
    dead_letter: DeliveryCounters = field(default_factory=DeliveryCounters)
    invocations_by_tenant: Counter = field(default_factory=Counter)  # tenant-isolated functions
    series: "FunctionSeries | None" = None  # the function's timeline, when one is kept

    def snapshot(self) -> dict[str, Any]:
        return {
            "Invocations": self.invocations,
            "Errors": self.errors,
            "Timeouts": self.timeouts,
            "ColdStarts": self.cold_starts,
            "Throttles": sum(self.throttles.values()),
            "ThrottlesByReason": dict(self.throttles),
            "ConcurrentExecutions": self.concurrent_executions,
            "ConcurrentExecutionsPeak": self.concurrent_executions_peak,
            "ProvisionedConcurrencyInvocations": self.provisioned_invocations,
            "ProvisionedConcurrencySpilloverInvocations": self.provisioned_spillover_invocations,
            "AsyncEventsReceived": self.async_events_received,
            "AsyncEventsRetried": self.async_events_retried,
            "AsyncEventsExpired": self.async_events_expired,
            "AsyncEventsDropped": self.async_events_dropped,
            "AsyncEventsSucceeded": self.async_events_succeeded,
            "DestinationDeliveryAttempts": self.destination.attempts,
            "DestinationDeliveries": self.destination.delivered,
            "DestinationDeliveryFailures": self.destination.failures,
            "DestinationDeliveriesDropped": self.destination.dropped,
            "DeadLetterAttempts": self.dead_letter.attempts,
            "DeadLetterDeliveries": self.dead_letter.delivered,
            "DeadLetterErrors": self.dead_letter.failures,
            "DeadLetterDropped": self.dead_letter.dropped,
            "InvocationsByTenant": dict(self.invocations_by_tenant),
        }


class Metrics:
    def __init__(self, timeline: "Timeline | None" = None) -> None:
        self.timeline = timeline
        self.functions: dict[str, FunctionMetrics] = {}
        # Pending async events a reset or a shutdown dropped, by cause and function. A reset
        # clears every other counter but keeps these: they are the record of what it dropped.
        self.pending_dropped: dict[str, Counter[str]] = {DROPPED_BY_RESET: Counter(), DROPPED_AT_SHUTDOWN: Counter()}

    def of(self, function: str) -> FunctionMetrics:
        metrics = self.functions.get(function)
        if metrics is None:
            metrics = self.functions[function] = FunctionMetrics()
            if self.timeline is not None:
                metrics.series = self.timeline.function(function)
        return metrics

    def record_invocation(self, function: str, result: _Result, cold: bool, init_ms: float | None = None,
                          tenant_id: str | None = None) -> None:
        metrics = self.of(function)
        metrics.invocations += 1
        if tenant_id is not None:
            metrics.invocations_by_tenant[tenant_id] += 1
        if result.function_error:
            metrics.errors += 1
            if result.error_type == "Sandbox.Timedout":
                metrics.timeouts += 1
        if cold:
            metrics.cold_starts += 1
        if metrics.series is not None:
            metrics.series.invocation(result.duration_ms, bool(result.function_error), cold, init_ms)

    def record_throttle(self, function: str, reason: str) -> None:
        metrics = self.of(function)
        metrics.throttles[reason] += 1
        if metrics.series is not None:
            metrics.series.throttle(reason)

    def concurrency_changed(self, function: str, delta: int) -> None:
        metrics = self.of(function)
        metrics.concurrent_executions += delta
        if metrics.concurrent_executions > metrics.concurrent_executions_peak:
            metrics.concurrent_executions_peak = metrics.concurrent_executions
        if metrics.series is not None:
            metrics.series.executions(metrics.concurrent_executions, delta)

    # -- asynchronous invocation (emulator/service/async_queue.py) ------------------------
    def async_received(self, function: str) -> None:
        metrics = self.of(function)
        metrics.async_events_received += 1
        if metrics.series is not None:
            metrics.series.async_received()

    def async_attempt(self, function: str, age_ms: float) -> None:
        """An attempt to run a queued event starts, `age_ms` after it was queued (AsyncEventAge)."""
        series = self.of(function).series
        if series is not None:
            series.async_attempt(age_ms)

    def async_failed(self, function: str, reason: str) -> None:
        """The event ends without a successful run, for `reason` (a DropReason): AWS's
        AsyncEventsDropped counts it, even when it goes on to a destination or DLQ."""
        series = self.of(function).series
        if series is not None:
            series.async_dropped(reason)

    def delivery_failed(self, function: str, dead_letter: bool) -> None:
        metrics = self.of(function)
        (metrics.dead_letter if dead_letter else metrics.destination).failures += 1
        if metrics.series is not None:
            metrics.series.delivery_failed(dead_letter)

    def delivered(self, function: str, dead_letter: bool, reason: str | None = None) -> None:
        """A record or dead letter was delivered; `reason`: why its event failed (a DropReason;
        None for an on-success record)."""
        metrics = self.of(function)
        (metrics.dead_letter if dead_letter else metrics.destination).delivered += 1
        if reason is not None and metrics.series is not None:
            if dead_letter:
                metrics.series.dead_letter_delivered(reason)
            else:
                metrics.series.failure_record_delivered(reason)

    def record_pending_dropped(self, cause: str, by_function: Mapping[str, int], *, unrun: Mapping[str, int],
                               failed_undelivered: Mapping[str, int]) -> None:
        """A reset or shutdown dropped pending work: `by_function` all of it (the report);
        `unrun` events it stopped before they ran to an end (AWS's AsyncEventsDropped, under
        `cause`'s reason); `failed_undelivered` events that had already failed (counted under
        their own reason then) whose record or dead letter it dropped before delivery. An
        on-success record it dropped is in the report only: its event ran successfully."""
        self.pending_dropped[cause].update(by_function)
        for function, count in unrun.items():
            metrics = self.of(function)
            metrics.async_events_dropped += count
            if metrics.series is not None:
                metrics.series.async_dropped(_PENDING_DROP_REASON[cause], count)
        for function, count in failed_undelivered.items():
            self.of(function).async_events_dropped += count

    def pending_dropped_snapshot(self) -> dict[str, Any]:
        return {
            cause: {"total": sum(counts.values()), "by_function": dict(sorted(counts.items()))}
            for cause, counts in self.pending_dropped.items()
        }

    def reset(self) -> None:
        """Forget the per-function counters (not `pending_dropped`) and the timeline."""
        self.functions.clear()
        if self.timeline is not None:
            self.timeline.reset()

    def snapshot(self) -> dict[str, Any]:
        return {name: metrics.snapshot() for name, metrics in sorted(self.functions.items())}
