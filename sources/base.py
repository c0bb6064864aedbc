"""The contract between the SourceManager, the place pollers run, and the pollers.

The manager (sources/manager.py) owns every EventSourceMapping and, while a mapping is
Enabled, exactly one poller for it. The pollers do not run on the control plane's event
loop: the manager asks a `PollerHost` to start and stop them, and the host it uses is the
poller process (sources/poller_process.py, running sources/poller_host.py), so that
receiving, deleting and building batches never delay an invocation. Inside that process
`LocalPollers` (sources/local_pollers.py) runs them; unit tests run them the same way on
their own loop.

A poller module per source kind plugs in by name, so adding a kind touches no manager code:

    POLLER_MODULES["kinesis"] = "emulator.sources.kinesis_poller"

That module exposes `create_poller(context: PollerContext, mapping: EventSourceMapping)
-> SourcePoller`. Its host calls, in this order and from its event loop:

* `await poller.start()`: set up (may call the backend; raise to refuse) and spawn the
  poller's own tasks. Returns once the poller runs.
* `poller.snapshot() -> dict`: cheap, synchronous counters for /_emulator/metrics (keys in
  CloudWatch-like CamelCase; e.g. `Pollers`, `BatchesInFlight`, and for streams
  `IteratorAgeMilliseconds` per shard). Called at any time, also after stop.
* `await poller.stop()`: stop reading at once; let batches already being invoked finish
  within STOP_DRAIN_S, then cancel them (their records are left to the source: SQS makes
  them visible again after the visibility timeout, a stream re-reads from the checkpoint).
  Every task the poller spawned is done when it returns.

A mapping's settings never change under a running poller: an update replaces the mapping
value, stops the poller and starts a new one with the new value (sources/manager.py). The
poller reads `mapping.settings` (sources/mapping.py) and reports a new
`LastProcessingResult` through `context.processing_result`.
Unexpected exceptions in a poller's tasks go to `context.report_error` (the pytest plugin
re-raises them in the test); expected backend and function failures are counted, logged
and retried as AWS would, never reported.

Every call a poller makes goes through two ports: `context.functions` invokes its function
through the Lambda service's admission control (`InvokePort`: every concurrency rule and
metric holds; in the poller process, a call over the channel to the control plane), and
`context.backend` reads and deletes at the source (async aiohttp). Every wait goes through
`context.clock.to_real` so that --time-scale applies.
"""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from emulator.backend.client import UNREACHABLE, BackendError
from emulator.sources.checkpoints import StreamCheckpoints

if TYPE_CHECKING:
    from emulator.backend.client import BackendClient
    from emulator.clock import Clock
    from emulator.sources.mapping import EventSourceMapping

log = logging.getLogger("emulator.sources")

# How long stop() lets batches that are already being invoked finish before cancelling.
STOP_DRAIN_S = 5.0

# What a poller's backend call may fail with: an error answer, or no answer at all (the
# backend stopped, restarting, or killed mid-request). Pollers retry both with back-off.
BACKEND_FAILURES: tuple[type[BaseException], ...] = (BackendError, *UNREACHABLE)

# Event-source service (the ARN's service field) -> module exposing `create_poller`.
POLLER_MODULES: dict[str, str] = {
    "sqs": "emulator.sources.sqs_poller",
    "kinesis": "emulator.sources.kinesis_poller",
    "dynamodb": "emulator.sources.dynamodb_poller",
}


@dataclass(frozen=True)
class SourcesConfig:
    """Settings of the event-source layer that are not per mapping."""

    # "current" (since Nov 6, 2023: +300/min) or "legacy" (+60/min):
    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html (sources/sqs_scaling.py).
    sqs_scaling_model: str = "current"
    # At most 1,000 concurrent batches per SQS mapping (the scaling page above); AWS's
    # Nov 2023 launch blog says 1,250 instead, so it is configurable (README, "Choices
    # where AWS is ambiguous").
    sqs_max_concurrency: int = 1000
    # --scale-factor: AWS's SQS poller ceiling and scale-up rate are divided by it.
    scale_factor: float = 1.0
    # FilterCriteria filters per mapping: AWS's default quota 5, raised on request up to 10
    # (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    event_filter_quota: int = 5


