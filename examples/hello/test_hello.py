"""How a team tests its functions with the emulator's pytest plugin.

`lambda_emulator` serves the template named by the `lambda_emulator_template` ini option
(here examples/hello/template.yaml) and is reset before each test.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError


def test_hello_answers(lambda_emulator):
    assert lambda_emulator.invoke("hello", {"name": "pytest"})["message"] == "Hello, pytest!"


def test_second_call_is_warm(lambda_emulator):
    lambda_emulator.invoke("hello")
    assert lambda_emulator.invoke("hello")["warmInvocations"] == 2
    assert lambda_emulator.metrics()["functions"]["hello"]["ColdStarts"] == 1


def test_slow_is_throttled_beyond_its_reserved_concurrency(lambda_emulator):
    lam = lambda_emulator.lambda_client

    def call(_):
        try:
            response = lam.invoke(FunctionName="slow", Payload=json.dumps({"seconds": 1}))
            return response["StatusCode"]
        except ClientError as error:
            return error.response["Error"]["Code"], error.response.get("Reason")

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(call, range(6)))
    assert outcomes.count(200) == 2  # ReservedConcurrentExecutions: 2
    assert outcomes.count(("TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded")) == 4


def test_unknown_function_is_a_404(lambda_emulator):
    with pytest.raises(lambda_emulator.lambda_client.exceptions.ResourceNotFoundException):
        lambda_emulator.invoke("nope")


def test_the_load_scenario_meets_its_thresholds(lambda_emulator, load_test):
    # examples/hello/load.yaml against this test's emulator: a failed threshold fails the test.
    result = load_test(Path(__file__).parent / "load.yaml", endpoint=lambda_emulator.url)
    assert result.report["client"]["totals"]["ok"] == 520
