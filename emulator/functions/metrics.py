"""Counters per function, named after Lambda's CloudWatch metrics, served at /_emulator/metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol


class _Result(Protocol):
    function_error: str | None
    error_type: str | None


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
    destination_deliveries: int = 0
    destination_delivery_failures: int = 0
    dead_letter_deliveries: int = 0
    dead_letter_errors: int = 0

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
            "DestinationDeliveries": self.destination_deliveries,
            "DestinationDeliveryFailures": self.destination_delivery_failures,
            "DeadLetterDeliveries": self.dead_letter_deliveries,
            "DeadLetterErrors": self.dead_letter_errors,
        }


class Metrics:
    def __init__(self) -> None:
        self.functions: dict[str, FunctionMetrics] = {}

    def of(self, function: str) -> FunctionMetrics:
        metrics = self.functions.get(function)
        if metrics is None:
            metrics = self.functions[function] = FunctionMetrics()
        return metrics

    def record_invocation(self, function: str, result: _Result, cold: bool) -> None:
        metrics = self.of(function)
        metrics.invocations += 1
        if result.function_error:
            metrics.errors += 1
            if result.error_type == "Sandbox.Timedout":
                metrics.timeouts += 1
        if cold:
            metrics.cold_starts += 1

    def record_throttle(self, function: str, reason: str) -> None:
        self.of(function).throttles[reason] += 1

    def concurrency_changed(self, function: str, delta: int) -> None:
        metrics = self.of(function)
        metrics.concurrent_executions += delta
        if metrics.concurrent_executions > metrics.concurrent_executions_peak:
            metrics.concurrent_executions_peak = metrics.concurrent_executions

    def reset(self) -> None:
        self.functions.clear()

    def snapshot(self) -> dict[str, Any]:
        return {name: metrics.snapshot() for name, metrics in sorted(self.functions.items())}
