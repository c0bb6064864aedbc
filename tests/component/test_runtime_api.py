"""The Runtime API of one environment, driven over real HTTP as a runtime would drive it.

Paths, headers and status codes: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html;
the answers to requests out of turn are those of AWS's Runtime Interface Emulator
(https://github.com/aws/aws-lambda-runtime-interface-emulator, internal/lambda/rapi).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from emulator.execution.backends import InvokeRequest
from emulator.execution.environment import EnvState
from emulator.execution.runtime_api import MAX_PAYLOAD_BYTES
from emulator.execution.runtime_api_env import RuntimeApiEnvironment

pytestmark = [pytest.mark.component, pytest.mark.asyncio]

BASE = "/2018-06-01/runtime"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"


class Runtime:
    """The runtime's side: an HTTP client of the environment's Runtime API."""

    def __init__(self, env: RuntimeApiEnvironment, session: aiohttp.ClientSession) -> None:
        self.env = env
        self.session = session
        self.base = f"http://{env.api.address}{BASE}"

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        async with self.session.get(self.base + path) as response:
            return response.status, dict(response.headers), await response.read()

    async def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = io.BytesIO(body) if len(body) > 1024 * 1024 else body  # aiohttp warns about large raw bodies
        async with self.session.post(self.base + path, data=data, headers=headers or {}) as response:
            return response.status, json.loads(await response.read())


@pytest_asyncio.fixture
async def runtime() -> AsyncIterator[Runtime]:
    env = RuntimeApiEnvironment("fn-1", lambda text: None)
    await env.listen("127.0.0.1")
    killed: list[bool] = []
    env.attach(lambda: killed.append(True))
    async with aiohttp.ClientSession() as session:
        yield Runtime(env, session)
    env.on_exit({"status": "test over"})


def event(request_id: str = "req-1", **overrides: Any) -> InvokeRequest:
    fields = dict(request_id=request_id, deadline_ms=int(time.time() * 1000) + 3000, invoked_arn=ARN,
                  client_context={"custom": {"k": "v"}}, payload=b'{"a": 1}',
                  cognito_identity={"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"})
    fields.update(overrides)
    return InvokeRequest(**fields)


async def ready(runtime: Runtime) -> "asyncio.Task[tuple[int, dict[str, str], bytes]]":
    """The runtime's first GET /next, parked: Init is over."""
    parked = asyncio.ensure_future(runtime.get("/invocation/next"))
    assert (await runtime.env.wait_ready(5)).ok
    return parked


async def test_next_carries_the_event_and_every_header_aws_sends(runtime: Runtime) -> None:
    parked = await ready(runtime)
    assert runtime.env.state is EnvState.READY
    request = event()
    outcome = runtime.env.invoke(request, 3.0, None)
    status, headers, body = await parked
    assert (status, json.loads(body)) == (200, {"a": 1})
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == str(request.deadline_ms)
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert json.loads(headers["Lambda-Runtime-Client-Context"]) == {"custom": {"k": "v"}}
    assert json.loads(headers["Lambda-Runtime-Cognito-Identity"]) == {"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"}
    assert await runtime.post("/invocation/req-1/response", b'{"ok": true}') == (202, {"status": "OK"})
    result = await outcome
    assert (result.kind, json.loads(result.payload)) == ("result", {"ok": True})
    assert runtime.env.state is EnvState.READY


async def test_an_event_sent_before_the_runtime_asks_waits_for_next(runtime: Runtime) -> None:
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event("first"), 3.0, None)
    await parked
    await runtime.post("/invocation/first/response", b"1")
    await outcome
    outcome = runtime.env.invoke(event("second"), 3.0, None)  # nobody is waiting on /next yet
    status, headers, _ = await runtime.get("/invocation/next")
    assert (status, headers["Lambda-Runtime-Aws-Request-Id"]) == (200, "second")
    await runtime.post("/invocation/second/response", b"2")
    assert (await outcome).payload == b"2"


