"""The Lambda service: admission control around the invoker, and the function catalogue.

Every invocation path (sync API, async queue, event-source pollers) goes through
`invoke`, so the concurrency pools and the scaling rate hold for all of them
(reserved, then account concurrency, then the scaling rate:
https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html).
"""

from __future__ import annotations

import random
import time
from typing import Any

from emulator.service.async_queue import AsyncInvocationQueue, AsyncQueuePorts, EventInvokeConfig
from emulator.clock import Clock
from emulator.policy.concurrency import ConcurrencyLedger, ThrottleReason
from emulator.errors import InvalidParameterValue, ResourceNotFound, TooManyRequests
from emulator.functions.registry import FunctionRegistry, FunctionVersion
from emulator.execution.invoker import Invocation, Invoker, InvokeResult
from emulator.functions.metrics import Metrics
from emulator.policy.scaling import ScalingRateModel
from emulator.service.tracing import RANDOM_BITS, trace_header

# AWS does not document which Reason a scaling-rate throttle carries (the scaling-behavior
# page says only 429); we choose ConcurrentInvocationLimitExceeded, README 'Choices'.
DEFAULT_SCALING_THROTTLE_REASON = ThrottleReason.CONCURRENT
_DEFAULT_EVENT_INVOKE_CONFIG = EventInvokeConfig()
_random_bits = random.SystemRandom().getrandbits(64)
_ids = random.Random(_random_bits)  # seeded once from the OS; request ids need uniqueness, not secrecy
_UUID_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_UUID_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def check_tenant(version: FunctionVersion, tenant_id: str | None) -> None:
    """A tenant-isolated function is invoked for a tenant, any other function never:
    https://docs.aws.amazon.com/lambda/latest/dg/tenant-isolation-invoke.html (AWS does not
    document the error; we answer InvalidParameterValueException, README 'Choices')."""
    isolated = version.spec.tenant_isolation_mode is not None
    if isolated and tenant_id is None:
        raise InvalidParameterValue(f"The function {version.function_arn} has tenant isolation mode "
                                    f"{version.spec.tenant_isolation_mode}: the invocation must include a TenantId.")
    if not isolated and tenant_id is not None:
        raise InvalidParameterValue(f"TenantId is set, but the function {version.function_arn} does not have "
                                    "tenant isolation enabled.")


def new_request_id() -> str:
    """A random (version 4) UUID like Lambda's request ids, without os.urandom per call.

    uuid.uuid4() makes a getrandom system call each time: a measurable share of a warm
    invoke at 10,000 invokes/s (profiled with py-spy).
    """
    h = "%032x" % ((_ids.getrandbits(128) & _UUID_VERSION_MASK) | _UUID_VERSION_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _new_trace_header(incoming: str | None) -> str:
    # Wall time, not the emulated clock: the id's time part is real epoch seconds.
    return trace_header(incoming, time.time(), _ids.getrandbits(RANDOM_BITS))


class LambdaService:
    def __init__(
        self,
        *,
        registry: FunctionRegistry,
        invoker: Invoker,
        ledger: ConcurrencyLedger,
        scaling: ScalingRateModel,
        clock: Clock,
        metrics: Metrics,
        scaling_throttle_reason: str = DEFAULT_SCALING_THROTTLE_REASON,
    ) -> None:
        self.registry = registry
        self.invoker = invoker
        self.ledger = ledger
        self.scaling = scaling
        self.clock = clock
        self.metrics = metrics
        self.scaling_throttle_reason = scaling_throttle_reason
        self.async_queue: AsyncInvocationQueue | None = None
        # (function name, qualifier or $LATEST) -> async settings (event invoke config).
        self.event_invoke_configs: dict[tuple[str, str], EventInvokeConfig] = {}

    def event_invoke_config(self, function: str, qualifier: str | None) -> EventInvokeConfig:
        config = self.event_invoke_configs.get((function, qualifier or "$LATEST"))
        return config if config is not None else _DEFAULT_EVENT_INVOKE_CONFIG

    def async_queue_ports(self) -> AsyncQueuePorts:
        """What the async queue may call: admission-controlled invokes and lookups."""

        async def invoke(version: FunctionVersion, payload: bytes, qualifier: str | None, request_id: str,
                         **named: Any) -> InvokeResult:
            return await self.invoke(version, payload, qualifier=qualifier, request_id=request_id, **named)

        return AsyncQueuePorts(
            invoke=invoke,
            resolve=self.registry.resolve,
            event_invoke_config=self.event_invoke_config,
            # The ledger is replaced on reset: look it up at each call.
            reserved_concurrency=lambda name: self.ledger.reserved(name),
            concurrency_limit=self.concurrency_limit,
            metrics=self.metrics,
        )

    def concurrency_limit(self, function: str) -> int:
        """The most executions `function` can have at once: its reservation, else the
        unreserved pool it shares with the other functions."""
        reserved = self.ledger.reserved(function)
        return self.ledger.unreserved_limit if reserved is None else reserved

    def check_invocable(self, version: FunctionVersion) -> None:
        """A function being created (Pending), failed or deleted cannot be invoked:
        https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html"""
        function = self.registry.functions.get(version.name)
        if function is None:
            raise ResourceNotFound(f"Function not found: {version.function_arn}")
        function.lifecycle.check_invocable()

    def submit_async(self, version: FunctionVersion, payload: bytes, qualifier: str | None = None, *,
                     tenant_id: str | None = None, trace_header: str | None = None) -> str:
        """Accept an Event invocation (the caller answers 202); it runs from the queue."""
        assert self.async_queue is not None, "the async queue starts with the server"
        self.check_invocable(version)
        request_id = new_request_id()
        self.async_queue.submit(version, payload, qualifier, request_id, tenant_id, trace_header)
        return request_id

    def cold_start_allowed(self, function: str) -> bool:
        """A scaling token is spent only when a new environment is needed (emulator.policy.scaling)."""
        return self.scaling.try_take(function, self.clock.now())

    async def invoke(
        self,
        version: FunctionVersion,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invoked_arn: str | None = None,
        request_id: str | None = None,
        client_context: dict[str, Any] | None = None,
        log_tail: bool = False,
        trace_header: str | None = None,
        tenant_id: str | None = None,
    ) -> InvokeResult:
        """Admit, run, release. Raises TooManyRequests when throttled (never queues).
        `trace_header`: the caller's X-Amzn-Trace-Id, if any (emulator/service/tracing.py)."""
        self.check_invocable(version)
        name = version.name
        metrics = self.metrics
        with self.ledger.lease(name, qualifier) as admission:  # released in finally
            if not admission.admitted:
                metrics.record_throttle(name, str(admission.reason))
                raise TooManyRequests(str(admission.reason))
            metrics.concurrency_changed(name, 1)
            try:
                if admission.spillover:
                    metrics.of(name).provisioned_spillover_invocations += 1
                invocation = Invocation(
                    payload,
                    request_id or new_request_id(),
                    invoked_arn or (version.function_arn if qualifier is None else f"{version.function_arn}:{qualifier}"),
                    client_context,
                    log_tail,
                    _new_trace_header(trace_header),
                    tenant_id,
                )
                result = await self.invoker.run(version, invocation, provisioned=admission.provisioned, gate=self.cold_start_allowed)
                if result.throttled:
                    metrics.record_throttle(name, self.scaling_throttle_reason)
                    raise TooManyRequests(self.scaling_throttle_reason)
                if admission.provisioned:
                    metrics.of(name).provisioned_invocations += 1
                return result
            finally:
                metrics.concurrency_changed(name, -1)