@dataclass(frozen=True)
class BatchResult:
    """What a poller learns from invoking its function with a batch."""

    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed
    executed_version: str


class InvokePort(Protocol):
    """How a poller calls its function: through the Lambda service's admission control."""

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        """Run the function (qualified or not) synchronously with `payload`. Raises
        TooManyRequests when throttled, AwsError when it cannot be invoked at all."""
        ...

    async def timeout_s(self, function_arn: str) -> float:
        """The function's Timeout in seconds; AwsError when it does not exist."""
        ...


@dataclass(frozen=True)
class PollerContext:
    """Everything a poller may use; built once per place pollers run."""

    functions: InvokePort
    backend: "BackendClient"
    clock: "Clock"
    region: str
    account_id: str
    config: SourcesConfig
    report_error: Callable[[BaseException], None]
    # A mapping's new LastProcessingResult (uuid, value): the manager shows it in the API.
    processing_result: Callable[[str, str], None] = lambda uuid, result: None
    # State a source kind shares between its pollers, by kind (Kinesis: the per-shard read
    # limits every mapping on a stream draws from).
    shared: dict[str, Any] = field(default_factory=dict)
    # Each stream mapping's shard checkpoints (sources/checkpoints.py); in the poller
    # process, every advance is told to the control plane, which keeps them across its death.
    checkpoints: StreamCheckpoints = field(default_factory=StreamCheckpoints)
    # The jitter of retry delays (emulator/policy/backoff.py); seeded in tests.
    rng: random.Random = field(default_factory=random.Random)


class BackendOutage:
    """A poller's failed backend calls, counted, and logged once per burst: a burst begins
    with the first failure after an answer and ends with the next answer. (A line per failed
    call would be one per batch worker per back-off step for as long as the backend is down.)"""

    def __init__(self, logger: logging.Logger, source: str) -> None:
        self._log = logger
        self._source = source
        self.failures = 0  # every failed call, for /_emulator/metrics
        self._burst = 0

    def failed(self, doing: str, error: BaseException) -> None:
        self.failures += 1
        self._burst += 1
        if self._burst == 1:
            self._log.warning("%s: %s failed (%s: %s); retrying with back-off until the backend answers",
                              self._source, doing, type(error).__name__, error)

    def answered(self) -> None:
        if self._burst:
            self._log.info("%s: the backend answers again, after %d failed call(s)", self._source, self._burst)
            self._burst = 0


class SourcePoller(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


PollerFactory = Callable[[PollerContext, "EventSourceMapping"], SourcePoller]


class PollerHost(Protocol):
    """Where pollers run, one per enabled mapping (LocalPollers, or the poller process)."""

    async def start_poller(self, mapping: "EventSourceMapping", checkpoints: Mapping[str, Any] | None = None) -> None:
        """Start the mapping's poller, resuming its stream shards from `checkpoints` when
        given (sources/checkpoints.py); raises when it cannot start (the mapping is then
        disabled with the reason)."""
        ...

    async def stop_poller(self, uuid: str) -> dict[str, Any]:
        """Stop it (see SourcePoller.stop); returns its last counters ({} if none ran)."""
        ...

    async def snapshots(self) -> dict[str, dict[str, Any]]:
        """The counters of every running poller, by mapping UUID."""
        ...


def poller_factory(kind: str) -> PollerFactory | None:
    """The `create_poller` of a source kind, or None when no poller exists for it (yet)."""
    module_name = POLLER_MODULES.get(kind)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists but one of its imports is missing: a real error
        return None
    return getattr(module, "create_poller")