async def test_answers_out_of_turn_are_refused_as_the_runtime_interface_emulator_does(runtime: Runtime) -> None:
    # Before any event: a response is a transition the runtime's state does not allow.
    status, body = await runtime.post("/invocation/req-1/response", b"{}")
    assert (status, body["errorType"]) == (403, "InvalidStateTransition")
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event(), 3.0, None)
    await parked
    status, body = await runtime.post("/invocation/someone-else/response", b"{}")
    assert (status, body) == (400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
    status, body = await runtime.post("/init/error", b"{}")  # Init is long over
    assert (status, body["errorType"]) == (403, "InvalidStateTransition")
    status, _, body_bytes = await runtime.get("/invocation/next")  # asking again without answering
    assert (status, json.loads(body_bytes)["errorType"]) == (403, "InvalidStateTransition")
    assert (await runtime.post("/invocation/req-1/response", b"[]"))[0] == 202
    assert (await outcome).payload == b"[]"
    status, body = await runtime.post("/invocation/req-1/response", b"[]")  # answered already
    assert (status, body["errorType"]) == (403, "InvalidStateTransition")


async def test_function_error_keeps_the_body_and_takes_the_type_header_when_the_body_has_none(runtime: Runtime) -> None:
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event(), 3.0, None)
    await parked
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["line 1"]}
    assert (await runtime.post("/invocation/req-1/error", json.dumps(error).encode(),
                               {"Lambda-Runtime-Function-Error-Type": "Unhandled"}))[0] == 202
    result = await outcome
    assert (result.kind, json.loads(result.payload)) == ("error", error)
    outcome = runtime.env.invoke(event("req-2"), 3.0, None)
    await runtime.get("/invocation/next")
    await runtime.post("/invocation/req-2/error", b"not json", {"Lambda-Runtime-Function-Error-Type": "Runtime.Crash"})
    assert json.loads((await outcome).payload)["errorType"] == "Runtime.Crash"


async def test_a_response_over_the_payload_limit_is_413_and_the_invocation_too_large(runtime: Runtime) -> None:
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event(), 3.0, None)
    await parked
    status, body = await runtime.post("/invocation/req-1/response", b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert (status, body["errorType"]) == (413, "RequestEntityTooLarge")
    assert body["errorMessage"] == f"Exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
    assert (await outcome).kind == "too_large"


async def test_an_unknown_response_mode_is_400_and_the_invocation_fails(runtime: Runtime) -> None:
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event(), 3.0, None)
    await parked
    status, body = await runtime.post("/invocation/req-1/response", b"{}", {"Lambda-Runtime-Function-Response-Mode": "sideways"})
    assert (status, body["errorType"]) == (400, "InvalidFunctionResponseMode")
    result = await outcome
    assert (result.kind, json.loads(result.payload)["errorType"]) == ("error", "Runtime.InvalidResponseModeHeader")


async def test_init_error_fails_init_with_the_runtimes_error(runtime: Runtime) -> None:
    error = {"errorMessage": "cannot import", "errorType": "Runtime.ImportModuleError", "stackTrace": []}
    assert (await runtime.post("/init/error", json.dumps(error).encode(),
                               {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})) == (202, {"status": "OK"})
    init = await runtime.env.wait_ready(5)
    assert init is not None and not init.ok and json.loads(init.error) == error
    status, _, body = await runtime.get("/invocation/next")  # after init/error the runtime should exit
    assert (status, json.loads(body)["errorType"]) == (403, "InvalidStateTransition")


async def test_deadline_times_out_and_kills(runtime: Runtime) -> None:
    parked = await ready(runtime)
    outcome = runtime.env.invoke(event(), 0.05, None)
    await parked
    assert (await outcome).kind == "timeout"
    assert runtime.env.state is EnvState.STOPPING  # killed; its exit report makes it DEAD


async def test_unknown_paths_and_methods_are_refused(runtime: Runtime) -> None:
    assert (await runtime.get("/restore/next"))[0] == 404
    assert (await runtime.get("/../../etc/passwd"))[0] == 404
    async with runtime.session.post(runtime.base + "/invocation/next") as response:
        assert response.status == 405
