"""The SourceManager: every event source mapping, its lifecycle and its poller.

It serves the ESM API (emulator/api/esm_api.py holds the thin HTTP handlers), creates the
template's mappings at start-up after provisioning the template's resources in the backend
(emulator/backend/provisioning.py), and owns one poller per Enabled mapping (sources/base.py),
run by the poller process (sources/poller_process.py), which it owns too.

State changes follow the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json):
a create answers `Creating`, an update `Updating`/`Enabling`/`Disabling`, a delete
`Deleting`; the change completes in a task the manager owns (stopping the old poller,
starting the new), after which the mapping is `Enabled` or `Disabled` (or gone). One lock
per mapping orders its transitions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from emulator.backend.client import UNREACHABLE, BackendClient, BackendError
from emulator.clock import ScaledClock
from emulator.errors import AwsError, InvalidParameterValue, ResourceConflict, ResourceInUse, ResourceNotFound
from emulator.backend.provisioning import Provisioner, ProvisioningError
from emulator.tasks import OwnedTasks
from emulator.sources.base import POLLER_MODULES, SourcesConfig, log as sources_log
from emulator.sources.channel import ChannelClosed
from emulator.sources.invoke_port import LambdaInvokePort
from emulator.sources.poller_host import PollerHostSettings
from emulator.sources.poller_process import PollerProcess, PollerProcessEvents
from emulator.sources.mapping import (
    SQS, STABLE_STATES, SUPPORTED_KINDS, EventSourceMapping, MappingState, source_kind,
)
from emulator.sources.sns_events import expand_sns_events, with_sns_event_resources
from emulator.sources.template_sources import TemplateMapping, template_mappings
from emulator.sources.validation import check_visibility_timeout, settings_from_request

if TYPE_CHECKING:
    from emulator.clock import Clock
    from emulator.service.lambda_service import LambdaService
    from emulator.template.specs import AppSpec

log = logging.getLogger("emulator.sources.manager")

# ListEventSourceMappings MaxItems 1–10,000 (the Lambda API model above); AWS's default page
# is 100.
DEFAULT_LIST_MAX_ITEMS = 100
MAX_LIST_MAX_ITEMS = 10_000
# How long stop() waits for transitions under way before cancelling them.
TRANSITION_GRACE_S = 10.0
# Lambda's message for a resource it does not know, as users' error output shows it
# (observed; AWS's docs do not give the wording).
NOT_FOUND_MESSAGE = "The resource you requested does not exist."
# Request fields that are not settings.
_IDENTITY_FIELDS = ("FunctionName", "EventSourceArn", "UUID", "Tags")


class SourceStartupError(RuntimeError):
    """A template resource or event source mapping cannot be set up; the message names it."""


class SourceManager:
    def __init__(self, *, service: "LambdaService", backend: BackendClient | None, clock: "Clock",
                 app: "AppSpec", region: str, account_id: str,
                 config: SourcesConfig | None = None, errors: list[BaseException] | None = None) -> None:
        self.service = service
        self.backend = backend
        self.app = app
        self.region = region
        self.account_id = account_id
        self.config = config or SourcesConfig()
        self.errors = errors if errors is not None else []
        self.mappings: dict[str, EventSourceMapping] = {}
        self._polled: set[str] = set()  # mappings whose poller runs
        self._final: dict[str, dict[str, Any]] = {}  # last counters of a stopped poller
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks = OwnedTasks("event source mappings", self._report_error)
        self._warned: set[Any] = set()
        self._closing = False
        self.pollers: PollerProcess | None = None  # the PollerHost; none without a backend to poll
        if backend is not None:
            origin = clock.origin if isinstance(clock, ScaledClock) else None  # one timeline for both processes
            settings = PollerHostSettings(backend.endpoint_url, region, account_id, clock.scale, self.config,
                                          sources_log.getEffectiveLevel(), origin)
            events = PollerProcessEvents(self._report_error, self._processing_result, self._restart_pollers)
            self.pollers = PollerProcess(settings, LambdaInvokePort(service), events)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the template's resources, then its mappings; their pollers run on return."""
        await self.provision()
        sns_queues = expand_sns_events(self.app, region=self.region, account_id=self.account_id).mappings
        for declared in [*template_mappings(self.app), *(TemplateMapping(w, r) for w, r in sns_queues)]:
            kind = source_kind(str(declared.request.get("EventSourceArn") or ""))
            if kind not in SUPPORTED_KINDS:
                log.warning("%s: %s: event source %r is not emulated; skipped", self.app.source, declared.where,
                            declared.request.get("EventSourceArn"))
                continue
            try:
                await self.create(declared.request, origin=declared.where)
            except AwsError as exc:
                raise SourceStartupError(f"{self.app.source}: {declared.where}: {exc.message}") from None
        await self._settle()

    async def provision(self) -> None:
        """Create the template's resources in the backend (at start-up, and again after the
        backend restarted empty: emulator/backend/moto_process.py)."""
        if self.backend is not None:
            provisioner = Provisioner(self.backend, region=self.region, account_id=self.account_id, source=self.app.source)
            # SAM's SNS events stand for subscriptions (and queues) of their own.
            app = with_sns_event_resources(self.app, expand_sns_events(self.app, region=self.region,
                                                                       account_id=self.account_id))
            try:
                await provisioner.provision(app)
            except ProvisioningError as exc:
                raise SourceStartupError(str(exc)) from None
            except UNREACHABLE as exc:
                raise SourceStartupError(f"{self.app.source}: the AWS backend did not answer while creating the "
                                         f"template's resources: {exc}") from None

    async def stop(self) -> None:
        """Stop every poller (in-flight batches finish or are left to their source)."""
        await self._settle(timeout=TRANSITION_GRACE_S)
        await self._tasks.cancel_all()
        polled = list(self._polled)
        results = await asyncio.gather(*(self._stop_poller(uuid_) for uuid_ in polled), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                self._report_error(result)

    async def close(self) -> None:
        """Stop every poller, then the poller process (at shutdown)."""
        self._closing = True
        await self.stop()
        if self.pollers is not None:
            await self.pollers.close()

    async def reset(self) -> None:
        """Back to the template: pollers stopped, API-made mappings gone, resources re-created."""
        await self.stop()
        if self.pollers is not None:
            for uuid_ in self.mappings:
                self.pollers.forget(uuid_)
        self.mappings.clear()
        self._final.clear()
        self._locks.clear()
        await self.start()

    async def _settle(self, timeout: float | None = None) -> None:
        """Wait for the transitions under way."""
        while self._tasks:
            done, _ = await asyncio.wait(list(self._tasks), timeout=timeout)
            if not done:
                return

    def _report_error(self, error: BaseException) -> None:
        remote = getattr(error, "remote_traceback", None)
        if remote:
            log.error("event source poller failed: %s\n%s", error, remote.rstrip())
        else:
            log.error("event source poller failed", exc_info=error)
        self.errors.append(error)

    def _processing_result(self, uuid_: str, result: str) -> None:
        mapping = self.mappings.get(uuid_)
        if mapping is not None:
            mapping.last_processing_result = result

    def _restart_pollers(self) -> None:
        """The poller process died: start the pollers it ran again (in a new one)."""
        lost, self._polled = self._polled, set()
        if self._closing:
            return
        for uuid_ in lost:
            mapping = self.mappings.get(uuid_)
            if mapping is not None and mapping.state is MappingState.ENABLED:
                self._tasks.spawn(self._restart_poller(mapping), f"{uuid_}: restart")

    async def _restart_poller(self, mapping: EventSourceMapping) -> None:
        async with self._locks.setdefault(mapping.uuid, asyncio.Lock()):
            if self.mappings.get(mapping.uuid) is mapping and mapping.state is MappingState.ENABLED:
                await self._start_poller(mapping)

    # -- metrics --------------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        live = await self.pollers.snapshots() if self.pollers is not None else {}
        result: dict[str, Any] = {}
        for uuid_, mapping in self.mappings.items():
            counters = live.get(uuid_)
            if counters is None:
                counters = {**self._final.get(uuid_, {}), "Pollers": 0, "BatchesInFlight": 0}
            result[uuid_] = {"FunctionArn": mapping.function_arn, "EventSourceArn": mapping.event_source_arn,
                             "State": str(mapping.state), **counters}
        return result

    # -- the API --------------------------------------------------------------------------
    def get(self, uuid_: str) -> EventSourceMapping:
        mapping = self.mappings.get(uuid_)
        if mapping is None:
            raise ResourceNotFound(NOT_FOUND_MESSAGE)
        return mapping

    async def create(self, request: Mapping[str, Any], *, origin: str = "api") -> dict[str, Any]:
        function_arn = self._function_arn(request.get("FunctionName"))
        source_arn = request.get("EventSourceArn")
        if not isinstance(source_arn, str) or not source_arn:
            # AWS's wording, observed in LocalStack's AWS-verified ESM tests (not in AWS's docs).
            raise InvalidParameterValue("Unrecognized event source.")
        kind = source_kind(source_arn)
        if kind not in SUPPORTED_KINDS:
            raise InvalidParameterValue(f"Unsupported event source {source_arn!r}: the emulator polls SQS queues, "
                                        "Kinesis streams and DynamoDB streams")
        await self._check_source(kind, source_arn)
        settings = settings_from_request(self._settings_part(request), kind=kind, fifo=self._fifo(source_arn),
                                         event_source_arn=source_arn, now=time.time(),
                                         max_filters=self.config.event_filter_quota)
        if kind == SQS:
            await self._check_visibility_timeout(source_arn, function_arn)
        self._check_duplicate(function_arn, source_arn, kind)
        mapping = EventSourceMapping.new(function_arn, source_arn, settings, region=self.region,
                                         account_id=self.account_id, origin=origin)
        self.mappings[mapping.uuid] = mapping
        self._locks[mapping.uuid] = asyncio.Lock()
        self._warn_not_emulated(mapping)
        answer = mapping.to_api()
        self._spawn_transition(mapping)
        return answer

    async def update(self, uuid_: str, request: Mapping[str, Any]) -> dict[str, Any]:
        mapping = self.get(uuid_)
        if mapping.state not in STABLE_STATES:
            # UpdateEventSourceMapping lists ResourceInUseException (the Lambda API model above).
            raise ResourceInUse(f"Cannot update the event source mapping {uuid_} because it is in state "
                                f"{mapping.state}; retry when it is Enabled or Disabled.")
        function_arn = mapping.function_arn
        if request.get("FunctionName") is not None:
            function_arn = self._function_arn(request["FunctionName"])
            if mapping.kind == SQS:
                await self._check_visibility_timeout(mapping.event_source_arn, function_arn)
        settings = settings_from_request(self._settings_part(request), kind=mapping.kind,
                                         fifo=self._fifo(mapping.event_source_arn),
                                         event_source_arn=mapping.event_source_arn, base=mapping.settings,
                                         max_filters=self.config.event_filter_quota)
        was_enabled = mapping.state is MappingState.ENABLED
        # A new value: the running poller keeps the settings it started with until it stops.
        updated = replace(mapping, function_arn=function_arn, settings=settings, last_modified=time.time())
        if settings.enabled == was_enabled:
            updated.transition(MappingState.UPDATING)
        else:
            updated.transition(MappingState.ENABLING if settings.enabled else MappingState.DISABLING)
        self.mappings[uuid_] = updated
        self._warn_not_emulated(updated)
        answer = updated.to_api()
        self._spawn_transition(updated)
        return answer

    async def delete(self, uuid_: str) -> dict[str, Any]:
        mapping = self.get(uuid_)
        if mapping.state is not MappingState.DELETING:
            mapping.transition(MappingState.DELETING)
            self._spawn_transition(mapping)
        return mapping.to_api()

    def list_mappings(self, *, function_name: str | None = None, event_source_arn: str | None = None,
             marker: str | None = None, max_items: int = DEFAULT_LIST_MAX_ITEMS) -> dict[str, Any]:
        if not 1 <= max_items <= MAX_LIST_MAX_ITEMS:
            raise InvalidParameterValue(f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
                                        f"satisfy constraint: Member must have value "
                                        f"{'greater than or equal to 1' if max_items < 1 else 'less than or equal to 10000'}")
        selected = list(self.mappings.values())
        if event_source_arn:
            selected = [m for m in selected if m.event_source_arn == event_source_arn]
        if function_name:
            name, qualifier = self.service.registry.parse_name(function_name)
            selected = [m for m in selected if m.function_name == name and (qualifier is None or m.qualifier == qualifier)]
        start = 0
        if marker:
            ids = [m.uuid for m in selected]
            if marker not in ids:
                raise InvalidParameterValue(f"Invalid marker: {marker}")
            start = ids.index(marker)
        page = selected[start:start + max_items]
        body: dict[str, Any] = {"EventSourceMappings": [m.to_api() for m in page]}
        if start + max_items < len(selected):
            body["NextMarker"] = selected[start + max_items].uuid
        return body

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _settings_part(request: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in request.items() if k not in _IDENTITY_FIELDS}

    def _function_arn(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw:
            raise InvalidParameterValue("1 validation error detected: Value null at 'functionName' failed to "
                                        "satisfy constraint: Member must not be null")
        registry = self.service.registry
        name, qualifier = registry.parse_name(raw)
        version = registry.resolve(raw)  # ResourceNotFound for an unknown function, version or alias
        return version.function_arn + (f":{qualifier}" if qualifier else "")

    @staticmethod
    def _fifo(source_arn: str) -> bool:
        return source_kind(source_arn) == SQS and source_arn.endswith(".fifo")

    async def _check_source(self, kind: str, source_arn: str) -> None:
        """The queue or stream must exist in the backend (ResourceNotFound otherwise)."""
        if self.backend is None:
            return
        try:
            if kind == SQS:
                await self.backend.queue_url(source_arn)
            elif kind == "kinesis":
                await self.backend.kinesis("DescribeStreamSummary", {"StreamARN": source_arn})
            elif kind == "dynamodb":
                await self.backend.dynamodb_streams("DescribeStream", {"StreamArn": source_arn, "Limit": 1})
        except BackendError as exc:
            if exc.status >= 500:
                raise
            noun = "queue" if kind == SQS else "stream"
            raise ResourceNotFound(f"The event source {noun} {source_arn} does not exist "
                                   f"({exc.code or exc.status}: {exc.message})") from None
        except ValueError:
            raise InvalidParameterValue(f"Value '{source_arn}' at 'eventSourceArn' is not a valid ARN") from None

    async def _check_visibility_timeout(self, queue_arn: str, function_arn: str) -> None:
        if self.backend is None:
            return
        attributes = await self.backend.sqs_queue_attributes(await self.backend.queue_url(queue_arn), ["VisibilityTimeout"])
        check_visibility_timeout(int(attributes.get("VisibilityTimeout", 30)),
                                 self.service.registry.resolve(function_arn).spec.timeout_s)

    def _check_duplicate(self, function_arn: str, source_arn: str, kind: str) -> None:
        for other in self.mappings.values():
            if other.function_arn != function_arn or other.event_source_arn != source_arn:
                continue
            if other.state is MappingState.DELETING:
                continue
            name = function_arn.split(":")[6]
            if kind == SQS:
                # AWS's wording, observed in LocalStack's AWS-verified ESM tests (not in AWS's docs).
                raise ResourceConflict(f'An event source mapping with SQS arn (" {source_arn} ") and function '
                                       f'(" {name} ") already exists. Please update or delete the existing mapping '
                                       f"with UUID {other.uuid}")
            raise ResourceConflict(f'The event source arn (" {source_arn} ") and function (" {name} ") provided '
                                   f"mapping already exists. Please update or delete the existing mapping with UUID "
                                   f"{other.uuid}")

    def _warn_not_emulated(self, mapping: EventSourceMapping) -> None:
        settings = mapping.settings
        notes = []
        if "ProvisionedPollerConfig" in settings.extra:
            notes.append("ProvisionedPollerConfig (on-demand poller scaling applies)")
        if settings.tumbling_window_s:
            notes.append("TumblingWindowInSeconds")
        for note in notes:
            if (mapping.uuid, note) not in self._warned:
                self._warned.add((mapping.uuid, note))
                sources_log.warning("event source mapping %s (%s): %s is accepted but not emulated",
                                    mapping.uuid, mapping.origin, note)

    # -- transitions ----------------------------------------------------------------------
    def _spawn_transition(self, mapping: EventSourceMapping) -> None:
        self._tasks.spawn(self._transition(mapping), f"{mapping.uuid}: {mapping.state}")

    async def _transition(self, mapping: EventSourceMapping) -> None:
        lock = self._locks.setdefault(mapping.uuid, asyncio.Lock())
        async with lock:
            await self._stop_poller(mapping.uuid)
            if mapping.state is MappingState.DELETING:
                self.mappings.pop(mapping.uuid, None)
                self._locks.pop(mapping.uuid, None)
                self._final.pop(mapping.uuid, None)
                if self.pollers is not None:
                    self.pollers.forget(mapping.uuid)
                return
            if mapping.settings.enabled:
                try:
                    await self._start_poller(mapping)
                except Exception as exc:  # a poller that cannot start: the mapping stays off
                    self._report_error(exc)
                    if mapping.state is not MappingState.DELETING:
                        mapping.transition(MappingState.DISABLED)
                        mapping.state_transition_reason = f"PROBLEM: the poller could not start: {exc}"
                    return
            if mapping.state is MappingState.DELETING:
                return  # deleted meanwhile: the delete's own transition stops the poller
            mapping.transition(MappingState.ENABLED if mapping.settings.enabled else MappingState.DISABLED)

    async def _start_poller(self, mapping: EventSourceMapping) -> None:
        if self.pollers is None or mapping.kind not in POLLER_MODULES:
            reason = "there is no AWS backend" if self.pollers is None else f"no {mapping.kind} poller exists"
            if mapping.uuid not in self._warned:
                self._warned.add(mapping.uuid)
                log.warning("event source mapping %s (%s): nothing polls %s: %s", mapping.uuid, mapping.origin,
                            mapping.event_source_arn, reason)
            return
        self._polled.add(mapping.uuid)  # from here on, a death of the poller process starts it again
        try:
            await self.pollers.start_poller(mapping)
        except ChannelClosed:
            return  # the poller process died meanwhile: its restart (_restart_pollers) starts this poller too
        except BaseException:
            self._polled.discard(mapping.uuid)
            raise
        self._final.pop(mapping.uuid, None)

    async def _stop_poller(self, uuid_: str) -> None:
        if uuid_ in self._polled and self.pollers is not None:
            self._polled.discard(uuid_)
            self._final[uuid_] = await self.pollers.stop_poller(uuid_)
