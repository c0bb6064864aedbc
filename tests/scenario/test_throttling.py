"""Concurrency pools, the scaling rate and throttles, driven through boto3 as a user would.

Throttles are immediate 429s with the right Reason
(https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html,
https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html),
never queued, and the accounting is exact under load.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from core_testkit import GATED_HANDLER_SOURCE, Gate, call_many, invoke_outcome
from execution_testkit import EXECUTIONS, settings
from emulator.pytest_plugin import inline_function

pytestmark = pytest.mark.scenario

# Invocations are held at a gate (core_testkit.Gate) until every call of a burst has either
# checked in there or been throttled: the counts below hold however loaded the machine is.
SLEEPER = GATED_HANDLER_SOURCE + """
import time, os
def handler(event, context):
    wait_at_gate(event, context)
    time.sleep(event.get("seconds", 0))
    return {"init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "version": context.function_version}
"""
# A function held at a gate must not time out while the others of its burst start: a
# container at 128 MB (0.07 vCPU) takes seconds to start on a busy machine, longer than the
# default 3 s Timeout of the first one waiting at the gate.
HELD_TIMEOUT_S = 60


@pytest.fixture
def new_gate(tmp_path: Path) -> Callable[[], Gate]:
    counter = itertools.count()
    return lambda: Gate(tmp_path / f"gate-{next(counter)}")


def call_many_ungated(lam: Any, count: int, *, seconds: float) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: invoke_outcome(lam, "Sleeper", {"seconds": seconds}), range(count)))


@pytest.mark.parametrize("execution", EXECUTIONS)  # throttling does not depend on what runs the function
def test_reserved_concurrency_two_gives_two_successes_and_eight_throttles(lambda_emulator_factory, new_gate, execution):
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER, Timeout=HELD_TIMEOUT_S, ReservedConcurrentExecutions=2)}, backend="none", **settings(execution)
    )
    outcomes = call_many(emu.lambda_client, "Sleeper", 10, new_gate(), held=2)
    assert outcomes.count(200) == 2
    assert outcomes.count((429, "TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded")) == 8
    metrics = emu.metrics()["functions"]["Sleeper"]
    assert metrics["ThrottlesByReason"] == {"ReservedFunctionConcurrentInvocationLimitExceeded": 8}
    assert metrics["ConcurrentExecutionsPeak"] == 2


def test_throttle_response_is_aws_shaped(lambda_emulator_factory):
    emu = lambda_emulator_factory({"Sleeper": inline_function(SLEEPER, ReservedConcurrentExecutions=0)}, backend="none")
    with pytest.raises(ClientError) as caught:
        emu.lambda_client.invoke(FunctionName="Sleeper", Payload=b"{}")
    response = caught.value.response
    assert response["Error"]["Code"] == "TooManyRequestsException"
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert response["Type"] == "User"
    assert response["message"] == "Rate Exceeded."
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
    assert emu.metrics()["functions"]["Sleeper"]["Invocations"] == 0  # reserved 0 throttles everything


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_account_pool_throttles_with_concurrent_invocation_limit(lambda_emulator_factory, new_gate, execution):
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER, Timeout=HELD_TIMEOUT_S)}, backend="none", account_concurrency=4, unreserved_minimum=0, **settings(execution)
    )
    outcomes = call_many(emu.lambda_client, "Sleeper", 9, new_gate(), held=4)
    assert outcomes.count(200) == 4
    assert outcomes.count((429, "TooManyRequestsException", "ConcurrentInvocationLimitExceeded")) == 5


def test_reserved_concurrency_is_carved_out_of_the_account_pool(lambda_emulator_factory, new_gate):
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER), "Other": inline_function(SLEEPER)},
        backend="none",
        account_concurrency=6,
        unreserved_minimum=2,
    )
    lam = emu.lambda_client
    assert lam.put_function_concurrency(FunctionName="Other", ReservedConcurrentExecutions=4)["ReservedConcurrentExecutions"] == 4
    assert lam.get_function_concurrency(FunctionName="Other")["ReservedConcurrentExecutions"] == 4
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 2
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_concurrency(FunctionName="Sleeper", ReservedConcurrentExecutions=1)
    assert "below its minimum value of [2]" in str(caught.value)
    outcomes = call_many(lam, "Sleeper", 4, new_gate(), held=2)  # the unreserved pool is 6 - 4 = 2
    assert outcomes.count(200) == 2
    lam.delete_function_concurrency(FunctionName="Other")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="Other")
    assert call_many(lam, "Sleeper", 6, new_gate(), held=6).count(200) == 6


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_scaling_rate_limits_new_environments_but_not_warm_reuse(lambda_emulator_factory, new_gate, execution):
    # 3 new environments per 10 s (a scaled-down version of AWS's 1,000 per 10 s).
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER, Timeout=HELD_TIMEOUT_S)}, backend="none", scaling_environments=3, scaling_period=10, **settings(execution)
    )
    outcomes = call_many(emu.lambda_client, "Sleeper", 6, new_gate(), held=3)
    assert outcomes.count(200) == 3
    assert outcomes.count((429, "TooManyRequestsException", "ConcurrentInvocationLimitExceeded")) == 3
    # The three warm environments serve again without spending scaling tokens.
    assert call_many(emu.lambda_client, "Sleeper", 3, new_gate(), held=3).count(200) == 3
    assert emu.metrics()["functions"]["Sleeper"]["ColdStarts"] == 3


def test_scale_factor_divides_the_account_limit(lambda_emulator_factory, new_gate):
    emu = lambda_emulator_factory({"Sleeper": inline_function(SLEEPER)}, backend="none", scale_factor=250)  # 1,000 -> 4
    assert emu.lambda_client.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 4
    outcomes = call_many(emu.lambda_client, "Sleeper", 7, new_gate(), held=4)
    assert outcomes.count(200) == 4


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_accounting_is_exact_under_load(lambda_emulator_factory, execution):
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER, Timeout=HELD_TIMEOUT_S)}, backend="none", account_concurrency=10, unreserved_minimum=0, log_invocations=False,
        **settings(execution),
    )
    outcomes = call_many_ungated(emu.lambda_client, 60, seconds=0.05)
    successes = outcomes.count(200)
    throttles = sum(1 for o in outcomes if o != 200 and o[0] == 429)
    assert successes + throttles == 60
    assert successes >= 10
    metrics = emu.metrics()
    assert metrics["functions"]["Sleeper"]["ConcurrentExecutionsPeak"] <= 10
    assert metrics["functions"]["Sleeper"]["Invocations"] == successes
    assert metrics["functions"]["Sleeper"]["Throttles"] == throttles
    assert metrics["account"]["account_in_flight"] == 0


def test_provisioned_concurrency_serves_the_alias_and_spills_over(lambda_emulator_factory, new_gate):
    emu = lambda_emulator_factory(
        {
            "Sleeper": inline_function(
                SLEEPER, AutoPublishAlias="live", ProvisionedConcurrencyConfig={"ProvisionedConcurrentExecutions": 2}
            )
        },
        backend="none",
    )
    lam = emu.lambda_client
    deadline = time.monotonic() + 30
    while lam.get_provisioned_concurrency_config(FunctionName="Sleeper", Qualifier="live")["Status"] != "READY":
        assert time.monotonic() < deadline, "provisioned concurrency never became READY"
        time.sleep(0.05)
    response = lam.invoke(FunctionName="Sleeper", Qualifier="live", Payload=b'{"seconds": 0}')
    assert response["ExecutedVersion"] == "1"
    assert json.load(response["Payload"]) == {"init": "provisioned-concurrency", "version": "1"}
    assert call_many(lam, "Sleeper", 3, new_gate(), held=3, qualifier="live").count(200) == 3
    metrics = emu.metrics()["functions"]["Sleeper"]
    assert metrics["ProvisionedConcurrencyInvocations"] == 3
    assert metrics["ProvisionedConcurrencySpilloverInvocations"] == 1
    unqualified = json.load(lam.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 0}')["Payload"])
    assert unqualified == {"init": "on-demand", "version": "$LATEST"}


def test_provisioned_concurrency_equal_to_reserved_throttles_latest(lambda_emulator_factory):
    # PC adding up to the reserved concurrency throttles $LATEST:
    # https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
    emu = lambda_emulator_factory({"Sleeper": inline_function(SLEEPER, ReservedConcurrentExecutions=1)}, backend="none")
    lam = emu.lambda_client
    version = lam.publish_version(FunctionName="Sleeper")["Version"]
    lam.put_provisioned_concurrency_config(FunctionName="Sleeper", Qualifier=version, ProvisionedConcurrentExecutions=1)
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 0}')
    assert caught.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_provisioned_concurrency_config(FunctionName="Sleeper", Qualifier=version, ProvisionedConcurrentExecutions=2)


def test_legacy_regional_burst_is_shared_by_all_functions(lambda_emulator_factory, new_gate):
    # The old burst quota "applies to all your functions in the Region" (AWS's archived page:
    # https://github.com/awsdocs/aws-lambda-developer-guide/blob/38e9014eba7b2de5dff7e353de675d991e58947d/doc_source/invocation-scaling.md).
    emu = lambda_emulator_factory(
        {"Sleeper": inline_function(SLEEPER), "Other": inline_function(SLEEPER)},
        backend="none",
        scaling_model="legacy",
        legacy_burst=4,
        legacy_per_minute=1,  # no refill worth a token within the test
    )
    lam = emu.lambda_client
    outcomes = call_many(lam, ("Sleeper", "Other"), 6, new_gate(), held=4)
    assert outcomes.count(200) == 4
