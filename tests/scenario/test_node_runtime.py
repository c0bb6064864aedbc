"""A Node.js function run by Node's own runtime interface client (aws-lambda-ric from npm,
unmodified) against the emulator's Runtime API, as a local process (`--execution
process-runtime-api`) and in a container (`--execution container`, a Node.js runtime image
built here): the same scenarios as for Python functions: invoke, errors, timeouts,
throttling, an SQS mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import THROTTLED_BY_RESERVED_CONCURRENCY, Gate, call, call_many, function_metrics, wait_until
from source_testkit import records_in
from execution_testkit import CONTAINER, PROCESS, _NO_ENGINE, node_ric_command, node_runtime_image, settings
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

RUNTIME = "nodejs20.x"
HANDLER_JS = r"""
const fs = require('fs');
const path = require('path');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.handler = async (event, context) => {
  if (process.env.OUT) {
    fs.appendFileSync(process.env.OUT, JSON.stringify(event) + '\n');
    return null;
  }
  if (event.gate) {
    fs.writeFileSync(path.join(event.gate, 'in-' + context.awsRequestId), '');
    const deadline = Date.now() + 60000;
    while (!fs.existsSync(path.join(event.gate, 'open')) && Date.now() < deadline) await sleep(2);
  }
  if (event.action === 'throw') throw new TypeError('the type was wrong');
  if (event.action === 'sleep') await sleep(5000);
  if (event.action === 'exit') process.exit(3);
  console.log('node says hi to', context.awsRequestId);
  globalThis.calls = (globalThis.calls || 0) + 1;
  return {
    fn: context.functionName, version: context.functionVersion, requestId: context.awsRequestId,
    arn: context.invokedFunctionArn, memory: context.memoryLimitInMB, calls: globalThis.calls,
    remaining: context.getRemainingTimeInMillis(), region: process.env.AWS_REGION,
    endpoint: process.env.AWS_ENDPOINT_URL, event,
  };
};
"""


@pytest.fixture(scope="module")
def node_command() -> str:
    command, reason = node_ric_command()
    if command is None:
        pytest.skip(f"Node's runtime interface client is not available: {reason}")
    return command


def node_function(code: Path, **props: Any) -> dict[str, Any]:
    code.mkdir(parents=True, exist_ok=True)
    (code / "index.js").write_text(HANDLER_JS)
    return {"Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": str(code), "Handler": "index.handler", "Runtime": RUNTIME, **props}}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, execution: dict[str, Any]) -> Path:
    return tmp_path_factory.mktemp(f"node-out-{execution['execution']}")


@pytest.fixture(scope="module", params=[PROCESS, pytest.param(CONTAINER, marks=pytest.mark.skipif(
    _NO_ENGINE is not None, reason=f"no container engine: {_NO_ENGINE}"))])
def execution(request: pytest.FixtureRequest, node_command: str) -> dict[str, Any]:
    """Node's client as a local process, or in a Node.js runtime image (built here)."""
    if request.param == PROCESS:
        return {"execution": PROCESS, "runtime_command": ((RUNTIME, node_command),)}
    image = node_runtime_image()
    return {**settings(CONTAINER), "runtime_image": ((RUNTIME, image),)}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory, execution: dict[str, Any], out: Path) -> Iterator[EmulatorHandle]:
    code = tmp_path_factory.mktemp("node-code")
    template = {
        "Node": node_function(code / "node", Timeout=1, MemorySize=256),
        "NodeReserved": node_function(code / "reserved", ReservedConcurrentExecutions=2, Timeout=60),  # held at a gate
        "NodeQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "node-q"}},
        "NodeConsumer": node_function(
            code / "consumer", Environment={"Variables": {"OUT": str(out / "consumer.jsonl")}},
            Events={"Source": {"Type": "SQS", "Properties": {
                "Queue": "arn:aws:sqs:us-east-1:123456789012:node-q", "BatchSize": 5}}}),
    }
    with running_emulator(template, **execution) as handle:
        yield handle


def test_node_function_is_invoked_through_the_runtime_api_warm_and_with_its_context(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    first = call(lam, "Node", {"name": "n"})
    assert first.function_error is None, first.payload
    result = first.payload
    assert (result["fn"], result["version"], result["requestId"], result["memory"]) == ("Node", "$LATEST", first.request_id, "256")
    assert result["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Node"
    assert 0 < result["remaining"] <= 1000 and result["region"] == "us-east-1" and result["endpoint"] == emu.url
    assert result["event"] == {"name": "n"}
    assert first.cold
    if emu.config.execution == PROCESS:  # a container's output comes through the engine, possibly after END
        assert f"node says hi to {first.request_id}" in first.log
    second = call(lam, "Node", {})
    assert not second.cold and second.payload["calls"] == result["calls"] + 1  # warm: module state kept


def test_node_errors_and_crashes_are_lambdas(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    failed = call(lam, "Node", {"action": "throw"})
    assert (failed.status, failed.function_error) == (200, "Unhandled")
    assert (failed.payload["errorType"], failed.payload["errorMessage"]) == ("TypeError", "the type was wrong")
    assert call(lam, "Node", {}).function_error is None
    crashed = call(lam, "Node", {"action": "exit"})
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert call(lam, "Node", {}).cold


def test_node_timeout_is_sandbox_timedout_and_the_next_call_is_cold(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    call(lam, "Node", {})
    before = function_metrics(emu, "Node")
    timed_out = call(lam, "Node", {"action": "sleep"})
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.log
    assert call(lam, "Node", {}).cold
    after = function_metrics(emu, "Node")
    assert after["Timeouts"] - before["Timeouts"] == 1


def test_node_reserved_concurrency_throttles_exactly(emu: EmulatorHandle, tmp_path: Path) -> None:
    outcomes = call_many(emu.lambda_client, "NodeReserved", 6, Gate(tmp_path / "gate"), held=2)
    assert outcomes.count(200) == 2
    assert outcomes.count(THROTTLED_BY_RESERVED_CONCURRENCY) == 4
    assert emu.metrics()["functions"]["NodeReserved"]["ConcurrentExecutionsPeak"] == 2


def test_node_function_consumes_an_sqs_mapping(emu: EmulatorHandle, out: Path) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName="node-q")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(7)])
    path = out / "consumer.jsonl"

    def bodies() -> list[str]:
        return [record["body"] for record in records_in(path)]

    assert wait_until(lambda: len(bodies()) >= 7, 20)
    assert sorted(bodies()) == [f"m{i}" for i in range(7)]
