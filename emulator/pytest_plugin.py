"""pytest fixtures for the emulator (registered through the `pytest11` entry point).

    def test_hello(lambda_emulator):
        result = lambda_emulator.invoke("hello", {"name": "test"})
        assert result["message"] == "Hello, test!"

`lambda_emulator` is started once per session for the template named by the
`lambda_emulator_template` ini option (or ./template.yaml) and reset before each test.
`lambda_emulator_factory` starts more, each with its own template (a path, or a dict
built with `inline_function`) and configuration. Errors raised by the emulator's
background tasks during a test are re-raised in that test. `load_test` runs a load
scenario (emulator/load/) and fails the test when one of its thresholds fails.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import pytest

from emulator.config import Config

if TYPE_CHECKING:  # the server (aiohttp and the rest) loads when a fixture first starts one,
    from emulator.load.runner import LoadResult  # not in every pytest run of a project
    from emulator.server import EmulatorServer
    from emulator.template.specs import AppSpec

STARTUP_TIMEOUT_S = 120.0
PORT_ATTEMPTS = 5  # how often start_emulator picks another port when the one it picked was taken
STOP_TIMEOUT_S = 60.0
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}


class BackgroundError(AssertionError):
    """A background task of the emulator failed during the test."""


_inline_root: Path | None = None


def _remove_inline_root(root: Path, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that exits normally
        shutil.rmtree(root, ignore_errors=True)


def _inline_folder() -> Path:
    """A fresh folder for one inline function's code, inside one folder per process that is
    removed when the process exits (the emulators using the code have stopped by then)."""
    global _inline_root
    if _inline_root is None or not _inline_root.is_dir():
        _inline_root = Path(tempfile.mkdtemp(prefix="lambda-emulator-fn-"))
        atexit.register(_remove_inline_root, _inline_root, os.getpid())
    return Path(tempfile.mkdtemp(dir=_inline_root))


def inline_function(source: str, handler: str = "index.handler", **properties: Any) -> dict[str, Any]:
    """A template resource for a function whose code is given as a string.

    The code is written to a fresh temporary folder as `<module>.py`; the folders go when
    the test process exits.
    """
    module = handler.rsplit(".", 1)[0].replace(".", "/")
    folder = _inline_folder()
    (folder / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    props = {"CodeUri": str(folder), "Handler": handler, "Runtime": "python3.11"}
    props.update(properties)
    return {"Type": "AWS::Serverless::Function", "Properties": props}


def load_app(template: Path | str | Mapping[str, Any], config: Config) -> AppSpec:
    from emulator.template.loader import load_template, parse_template

    endpoint = f"http://127.0.0.1:{config.port}"
    stack = {"region": config.region, "account_id": config.account_id, "endpoint_url": endpoint,
             "parameters": config.parameter_overrides, "imports": config.import_values}
    if isinstance(template, Mapping):
        doc = dict(template)
        if "Resources" not in doc:  # {"Name": resource, ...} shorthand
            doc = {"Resources": doc}
        return parse_template(doc, base_dir=Path.cwd(), **stack)
    return load_template(Path(template), **stack)


class EmulatorHandle:
    """A running emulator on its own thread and event loop, driven from synchronous tests."""

    def __init__(self, config: Config, app: AppSpec) -> None:
        self.config = config
        self.app = app
        self.server: EmulatorServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop_errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="lambda-emulator", daemon=True)
        self._clients: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "EmulatorHandle":
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S):
            raise TimeoutError(f"the emulator did not start within {STARTUP_TIMEOUT_S:.0f} s")
        if self._startup_error is not None:
            raise self._startup_error
        self._wait_healthy()
        return self

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._on_loop_error)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        from emulator.server import EmulatorServer

        self.server = EmulatorServer(self.config, self.app)
        try:
            await self.server.start()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        self._loop_errors.append(error if isinstance(error, BaseException) else RuntimeError(context.get("message")))
        loop.default_exception_handler(context)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.url + "/_emulator/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT_S)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on the emulator's loop (for tests that poke at internals)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- what tests use ----------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.server is not None and self.server.port is not None
        return self.server.url

    @property
    def api_url(self) -> str:
        """Where the template's API Gateway APIs are served (`{api_url}/Prod/hello`)."""
        assert self.server is not None and self.server.gateway is not None and self.server.gateway.port is not None, \
            "the template declares no API"
        return self.server.gateway.url

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for any AWS service, pointed at the emulator."""
        import boto3
        from botocore.config import Config as BotoConfig

        if not kwargs and service in self._clients:
            return self._clients[service]
        options = {
            "endpoint_url": self.url,
            "region_name": self.config.region,
            "config": BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=900, max_pool_connections=64),
            **DUMMY_CREDENTIALS,
            **kwargs,
        }
        client = boto3.client(service, **options)
        if not kwargs:
            self._clients[service] = client
        return client

    @property
    def lambda_client(self) -> Any:
        return self.client("lambda")

    def invoke(self, function: str, payload: Any = None, **kwargs: Any) -> Any:
        """Invoke synchronously and return the decoded result; raises on a function error."""
        response = self.lambda_client.invoke(FunctionName=function, Payload=json.dumps(payload if payload is not None else {}), **kwargs)
        body = response["Payload"].read()
        result = json.loads(body) if body else None
        if response.get("FunctionError"):
            raise FunctionFailed(function, result)
        return result

    def metrics(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_emulator/metrics", timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        assert self.server is not None
        self.run(self.server.reset())
        self._loop_errors.clear()

    def check(self) -> None:
        """Raise the first error of a background task since the last reset."""
        errors = list(self._loop_errors) + (list(self.server.errors) if self.server else [])
        if errors:
            raise BackgroundError(f"{len(errors)} background error(s) in the emulator; first: {errors[0]!r}") from errors[0]


class FunctionFailed(AssertionError):
    def __init__(self, function: str, error: Any) -> None:
        super().__init__(f"{function} failed: {error}")
        self.error = error


@contextlib.contextmanager
def running_emulator(template: Path | str | Mapping[str, Any], **settings: Any) -> Iterator[EmulatorHandle]:
    """An emulator for a block (e.g. a module-scoped fixture): errors of its background
    tasks are raised when the block ends, and it is stopped whatever happens."""
    handle = start_emulator(template, **settings)
    try:
        yield handle
        handle.check()
    finally:
        handle.stop()


def start_emulator(template: Path | str | Mapping[str, Any], **settings: Any) -> EmulatorHandle:
    from emulator.backend.moto_process import free_port
    from emulator.execution.process_hardening import harden_control_plane
    from emulator.server import PortInUse

    # The control plane is this pytest process: handlers must not read its environment
    # (the user's secrets) through /proc/<pid>/environ.
    harden_control_plane()

    # A concrete port up front, so the template's queue URLs name the emulator's endpoint; the
    # APIs' port picked when they bind (api_url), so emulators in parallel never collide. A
    # port found free can be taken before we bind it (another process's outgoing connection
    # draws from the same ephemeral range): then pick again, a bounded number of times.
    attempts_left = 1 if "port" in settings else PORT_ATTEMPTS
    while True:
        attempts_left -= 1
        config = Config(host="127.0.0.1", port=free_port(), api_port=0).replace(**settings)
        handle = EmulatorHandle(config, load_app(template, config))
        try:
            return handle.start()
        except PortInUse:
            handle.stop()
            if attempts_left == 0:
                raise


# -- fixtures --------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("lambda_emulator_template", "SAM template served by the lambda_emulator fixture", default="template.yaml")
    parser.addini("lambda_emulator_parameter_overrides", "the template's parameter values for the lambda_emulator "
                  "fixture, as for sam deploy: Key=Value ...", default="")


@pytest.fixture(scope="session")
def _lambda_emulator_session(pytestconfig: pytest.Config) -> Iterator[EmulatorHandle]:
    template = Path(str(pytestconfig.rootpath)) / str(pytestconfig.getini("lambda_emulator_template"))
    if not template.is_file():
        pytest.fail(f"lambda_emulator: template {template} not found; set the lambda_emulator_template ini option")
    handle = start_emulator(template, parameter_overrides=str(pytestconfig.getini("lambda_emulator_parameter_overrides")))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def lambda_emulator(_lambda_emulator_session: EmulatorHandle) -> Iterator[EmulatorHandle]:
    handle = _lambda_emulator_session
    handle.reset()
    yield handle
    handle.check()


def run_load(scenario: Path | str | Mapping[str, Any], *, out_dir: Path | str, endpoint: str | None = None,
             template: Path | str | None = None, check: bool = True, **keys: Any) -> "LoadResult":
    """Run a load scenario (a YAML file, or its keys as a dict; `keys` override it) against
    `endpoint` (e.g. `lambda_emulator.url`) or an emulator started with `template`; with
    `check`, raise AssertionError naming every threshold that failed. Returns the result
    (its `report` is report.json's content)."""
    from emulator.load import runner
    from emulator.load.scenario import build, from_file

    if isinstance(scenario, Mapping):
        loaded = build({**scenario, **keys}, Path.cwd())
    else:
        loaded = from_file(Path(scenario), keys)
    result = runner.run(loaded, out_dir=Path(out_dir), endpoint=endpoint, template=Path(template) if template else None,
                        display=False)
    if check:
        result.assert_thresholds()
    return result


@pytest.fixture
def load_test(tmp_path: Path) -> Any:
    """`load_test(scenario, endpoint=..., **keys)`: run_load with its report under the test's tmp_path."""
    runs = iter(range(1_000_000))

    def run(scenario: Path | str | Mapping[str, Any], **kwargs: Any) -> "LoadResult":
        return run_load(scenario, out_dir=tmp_path / f"load-{next(runs)}", **kwargs)

    return run


@pytest.fixture
def lambda_emulator_factory() -> Iterator[Any]:
    """`start(template, **config)` -> a running EmulatorHandle, stopped after the test."""
    handles: list[EmulatorHandle] = []

    def start(template: Path | str | Mapping[str, Any], **settings: Any) -> EmulatorHandle:
        handle = start_emulator(template, **settings)
        handles.append(handle)
        return handle

    yield start
    errors = []
    for handle in handles:
        try:
            handle.check()
        except BackgroundError as exc:
            errors.append(exc)
        finally:
            handle.stop()
    if errors:
        raise errors[0]
