"""A request's way through the gateway, as an ordered list of stages:

    route -> authorizer -> API key -> throttle layers -> stage cache -> integration (Lambda proxy)
    -> response mapping

Each stage is `async (Exchange) -> GatewayResponse | None`; the first answer ends the
request. The authorizer (emulator.apigateway.authorizers) goes in after the route
(`insert_after`), the stage cache (emulator.apigateway.cache_stage) just before the
integration (`insert_before_integration`), and what the integration answered is offered to
`after_integration` hooks (the cache keeps it). The integration invokes through `LambdaService.invoke`, so
the function's concurrency, scaling rate and throttles hold exactly as for any other caller.
The invocation is not bound to the request: at the integration timeout the client gets 504
(REST) or 503 (HTTP API) and the invocation runs on to its own timeout, as on AWS
(https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html: "the integration
timeout" ends API Gateway's wait, not the function).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from emulator.apigateway.answers import Answer, gateway_answer, id_headers
from emulator.apigateway.event_json import encode_event
from emulator.apigateway.events import (
    AuthorizerOutcome, EventContext, GatewayRequest, GatewayResponse, MalformedResponse, header_value, map_response,
)
from emulator.apigateway.metrics import GatewayMetrics, RequestCounters
from emulator.apigateway.routing import Catalogue, RouteMatch, RouteMiss
from emulator.apigateway.throttles import GatewayThrottles, KeyGrant
from emulator.clock import Clock
from emulator.errors import AwsError, TooManyRequests
from emulator.execution.invoker import InvokeResult
from emulator.policy.api_throttling import ThrottleLayer
from emulator.service.lambda_service import LambdaService, new_request_id
from emulator.template.api_specs import REST

log = logging.getLogger("emulator.apigateway")

# Lambda refuses a synchronous event over 6 MB ("RequestTooLargeException"); API Gateway
# then answers 500 (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
# https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
LAMBDA_MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
API_KEY_HEADER = "x-api-key"
# A throttled or refused stream of requests is logged once per route and reason per this
# many seconds (the rest are counted in the metrics).
LOG_EVERY_S = 10.0
_ids = random.Random(random.SystemRandom().getrandbits(64))  # request ids need uniqueness, not secrecy


def extended_request_id() -> str:
    """Like `LgbI6FbmoAMFmxw=`: the extended request id of REST APIs, the request id of HTTP APIs."""
    return base64.b64encode(_ids.getrandbits(88).to_bytes(11, "big")).decode()


@dataclass(slots=True)
class Exchange:
    """One request on its way through the stages."""

    request: GatewayRequest
    started: float  # perf_counter at arrival
    received_wall: float  # emulated epoch seconds
    request_id: str = ""
    extended_request_id: str = ""
    match: RouteMatch | None = None
    miss: RouteMiss | None = None
    grant: KeyGrant | None = None
    integration_ms: float | None = None
    throttled_by: ThrottleLayer | None = None
    lambda_throttled: bool = False
    timed_out: bool = False
    # The stage cache: the key of a cached method's request, the TTL to keep its answer, and
    # whether it was a hit (None: the method is not cached).
    cache_key: tuple[str, ...] | None = None
    cache_ttl_s: float = 0.0
    cache_hit: bool | None = None
    integration_answered: bool = False  # the function's own answer (not one of API Gateway's)
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    authorizer: AuthorizerOutcome | None = None  # what a Lambda authorizer let through
    authorizer_result: str | None = None  # for the metrics: invoked, cached, unauthorized, denied, failed, throttled

    @property
    def kind(self) -> str | None:
        if self.match is not None:
            return self.match.api.kind
        return self.miss.api.kind if self.miss is not None and self.miss.api is not None else None


Stage = Callable[[Exchange], Awaitable["GatewayResponse | None"]]


@dataclass(frozen=True)
class PipelineSettings:
    account_id: str
    region: str
    lambda_throttle_status: int = 500


class GatewayPipeline:
    def __init__(self, *, catalogue: Catalogue, throttles: GatewayThrottles, service: LambdaService, clock: Clock,
                 metrics: GatewayMetrics, settings: PipelineSettings) -> None:
        self.catalogue = catalogue
        self.throttles = throttles
        self.service = service
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self.stages: list[Stage] = [self.route, self.check_api_key, self.throttle, self.integrate]
        self.after_integration: list[Callable[[Exchange, GatewayResponse], None]] = []
        self.outliving: set[asyncio.Task] = set()  # invocations past their integration timeout
        self._logged: dict[tuple[str, ...], float] = {}

    def insert_before_integration(self, stage: Stage) -> None:
        """Add a stage (a cache, an authorizer) just before the integration."""
        self.stages.insert(self.stages.index(self.integrate), stage)

    def insert_after(self, anchor: Stage, stage: Stage) -> None:
        """Add a stage just after `anchor` (the authorizer after the route)."""
        self.stages.insert(self.stages.index(anchor) + 1, stage)

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        exchange = Exchange(request, time.perf_counter(), self.clock.wall())
        for stage in self.stages:
            response = await stage(exchange)
            if response is not None:
                break
        else:  # the integration always answers; a stage list without it is a wiring error
            raise RuntimeError("no stage of the gateway answered")
        self._record(exchange, response)
        return response

    async def handle_or_fail(self, request: GatewayRequest) -> GatewayResponse:
        """handle(), with a failure of ours answered as API Gateway's 500 (the traceback to
        our log): what both HTTP paths of the gateway port answer."""
        try:
            return await self.handle(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the gateway failed on %s %s", request.method, request.raw_path)
            return self.refuse(request, Answer.INTERNAL)

    def refuse(self, request: GatewayRequest, answer: Answer) -> GatewayResponse:
        """API Gateway's `answer` to a request the HTTP layer refused before the pipeline (a body
        over the payload limit), shaped and counted for the API it was for."""
        exchange = Exchange(request, time.perf_counter(), self.clock.wall())
        found = self.catalogue.lookup(request.host, request.method, request.raw_path)
        if isinstance(found, RouteMiss):
            exchange.miss = found
        else:
            exchange.match = found
        self._new_ids(exchange, exchange.kind or REST)
        response = self.answer(exchange, answer)
        self._record(exchange, response)
        return response

    def answer(self, exchange: Exchange, answer: Answer) -> GatewayResponse:
        return gateway_answer(exchange.kind, answer, exchange.request_id, exchange.extended_request_id,
                              self.settings.lambda_throttle_status)

    # -- stages ---------------------------------------------------------------------------------
    async def route(self, exchange: Exchange) -> GatewayResponse | None:
        request = exchange.request
        found = self.catalogue.lookup(request.host, request.method, request.raw_path)
        if isinstance(found, RouteMiss):
            exchange.miss = found
            self._new_ids(exchange, found.api.kind if found.api else REST)
            return self.answer(exchange, Answer.UNKNOWN_API if found.unknown_api else Answer.MISSING_ROUTE)
        exchange.match = found
        self._new_ids(exchange, found.api.kind)
        return None

    async def check_api_key(self, exchange: Exchange) -> GatewayResponse | None:
        match = exchange.match
        assert match is not None
        if not match.route.api_key_required or match.api.kind != REST:
            return None  # HTTP APIs have no API keys
        value = next((v for k, v in exchange.request.headers if k.lower() == API_KEY_HEADER), None)
        exchange.grant = self.throttles.grant(value, match.api.api_id, match.stage.name)
        if exchange.grant is None:
            self.log_once(exchange, "api-key", "403 Forbidden: the API key is %s",
                           "missing" if not value else "unknown, disabled or in no usage plan of this stage")
            return self.answer(exchange, Answer.FORBIDDEN)
        return None

    async def throttle(self, exchange: Exchange) -> GatewayResponse | None:
        match = exchange.match
        assert match is not None
        layer = self.throttles.check(match, exchange.grant, self.clock.now(), exchange.received_wall)
        if layer is None:
            return None
        exchange.throttled_by = layer
        if layer is ThrottleLayer.ACCOUNT:
            self.metrics.account_throttles += 1
        self.log_once(exchange, f"throttle-{layer}", "429 by the %s layer; further throttles are counted in "
                       "/_emulator/metrics (ThrottlesByLayer)", layer.value)
        return self.answer(exchange, Answer.QUOTA_EXCEEDED if layer is ThrottleLayer.QUOTA else Answer.THROTTLED)

    async def integrate(self, exchange: Exchange) -> GatewayResponse:
        match = exchange.match
        assert match is not None
        integration = match.route.integration
        if integration is None:
            self.log_once(exchange, "not-configured", "500: %s is not served: %s", match.route.declared_by,
                           match.route.unsupported)
            return self.answer(exchange, Answer.NOT_CONFIGURED)
        context = EventContext(exchange.request_id, exchange.extended_request_id, self.settings.account_id,
                               self.settings.region, exchange.received_wall,
                               exchange.grant.key.value if exchange.grant else None,
                               exchange.grant.key.key_id if exchange.grant else None, exchange.authorizer)
        payload = encode_event(exchange.request, match, context)
        if len(payload) > LAMBDA_MAX_SYNC_PAYLOAD:
            self.log_once(exchange, "too-large", "500: the event (%d bytes) is over Lambda's 6 MB limit", len(payload))
            return self.answer(exchange, Answer.LAMBDA_REFUSED)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # One waiter and one timer instead of asyncio.wait (its sets and callbacks were a
        # measurable part of a request); the task is not awaited, so a timeout leaves it
        # running. The task fills the waiter itself, a loop turn sooner than a done callback.
        waiter: asyncio.Future[bool] = loop.create_future()
        task = loop.create_task(self._invoke_into(waiter, integration.function, integration.qualifier, payload))
        timer = loop.call_later(integration.timeout_ms / 1000.0, _fill, waiter, False)
        try:
            finished = await waiter
        except asyncio.CancelledError:
            self._outlive(task)  # the client is gone (or shutdown); the invocation is not
            raise
        finally:
            timer.cancel()
        if not finished:
            exchange.timed_out = True
            self._outlive(task)
            self.log_once(exchange, "timeout", "%s: the integration did not answer within %d ms; the invocation runs on",
                           "504" if match.api.kind == REST else "503", integration.timeout_ms)
            return self.answer(exchange, Answer.TIMEOUT)
        exchange.integration_ms = (time.perf_counter() - started) * 1000.0
        outcome = task.result()
        if isinstance(outcome, Answer):
            exchange.lambda_throttled = outcome is Answer.LAMBDA_THROTTLED
            return self.answer(exchange, outcome)
        if outcome.function_error:
            self.log_once(exchange, "function-error", "%s: the function failed (%s)",
                           "502" if match.api.kind == REST else "500", outcome.error_type)
            return self.answer(exchange, Answer.BAD_RESPONSE)
        try:
            response = map_response(outcome.payload, match, header_value(exchange.request.headers, "accept"))
        except MalformedResponse as exc:
            self.log_once(exchange, "malformed", "%s: malformed Lambda proxy response: %s",
                           "502" if match.api.kind == REST else "500", exc)
            return self.answer(exchange, Answer.BAD_RESPONSE)
        exchange.integration_answered = True
        for hook in self.after_integration:
            hook(exchange, response)
        response.headers.extend(exchange.extra_headers)
        response.headers.extend(id_headers(match.api.kind, exchange.request_id, exchange.extended_request_id))
        return response

    async def _invoke_into(self, waiter: asyncio.Future[bool], function: str, qualifier: str | None,
                           payload: bytes) -> InvokeResult | Answer:
        try:
            return await self.invoke(function, qualifier, payload)
        finally:
            _fill(waiter, True)  # the task ends in this same step: its result is there when the waiter wakes

    async def invoke(self, function: str, qualifier: str | None, payload: bytes) -> InvokeResult | Answer:
        service = self.service
        try:
            version, effective = service.registry.resolve_qualified(function, qualifier)
            return await service.invoke(version, payload, qualifier=effective)
        except TooManyRequests:
            return Answer.LAMBDA_THROTTLED
        except AwsError as exc:
            log.info("the Lambda API refused an invocation of %s: %s", function, exc.message)
            return Answer.LAMBDA_REFUSED
        except Exception:  # our own failure: the client gets API Gateway's 500, the log the traceback
            log.exception("invoking %s for API Gateway failed", function)
            return Answer.LAMBDA_REFUSED

    def _outlive(self, task: asyncio.Task) -> None:
        if task.done():
            return
        self.outliving.add(task)
        task.add_done_callback(self._outlived)

    def _outlived(self, task: asyncio.Task) -> None:
        self.outliving.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an invocation that outlived its request failed", exc_info=task.exception())

    async def close(self) -> None:
        """Cancel the invocations still running past their requests (at shutdown)."""
        tasks = list(self.outliving)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _new_ids(self, exchange: Exchange, kind: str) -> None:
        exchange.extended_request_id = extended_request_id()
        # REST: a UUID, with the extended id apart; HTTP APIs: the short id only.
        exchange.request_id = new_request_id() if kind == REST else exchange.extended_request_id

    def _record(self, exchange: Exchange, response: GatewayResponse) -> None:
        latency_ms = (time.perf_counter() - exchange.started) * 1000.0
        match = exchange.match
        if match is not None:
            stage = self.metrics.stage(match.api.api_id, match.stage.name)
            counters: tuple[RequestCounters, ...] = (stage.totals, stage.route(match.route.key))
        elif exchange.miss is not None and exchange.miss.stage is not None and exchange.miss.api is not None:
            counters = (self.metrics.stage(exchange.miss.api.api_id, exchange.miss.stage.name).totals,)
        else:
            self.metrics.unmatched += 1
            return
        for counter in counters:
            counter.record(response.status, latency_ms, exchange.integration_ms)
            if exchange.throttled_by is not None:
                counter.throttles[exchange.throttled_by.value] += 1
            if exchange.lambda_throttled:
                counter.lambda_throttles += 1
            if exchange.timed_out:
                counter.integration_timeouts += 1
            if exchange.cache_hit is not None:
                if exchange.cache_hit:
                    counter.cache_hits += 1
                else:
                    counter.cache_misses += 1
            if exchange.authorizer_result is not None:
                counter.authorizer[exchange.authorizer_result] += 1

    def log_once(self, exchange: Exchange, reason: str, message: str, *args: object) -> None:
        match = exchange.match
        where = (match.api.api_id, match.stage.name, match.route.key) if match else ("-",)
        key = (*where, reason)
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        self._logged[key] = now
        prefix = f"{match.api.name} ({match.api.api_id}) {match.stage.name} {match.route.key}: " if match else ""
        log.info(prefix + message, *args)


def _fill(waiter: asyncio.Future[bool], finished: bool) -> None:
    if not waiter.done():
        waiter.set_result(finished)
