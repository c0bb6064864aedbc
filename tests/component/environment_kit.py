"""The component tests' runtime: EnvironmentFactory, Invoker and friends on the test's own
event loop, with real fork servers and environments (nothing mocked)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.execution.invoker import Invocation, Invoker, InvokeResult
from emulator.execution.logsink import LogSink
from emulator.execution.pool import EnvironmentFactory
from emulator.functions.metrics import Metrics
from emulator.functions.registry import FunctionVersion
from emulator.template.specs import FunctionSpec

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ENDPOINT = "http://127.0.0.1:9"  # nothing listens there: only the value is checked
WAIT_S = 10.0


async def eventually(predicate: Any, timeout_s: float = WAIT_S) -> Any:
    """Poll on the event loop (the environments' exit reports arrive on it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(0.02)


@dataclass
class Runtime:
    factory: EnvironmentFactory
    invoker: Invoker
    metrics: Metrics
    logs: LogSink
    log_text: io.StringIO
    code_root: Path

    def function(self, source: str, name: str = "fn", **fields: Any) -> FunctionVersion:
        code = self.code_root / name
        code.mkdir(exist_ok=True)
        (code / "index.py").write_text(textwrap.dedent(source))
        spec = FunctionSpec(name=name, code_dir=code, handler=fields.pop("handler", "index.handler"), **fields)
        return FunctionVersion(spec, "$LATEST", REGION, ACCOUNT, time.time())

    async def invoke(self, version: FunctionVersion, event: Any = None, *, arn: str | None = None, client_context: dict | None = None) -> InvokeResult:
        invocation = Invocation(
            payload=json.dumps({} if event is None else event).encode(),
            request_id=str(uuid.uuid4()),
            invoked_arn=arn or version.function_arn,
            client_context=client_context,
            log_tail=True,
        )
        return await self.invoker.run(version, invocation)

    def emulator_log(self) -> str:
        assert self.logs.drain(10.0), "the log writer did not catch up"
        return self.log_text.getvalue()


async def make_runtime(code_root: Path, memory_limits: str = "auto") -> Runtime:
    text = io.StringIO()
    logs = LogSink(stream=text)
    metrics = Metrics()
    factory = EnvironmentFactory(region=REGION, endpoint_url=ENDPOINT, logs=logs, memory_limits=memory_limits)
    await factory.start()
    return Runtime(factory, Invoker(factory, logs, metrics), metrics, logs, text, code_root)


async def close_runtime(runtime: Runtime) -> None:
    runtime.invoker.close()
    await runtime.factory.close()
    runtime.logs.close()


def body(result: InvokeResult) -> Any:
    return json.loads(result.payload)


def tail(result: InvokeResult) -> str:
    return base64.b64decode(result.log_result or "").decode("utf-8", "replace")
