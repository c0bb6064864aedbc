"""A container-image function (`PackageType: Image`, its handler baked into the image) through
the scenarios every backend passes: invoke (cold, then warm with its module state), function
errors and crashes, a timeout (the container is killed and replaced), reserved concurrency
throttling exactly, and an SQS mapping. The image is built here FROM the local Python runtime
image (docker/local_images.py: no registry is needed). Skipped, with the reason, where no
engine answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import GATED_HANDLER_SOURCE, THROTTLED_BY_RESERVED_CONCURRENCY, Gate, call, call_many, function_metrics, wait_until
from source_testkit import records_in
from execution_testkit import CONTAINER, _NO_ENGINE, runtime_image, settings
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = [pytest.mark.scenario, pytest.mark.skipif(_NO_ENGINE is not None, reason=f"no container engine: {_NO_ENGINE}")]

HANDLER = GATED_HANDLER_SOURCE + """
import json, os, time
calls = 0

def handler(event, context):
    global calls
    if os.environ.get("OUT"):
        with open(os.environ["OUT"], "a") as out:
            out.write(json.dumps(event) + "\\n")
        return None
    wait_at_gate(event, context)
    action = event.get("action")
    if action == "raise":
        raise TypeError("the type was wrong")
    if action == "sleep":
        time.sleep(10)
    if action == "exit":
        os._exit(3)
    calls += 1
    return {"fn": context.function_name, "version": context.function_version, "requestId": context.aws_request_id,
            "memory": context.memory_limit_in_mb, "calls": calls, "handler": os.environ.get("_HANDLER"),
            "remaining": context.get_remaining_time_in_millis(), "endpoint": os.environ["AWS_ENDPOINT_URL"], "event": event}
"""
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY app.py /var/task/app.py
CMD ["app.handler"]
"""
QUEUE = "image-q"


@pytest.fixture(scope="module")
def function_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import docker

    context = tmp_path_factory.mktemp("image-scenarios")
    (context / "app.py").write_text(HANDLER)
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = "lambda-emulator-test/image-scenarios:1"
    client = docker.from_env(version="auto")
    try:
        client.images.build(path=str(context), tag=tag, buildargs={"BASE": runtime_image()}, rm=True)
    finally:
        client.close()
    yield tag


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-out")


def image_function(image: str, **props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function", "Properties": {"PackageType": "Image", "ImageUri": image, **props}}


@pytest.fixture(scope="module")
def emu(function_image: str, out: Path) -> Iterator[EmulatorHandle]:
    template = {
        "Img": image_function(function_image, Timeout=2, MemorySize=1024),
        "ImgReserved": image_function(function_image, ReservedConcurrentExecutions=2, Timeout=60),  # held at a gate
        "ImgQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": QUEUE}},
        "ImgConsumer": image_function(
            function_image, Environment={"Variables": {"OUT": str(out / "consumer.jsonl")}},
            Events={"Source": {"Type": "SQS", "Properties": {
                "Queue": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}", "BatchSize": 5}}}),
    }
    # Container-image functions always run in containers; the settings share the tests' folders.
    with running_emulator(template, **settings(CONTAINER)) as handle:
        yield handle


def test_image_function_is_invoked_cold_then_warm_with_its_context(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    first = call(lam, "Img", {"name": "n"})
    assert first.function_error is None, first.payload
    result = first.payload
    assert (result["fn"], result["version"], result["requestId"], result["memory"]) == ("Img", "$LATEST", first.request_id, "1024")
    assert result["handler"] == "app.handler"  # _HANDLER from the image's CMD
    assert 0 < result["remaining"] <= 2000 and result["endpoint"] == emu.url and result["event"] == {"name": "n"}
    assert first.cold
    second = call(lam, "Img", {})
    assert not second.cold and second.payload["calls"] == result["calls"] + 1  # warm: module state kept


def test_image_function_errors_and_crashes_are_lambdas(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    failed = call(lam, "Img", {"action": "raise"})
    assert (failed.status, failed.function_error) == (200, "Unhandled")
    assert (failed.payload["errorType"], failed.payload["errorMessage"]) == ("TypeError", "the type was wrong")
    assert not call(lam, "Img", {}).cold  # a handled error keeps the container
    crashed = call(lam, "Img", {"action": "exit"})
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert call(lam, "Img", {}).cold


def test_image_function_timeout_is_sandbox_timedout_and_the_next_call_is_cold(emu: EmulatorHandle) -> None:
    lam = emu.lambda_client
    call(lam, "Img", {})
    before = function_metrics(emu, "Img")
    timed_out = call(lam, "Img", {"action": "sleep"})
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in timed_out.log
    assert call(lam, "Img", {}).cold  # killed and replaced
    after = function_metrics(emu, "Img")
    assert after["Timeouts"] - before["Timeouts"] == 1


def test_image_function_reserved_concurrency_throttles_exactly(emu: EmulatorHandle, tmp_path: Path) -> None:
    outcomes = call_many(emu.lambda_client, "ImgReserved", 6, Gate(tmp_path / "gate"), held=2, settle_s=60)
    assert outcomes.count(200) == 2
    assert outcomes.count(THROTTLED_BY_RESERVED_CONCURRENCY) == 4
    assert emu.metrics()["functions"]["ImgReserved"]["ConcurrentExecutionsPeak"] == 2


def test_image_function_consumes_an_sqs_mapping(emu: EmulatorHandle, out: Path) -> None:
    sqs = emu.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(7)])
    path = out / "consumer.jsonl"

    def bodies() -> list[str]:
        return [record["body"] for record in records_in(path)]

    assert wait_until(lambda: len(bodies()) >= 7, 30)
    assert sorted(bodies()) == [f"m{i}" for i in range(7)]
