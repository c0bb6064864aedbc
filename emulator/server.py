"""The composition root of a running emulator: startup -> serve -> shutdown.

Used by the CLI (`emulator up`) and the pytest plugin alike. Start-up order: clock and
state, backend (moto), HTTP bind, template resources, background tasks, ready. Shutdown
runs the reverse with a deadline: stop accepting, drain in-flight invocations, cancel the
rest, stop environments and templates, stop moto.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from aiohttp import web

from emulator.advice.app_facts import describe as describe_app
from emulator.apigateway.front_door import ApiGatewayFrontDoor, GatewayConfig
from emulator.service.async_queue import AsyncInvocationQueue, event_invoke_config_from_spec
from emulator.backend.proxy import AwsProxy
from emulator.backend.client import BackendClient
from emulator.backend.dynamodb_capacity import DynamoDBCapacity
from emulator.backend.dynamodb_scaling_targets import ScalingTemplateError
from emulator.clock import ScaledClock
from emulator.policy.api_throttling import QuotaOffset, SpendRule, account_limits
from emulator.policy.concurrency import ConcurrencyLedger, LimitsConfig
from emulator.config import Config, remote_binding
from emulator.errors import AwsError
from emulator.service.destinations import Destinations
from emulator.service.function_admin import FunctionAdmin
from emulator.service.function_lifecycle import FunctionLifecycle
from emulator.service.function_policies import FunctionPolicies
from emulator.functions.code_tree import CodeFingerprint, code_fingerprint
from emulator.functions.code_watch import CodeWatcher
from emulator.functions.packages import PackageError, prepare_packages
from emulator.functions.registry import FunctionRegistry
from emulator.api.fast_invoke import FastInvokeServer
from emulator.api.routing import build_server
from emulator.execution.host_limits import raise_open_files_limit, warn_if_short
from emulator.execution.invoker import Invoker
from emulator.api.cloudwatch_api import CloudWatchApi
from emulator.api.esm_api import EsmApi
from emulator.api.dashboard_api import DashboardApi
from emulator.api.telemetry_api import TelemetryApi
from emulator.api.function_api import FunctionApi
from emulator.api.policy_api import PolicyApi
from emulator.api.lambda_api import LambdaApi
from emulator.api.lambda_config_api import LambdaConfigApi
from emulator.api.layers_api import LayersApi
from emulator.service.lambda_service import LambdaService
from emulator.execution.log_feed import CloudWatchFeed
from emulator.execution.logsink import LogSink
from emulator.service.log_shipper import LogShipper
from emulator.execution.reaper import reap_idle_environments
from emulator.functions.metrics import DROPPED_AT_SHUTDOWN, DROPPED_BY_RESET, Metrics
from emulator.backend.moto_process import MotoServer
from emulator.execution.backends import UnsupportedExecution, build_backends, check_runnable
from emulator.execution.forkserver_client import ForkServerError
from emulator.execution.pool import EnvironmentFactory
from emulator.policy.scaling import ScalingRateConfig, ScalingRateModel
from emulator.sources.base import SourcesConfig
from emulator.sources.manager import SourceManager, SourceStartupError
from emulator.sns.fanout import SnsLambdaFanout, lambda_ports
from emulator.template.specs import MAX_MEMORY_MB, MIN_MEMORY_MB, AppSpec
from emulator.tasks import OwnedTasks
from emulator.telemetry.sampler import LedgerView, Sampler, SamplerPorts
from emulator.telemetry.timeline import Timeline

log = logging.getLogger("emulator.server")


class StartupError(RuntimeError):
    """The emulator cannot start with this configuration; the message says why."""


class PortInUse(StartupError):
    """The endpoint's port is taken (a caller that picked the port itself may pick another)."""


def with_memory_sizes(app: AppSpec, sizes: Mapping[str, str]) -> AppSpec:
    """`--memory-sizes NAME=MB`: the functions' MemorySize over the template's."""
    functions = dict(app.functions)
    for name, value in sizes.items():
        if name not in functions:
            raise StartupError(f"--memory-sizes: no function {name!r} in the template")
        if not value.isdigit() or not MIN_MEMORY_MB <= int(value) <= MAX_MEMORY_MB:
            raise StartupError(f"--memory-sizes: {name}={value}: MemorySize is {MIN_MEMORY_MB} to {MAX_MEMORY_MB} MB")
        functions[name] = dataclasses.replace(functions[name], memory_mb=int(value))
    return dataclasses.replace(app, functions=functions) if sizes else app


class RemoteBindingRefused(StartupError):
    """A non-loopback --host without --allow-remote (a usage error for the CLI)."""


class EmulatorServer:
    def __init__(self, config: Config, app: AppSpec) -> None:
        self.config = config
        self.app = app
        self.errors: list[BaseException] = []  # failures of background tasks (the pytest plugin re-raises them)
        self.ready = False
        self.port: int | None = None
        self._tasks = OwnedTasks("emulator", self.errors.append)
        self._runner: web.ServerRunner | None = None
        self._http: FastInvokeServer | None = None
        self.gateway: ApiGatewayFrontDoor | None = None
        self.moto: MotoServer | None = None
        self.backend: BackendClient | None = None
        self.backend_url: str | None = None
        self.sns: SnsLambdaFanout | None = None  # SNS → Lambda deliveries (with a backend)
        self.timeline: Timeline | None = None
        self.sampler: Sampler | None = None
        self.log_shipper: LogShipper | None = None

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    # -- start-up ----------------------------------------------------------------------
    async def start(self) -> None:
        config = self.config
        # The one place the --host rule is checked (the CLI and the pytest plugin come here).
        binding = remote_binding(config)
        if binding.refusal is not None:
            raise RemoteBindingRefused(binding.refusal)
        if binding.warning is not None:
            log.warning("\n%s\n%s\n%s", "!" * 78, binding.warning, "!" * 78)
        self.app = with_memory_sizes(self.app, config.memory_sizes)
        self.clock = ScaledClock(config.time_scale)
        # The per-second timeline (docs/timeline.md), fed by the metrics and by the sampler.
        self.timeline = Timeline(self.clock.wall, config.timeline_retention) if config.timeline else None
        self.metrics = Metrics(self.timeline)
        self.logs = LogSink(enabled=config.log_invocations)
        self.registry = FunctionRegistry(config.region, config.account_id)
        self.ledger = self._new_ledger()
        self.scaling = ScalingRateModel(self._scaling_config())
        self.descriptors = raise_open_files_limit()
        warn_if_short(self.descriptors, self._limits().account_limit)
        # Handlers' (and moto's) HOME: private to this emulator, removed at stop.
        self._home_dir = Path(tempfile.mkdtemp(prefix="lambda-emulator-home-"))
        self.factory = EnvironmentFactory(
            region=config.region, endpoint_url="", logs=self.logs, interpreter=config.interpreter,
            max_environments=self.descriptors.environment_limit, home=str(self._home_dir),
            memory_limits=config.memory_limits, cpu_model=config.cpu_model,
        )
        self.execution = build_backends(config, self.factory, self.logs, self.app.functions.values())
        self.invoker = Invoker(self.execution, self.logs, self.metrics, config.log_invocations)
        self.service = LambdaService(
            registry=self.registry, invoker=self.invoker, ledger=self.ledger, scaling=self.scaling, clock=self.clock, metrics=self.metrics
        )
        self._versions_dir = Path(tempfile.mkdtemp(prefix="lambda-emulator-versions-"))
        self.admin = FunctionAdmin(self.service, self.invoker, self._versions_dir)
        # Packages uploaded through CreateFunction / UpdateFunctionCode, and the .zips
        # GetFunction's Code.Location serves: this emulator's, removed at stop.
        self._packages_dir = Path(tempfile.mkdtemp(prefix="lambda-emulator-packages-"))
        self.lifecycle = FunctionLifecycle(self.admin, self._packages_dir / "functions", self.errors.append)
        self.policies = FunctionPolicies(lambda: self.service.registry)
        try:
            await self._start_environments()
            await self._prepare_packages()
            self._load_functions(await self._code_fingerprints())
            self._check_execution()
            await self._start_backend()
            self.sources = self._new_source_manager()
            self.gateway = self._new_gateway()
            await self._bind()
            await self._start_gateway()
        except BaseException:
            await self.stop()
            raise
        self.factory.endpoint_url = self.url
        self.execution.ready()  # environments prepared ahead know the endpoint now
        self.destinations = Destinations(self.backend, self._submit_record, self.registry.resolve)
        self.async_queue = AsyncInvocationQueue(self.service.async_queue_ports(), self.clock, self.destinations)
        self.service.async_queue = self.async_queue
        try:
            await self._publish_template_aliases()
        except BaseException:
            await self.stop()
            raise
        self._spawn(self.async_queue.run(), "async invocation queue")
        if self.backend is not None and self.backend_url:
            self.sns = SnsLambdaFanout(ports=lambda_ports(self.service, self.backend), backend_url=self.backend_url,
                                       clock=self.clock, rejections=config.sns_lambda_rejections, errors=self.errors)
            self.sns.start()
        if self.log_shipper is not None:
            self._spawn(self.log_shipper.run(), "CloudWatch Logs shipper")
        self._spawn(reap_idle_environments(lambda: self.invoker.pools.values(), config.keep_alive, self.clock), "keep-alive reaper")
        if config.watch_code:
            self._spawn(self._watch_code(), "code watcher")
        if self.timeline is not None:
            self.sampler = Sampler(self.timeline, self._sampler_ports(), config.time_scale)
            self._spawn(self.sampler.run(), "timeline sampler")
        try:
            await self.sources.start()  # template resources in the backend, then event source pollers
        except SourceStartupError as exc:
            await self.stop()
            raise StartupError(str(exc)) from None
        except BaseException:
            await self.stop()
            raise
        if self.dynamodb is not None:
            self._spawn(self.dynamodb.run(), "dynamodb capacity")
        self.ready = True

    async def _start_environments(self) -> None:
        try:
            await self.execution.start()
        except (ForkServerError, UnsupportedExecution) as exc:
            raise StartupError(f"cannot start execution environments: {exc}") from None

    def _check_execution(self) -> None:
        """Every function can run where it is routed, or `emulator up` says why."""
        for function in self.registry.functions.values():
            try:
                check_runnable(self.execution, function.latest)
            except UnsupportedExecution as exc:
                raise StartupError(str(exc)) from None

    async def _prepare_packages(self) -> None:
        """.zip code unpacked, layers in place (emulator/functions/packages.py): a folder of the
        emulator's own, removed when it stops."""
        self._template_packages_dir = Path(tempfile.mkdtemp(prefix="lambda-emulator-template-"))
        try:
            self.app = await asyncio.to_thread(prepare_packages, self.app, self._template_packages_dir)
        except PackageError as exc:
            raise StartupError(str(exc)) from None

    def _limits(self) -> LimitsConfig:
        config = self.config
        return LimitsConfig(config.account_concurrency, config.unreserved_minimum).scaled(config.scale_factor)

    def _new_ledger(self) -> ConcurrencyLedger:
        return ConcurrencyLedger.from_limits(self._limits())

    def _scaling_config(self) -> ScalingRateConfig:
        config = self.config
        scaling = ScalingRateConfig(
            mode=config.scaling_model,
            new_environments=config.scaling_environments,
            per_seconds=config.scaling_period,
            legacy_burst=config.legacy_burst or None,
            legacy_per_minute=config.legacy_per_minute,
            region=config.region,
        )
        return scaling.scaled(config.scale_factor)

    async def _code_fingerprints(self) -> dict[str, CodeFingerprint]:
        """Every function's code fingerprint, computed in worker threads (walking a large
        code folder must not hold up the event loop), once per folder."""
        folders = sorted({spec.code_dir for spec in self.app.functions.values()})
        fingerprints = await asyncio.gather(*(asyncio.to_thread(code_fingerprint, folder) for folder in folders))
        by_folder = dict(zip(folders, fingerprints))
        return {spec.name: by_folder[spec.code_dir] for spec in self.app.functions.values()}

    def _load_functions(self, fingerprints: dict[str, CodeFingerprint]) -> None:
        for spec in self.app.functions.values():
            self.registry.add(spec, fingerprints[spec.name])
            if spec.reserved_concurrency is not None:
                try:
                    self.ledger.set_reserved(spec.name, spec.reserved_concurrency)
                except ValueError as exc:
                    raise StartupError(f"function {spec.name}: ReservedConcurrentExecutions {spec.reserved_concurrency}: {exc}") from None
            if spec.event_invoke is not None:
                self.service.event_invoke_configs[(spec.name, "$LATEST")] = event_invoke_config_from_spec(spec.event_invoke)
        self._load_permissions()

    def _load_permissions(self) -> None:
        """The template's AWS::Lambda::Permission resources become policy statements
        (stored and returned by GetPolicy; not enforced)."""
        for resource in self.app.resources.values():
            if resource.type != "AWS::Lambda::Permission":
                continue
            target = str(resource.properties.get("FunctionName") or "")
            try:
                self.policies.add_template_permission(target, resource.logical_id, resource.properties)
            except AwsError as exc:
                raise StartupError(f"{self.app.source}: resource {resource.logical_id!r} (AWS::Lambda::Permission): "
                                   f"{exc.message}") from None

    async def _publish_template_aliases(self) -> None:
        """SAM AutoPublishAlias: version 1 plus the alias, then its provisioned concurrency."""
        for spec in self.app.functions.values():
            if not spec.auto_publish_alias:
                continue
            version = await self.admin.publish_version(spec.name)
            self.admin.create_alias(spec.name, spec.auto_publish_alias, version.version)
            if spec.event_invoke is not None:
                key = (spec.name, spec.auto_publish_alias)
                self.service.event_invoke_configs[key] = event_invoke_config_from_spec(spec.event_invoke)
            if spec.provisioned_concurrency:
                try:
                    self.admin.put_provisioned(spec.name, spec.auto_publish_alias, spec.provisioned_concurrency)
                except ValueError as exc:
                    raise StartupError(f"function {spec.name}: ProvisionedConcurrencyConfig: {exc}") from None

    async def _start_backend(self) -> None:
        config = self.config
        if config.aws_endpoint:
            self.backend_url = config.aws_endpoint
        elif config.backend == "moto":
            # DynamoDB capacity in the child runs on the emulator's clock (emulator/moto_child/fast_dynamodb.py).
            options = (f"--time-scale={config.time_scale!r}", f"--dynamodb-capacity={'on' if config.dynamodb_capacity else 'off'}")
            self.moto = MotoServer(home=str(self._home_dir), options=options)
            self.moto.on_restart = self._backend_restarted
            await self.moto.start()
            self.backend_url = self.moto.url
        if self.backend_url:
            self.backend = BackendClient(self.backend_url, config.region)
            self.lifecycle.backend = self.backend
            if config.cloudwatch_logs:
                self.logs.feed = CloudWatchFeed()
                self.log_shipper = LogShipper(self.logs.feed, self.backend)
        self.proxy = AwsProxy(self.backend_url, self.moto.unavailable_reason if self.moto is not None else None)
        self.dynamodb: DynamoDBCapacity | None = None  # DynamoDB metrics and auto scaling
        if self.backend is not None:
            try:
                self.dynamodb = DynamoDBCapacity(self.backend, self.clock, self.app, config.region, config.account_id)
            except ScalingTemplateError as exc:
                raise StartupError(f"{self.app.source}: {exc}") from None

    async def _backend_restarted(self) -> None:
        """The moto child came back empty: create the template's resources again (the
        mappings and their pollers are ours and kept; they find their queues again)."""
        if self.log_shipper is not None:
            self.log_shipper.forget_resources()
        await self.sources.provision()

    def _new_gateway(self) -> ApiGatewayFrontDoor:
        """API Gateway: the template's APIs on their own port (emulator/apigateway/)."""
        config = self.config
        rate, burst = account_limits(config.region)
        factor = config.scale_factor  # --scale-factor divides AWS's limits (a burst of at least 1)
        gateway_config = GatewayConfig(
            host=config.host, port=config.api_port, region=config.region, account_id=config.account_id,
            account_rate=(config.api_account_rate or rate) / factor,
            account_burst=max(1, int((config.api_account_burst or burst) / factor)),
            lambda_throttle_status=config.api_lambda_throttle_status,
            quota_offset=QuotaOffset(config.api_quota_offset), spend=SpendRule(config.api_throttle_spend),
            cache_max_mb=config.api_cache_max_mb, cache_statuses=config.api_cache_statuses,
        )
        return ApiGatewayFrontDoor(self.app.gateway, gateway_config, self.service, self.clock)

    async def _start_gateway(self) -> None:
        assert self.gateway is not None
        try:
            await self.gateway.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen for the template's APIs on {self.config.host}:{self.config.api_port}: "
                f"{exc.strerror or exc}. Pick another port with --api-port (0 picks a free one)."
            ) from None

    def _new_source_manager(self) -> SourceManager:
        config = self.config
        sources_config = SourcesConfig(config.sqs_scaling_model, config.sqs_max_concurrency, config.scale_factor,
                                       config.event_filter_quota)
        return SourceManager(
            service=self.service, backend=self.backend, clock=self.clock, app=self.app,
            region=config.region, account_id=config.account_id, config=sources_config, errors=self.errors,
        )

    def _sampler_ports(self) -> SamplerPorts:
        return SamplerPorts(
            ledger=lambda: LedgerView(self.ledger.snapshot(), self.ledger.provisioned_usage()),
            functions=lambda: list(self.registry.functions),
            concurrency_limit=self.service.concurrency_limit,
            mappings=self.sources.snapshot,
            backend=self.backend.timeline_metrics if self.backend is not None else None,
            api_gateway=(lambda: self.gateway.snapshot()) if self.gateway is not None else None,
            sns=(lambda: self.sns.snapshot()) if self.sns is not None else None,
        )

    def _mapping_names(self) -> dict[str, dict[str, str]]:
        """What the dashboard names mapping panels by (no call to the poller process)."""
        return {uuid: {"FunctionArn": m.function_arn, "EventSourceArn": m.event_source_arn}
                for uuid, m in self.sources.mappings.items()}

    async def _app_facts(self, request: web.Request) -> web.Response:
        """The app's settings as the limits advisor and the cost estimate read them
        (emulator/advice/facts.py), for clients such as `emulator load`."""
        limits = self._limits()
        facts = describe_app(self.app, region=self.config.region, account_concurrency=limits.account_limit,
                             unreserved_minimum=limits.unreserved_minimum)
        return web.json_response(facts.to_json())

    async def _bind(self) -> None:
        lambda_api = LambdaApi(self.service)
        routes = lambda_api.routes() + LambdaConfigApi(self.admin).routes() + [
            web.get("/_emulator/health", self._health),
            web.post("/_emulator/reset", self._reset),
            web.get("/_emulator/app", self._app_facts),
        ] + TelemetryApi(self.metrics_snapshot, self.timeline).routes() + EsmApi(self.sources).routes()
        routes += FunctionApi(self.lifecycle, self._packages_dir / "downloads").routes() + PolicyApi(self.policies).routes()
        routes += LayersApi(lambda: self.app.layers.values()).routes()
        routes += DashboardApi(self.timeline, self._mapping_names).routes()
        fallback = self.gateway.management.intercept(self.proxy.handle) if self.gateway else self.proxy.handle
        fallback = CloudWatchApi(self.timeline).wrap(fallback)  # CloudWatch reads come from the timeline
        server = self._http = build_server(routes, fallback=fallback, fast_invoke=lambda_api.invoke_parts)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            kind = PortInUse if exc.errno == errno.EADDRINUSE else StartupError
            raise kind(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}. "
                "Pick another port with --port (0 picks a free one)."
            ) from None
        server = site._server  # aiohttp exposes the bound sockets only here
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for host in self.execution.endpoint_hosts():
            # Containers on a bridge reach the endpoint at the bridge's gateway (docs/containers.md).
            extra = web.TCPSite(self._runner, host, self.port, backlog=1024, reuse_address=True)
            try:
                await extra.start()
            except OSError as exc:
                raise StartupError(f"cannot listen on {host}:{self.port} for the containers: {exc.strerror or exc}") from None
            log.info("containers reach the endpoint at %s:%d (the Docker bridge's gateway)", host, self.port)

    def _submit_record(self, version: Any, payload: bytes) -> None:
        self.service.submit_async(version, payload)

    # -- background tasks --------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.spawn(coro, name)

    async def _watch_code(self) -> None:
        """New environments load edited code: change notices (emulator/functions/code_watch.py)
        say which folders changed; their functions' fingerprints are recomputed off the loop."""
        changed: asyncio.Queue[set[Path]] = asyncio.Queue()
        watcher = CodeWatcher((spec.code_dir for spec in self.app.functions.values()), changed.put_nowait)
        watcher.start()
        try:
            while True:
                for folder in sorted(await changed.get()):
                    fingerprint = await asyncio.to_thread(code_fingerprint, folder)
                    for name, function in list(self.registry.functions.items()):
                        if Path(os.path.abspath(function.latest.spec.code_dir)) == folder:
                            self._code_changed(name, fingerprint)
        finally:
            await asyncio.to_thread(watcher.stop)  # the thread looks at its stop flag every 100 ms

    def _code_changed(self, name: str, fingerprint: CodeFingerprint) -> None:
        if not self.registry.apply_code_fingerprint(name, fingerprint):
            return
        latest = self.registry.functions[name].latest
        self.invoker.new_code(latest)
        log.info("%s: code changed; new environments load it", name)

    # -- admin endpoints ---------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        if not self.ready:
            return web.json_response({"status": "starting"}, status=503)
        body: dict[str, Any] = {"status": "ready", "functions": sorted(self.registry.functions)}
        if self.moto is not None:
            body["backend"] = self.moto.describe()
            if self.moto.unavailable_reason() is not None:  # Lambda serves, every other API does not
                body["status"] = "backend unavailable"
                return web.json_response(body, status=503)
        return web.json_response(body)

    async def metrics_snapshot(self) -> dict[str, Any]:
        mappings = await self.sources.snapshot()  # asks the poller process
        return {
            "account": self.ledger.snapshot(),
            "functions": self.metrics.snapshot(),
            # dropped_pending: what resets and shutdown dropped; kept across resets.
            "async_queue": {"pending": self.async_queue.pending, "dropped_pending": self.metrics.pending_dropped_snapshot()},
            "event_source_mappings": mappings,
            "sns": await self.sns.snapshot() if self.sns is not None else {},
            "api_gateway": self.gateway.snapshot() if self.gateway is not None else {},
            "dynamodb": await self.dynamodb.snapshot() if self.dynamodb is not None else {"available": False},
            "logs": {**self.logs.snapshot(),
                     **({"cloudwatch": self.log_shipper.snapshot()} if self.log_shipper is not None else {})},
            "host": {**self.descriptors.snapshot(), "environments": self.execution.environments,
                     "environments_refused": self.execution.refused,
                     "cpu_model": self.factory.cpu_mode or "off"},
        }

    async def _reset(self, request: web.Request) -> web.Response:
        await self.reset()
        return web.json_response({"status": "reset"})

    async def reset(self) -> None:
        """Back to the state right after start-up: the template's settings, no environments,
        queues or counters, and fresh backing resources."""
        fingerprints = await self._code_fingerprints()  # before anything is cleared
        await self.sources.stop()  # no poller may invoke or receive while the rest resets
        if self.sns is not None:
            await self.sns.stop(DROPPED_BY_RESET)  # SNS retries still pending: counted and logged
            self.sns.reset_counters()
        await self.async_queue.drop_all(DROPPED_BY_RESET)  # counted and logged; metrics.reset() keeps that count
        await self.lifecycle.close()
        self.admin.close()
        self.invoker.close()
        await asyncio.to_thread(_empty_folder, self._packages_dir)
        self.metrics.reset()  # and the timeline
        if self.sampler is not None:
            self.sampler.reset()
        self.errors.clear()
        self.registry.functions.clear()
        self.ledger = self.service.ledger = self._new_ledger()
        self.scaling = self.service.scaling = ScalingRateModel(self._scaling_config())
        self.service.event_invoke_configs.clear()
        if self.gateway is not None:
            await self.gateway.reset()
        # Snapshots may hold whole virtualenvs: removed off the event loop.
        await asyncio.to_thread(shutil.rmtree, self._versions_dir, ignore_errors=True)
        self._versions_dir.mkdir()
        self._load_functions(fingerprints)
        await self._publish_template_aliases()
        if self.moto is not None:
            await self.moto.reset()
        if self.sns is not None:
            self.sns.start()
        if self.log_shipper is not None:
            self.log_shipper.feed.take()  # what the old environments wrote goes with them
            self.log_shipper.forget_resources()
        await self.sources.reset()
        if self.dynamodb is not None:
            self.dynamodb.reset()
        if self.sampler is not None:
            # The reset cleared this second's samples: the levels (limits, depths) are taken
            # again now, or a run that starts and ends within this second would have none.
            await self.sampler.sample_now()

    # -- shutdown ----------------------------------------------------------------------
    async def stop(self) -> None:
        # The deadline is taken first: stopping the pollers (their batches finish or are left
        # to their source) may take longer than it, and every open request must be answered
        # by then, well before the CLI gives up on stop() altogether.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_timeout
        self.ready = False
        sources: asyncio.Future[None] | None = None
        if getattr(self, "sources", None) is not None:
            # The pollers stop reading at once (no new batches) while the requests drain.
            sources = asyncio.ensure_future(self.sources.close())
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()  # stop accepting new connections
        http, ledger, gateway = self._http, getattr(self, "ledger", None), self.gateway
        if gateway is not None:
            await gateway.begin_shutdown()  # its port stops accepting; new requests are answered 503
        if http is not None:
            http.begin_shutdown()  # idle connections close; new requests are answered ServiceException
        queue = getattr(self, "async_queue", None)
        if queue is not None:
            queue.stop_starting_attempts()  # queued events are new invocations: not during the drain
        while loop.time() < deadline and (
            (http is not None and http.requests_in_flight) or (ledger is not None and ledger.account_in_flight)
            or (gateway is not None and gateway.requests_in_flight)
            or (sources is not None and not sources.done())
        ):
            await asyncio.sleep(0.01)  # drain in-flight requests and invocations, and the pollers' batches
        if http is not None:
            # Every request still open is answered (ServiceException) before its environment stops.
            http.answer_remaining()
        if gateway is not None:
            gateway.answer_remaining()
        if http is not None or gateway is not None:
            await asyncio.sleep(0)  # the cancelled handlers write their answers
        if sources is not None:
            await sources  # bounded by the pollers' own stop timeouts (sources/poller_process.py)
        if self.sns is not None:
            await self.sns.stop(DROPPED_AT_SHUTDOWN)  # SNS retries still pending: counted and logged
        if queue is not None:
            await queue.close()  # drops (counting, logging) what is still pending
        await self._tasks.cancel_all()
        if gateway is not None:
            await gateway.close()  # invocations still running past their requests, then the site
        if self.log_shipper is not None:  # the last lines, while the backend still runs
            try:
                await asyncio.wait_for(self.log_shipper.flush(), LogShipper.final_flush_timeout_s)
            except asyncio.TimeoutError:
                log.warning("the last function logs did not reach CloudWatch Logs in time; dropped")
        if hasattr(self, "lifecycle"):
            await self.lifecycle.close()
        if hasattr(self, "admin"):
            self.admin.close()
        if hasattr(self, "invoker"):
            self.invoker.close()
        if hasattr(self, "execution"):
            await self.execution.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if getattr(self, "proxy", None) is not None:
            await self.proxy.close()
        if self.backend is not None:
            await self.backend.close()
        if self.moto is not None:
            await self.moto.stop()
        if hasattr(self, "_versions_dir"):
            await asyncio.to_thread(shutil.rmtree, self._versions_dir, ignore_errors=True)
        if hasattr(self, "_packages_dir"):
            await asyncio.to_thread(shutil.rmtree, self._packages_dir, ignore_errors=True)
        if hasattr(self, "_home_dir"):
            await asyncio.to_thread(shutil.rmtree, self._home_dir, ignore_errors=True)
        if hasattr(self, "_template_packages_dir"):
            await asyncio.to_thread(shutil.rmtree, self._template_packages_dir, ignore_errors=True)
        if hasattr(self, "logs"):
            self.logs.close()


def _empty_folder(folder: Path) -> None:
    for entry in folder.iterdir():
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
