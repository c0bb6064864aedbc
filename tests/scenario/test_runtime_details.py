"""Runtime details real libraries read: the X-Ray trace header of every invocation
(`_X_AMZN_TRACE_ID`, Powertools' Logger and Tracer), and tenant isolation (TenancyConfig,
the TenantId invoke parameter, `context.tenant_id`, environments of their own per tenant).
"""

from __future__ import annotations

import json
import re
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from core_testkit import call, wait_until

pytestmark = pytest.mark.scenario

# https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
TRACE_HEADER = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")

POWERTOOLS_HANDLER = """\
import os
from aws_lambda_powertools import Logger, Tracer

logger = Logger(service="orders")
tracer = Tracer(service="orders")


@tracer.capture_method
def total(items):
    return sum(items)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    logger.info("order received", extra={"items": len(event.get("items", []))})
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "total": total(event.get("items", []))}
"""


def _function(folder: Path, source: str, **properties: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(textwrap.dedent(source))
    props = {"CodeUri": str(folder), "Handler": "app.handler", "Runtime": "python3.11", "Timeout": 30, **properties}
    return {"Type": "AWS::Serverless::Function", "Properties": props}


def test_powertools_logger_and_tracer_see_a_trace_header_per_invocation_and_do_not_warn(
        lambda_emulator_factory: Any, tmp_path: Path) -> None:
    pytest.importorskip("aws_lambda_powertools.tracing", reason="the test extras install aws-lambda-powertools[tracer]")
    pytest.importorskip("aws_xray_sdk")
    emu = lambda_emulator_factory({"Orders": _function(tmp_path / "src", POWERTOOLS_HANDLER)}, backend="none")
    first, second = (call(emu.lambda_client, "Orders", {"items": [1, 2]}) for _ in range(2))
    for invocation in (first, second):
        assert invocation.function_error is None and invocation.payload["total"] == 3
        assert TRACE_HEADER.fullmatch(invocation.payload["trace"]), invocation.payload["trace"]
        assert "WARNING" not in invocation.log and "discarded" not in invocation.log, invocation.log
        record = json.loads(next(line for line in invocation.log.splitlines() if line.startswith("{")))
        assert record["message"] == "order received" and record["function_request_id"] == invocation.request_id
        assert record["xray_trace_id"] == invocation.payload["trace"].split(";")[0].removeprefix("Root=")
    assert first.payload["trace"] != second.payload["trace"]  # a new one for every invocation


def test_an_incoming_trace_header_is_passed_to_the_handler(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    source = "import os\ndef handler(event, context):\n    return os.environ['_X_AMZN_TRACE_ID']\n"
    emu = lambda_emulator_factory({"Echo": _function(tmp_path / "src", source)}, backend="none")

    def invoke(header: str, asynchronous: bool = False) -> Any:
        request = urllib.request.Request(f"{emu.url}/2015-03-31/functions/Echo/invocations", data=b"{}", method="POST",
                                         headers={"X-Amzn-Trace-Id": header})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    root = "1-5759e988-bd862e3fe1be46a994272793"
    assert invoke(f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1") == f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"
    partial = invoke(f"Root={root}")
    assert partial.startswith(f"Root={root};Parent=") and partial.endswith(";Sampled=0")
    made_up = invoke('Root=nonsense";Parent=x')  # malformed: a new one, nothing of it reaches the handler
    assert TRACE_HEADER.fullmatch(made_up) and "nonsense" not in made_up


TENANT_HANDLER = """\
import os

STARTED_FOR = None


def handler(event, context):
    global STARTED_FOR
    STARTED_FOR = STARTED_FOR or context.tenant_id  # the tenant this environment first served
    if event.get("record"):
        with open(event["record"], "a") as out:
            out.write(f"{context.tenant_id}\\n")
    return {"tenant": context.tenant_id, "environment_of": STARTED_FOR, "pid": os.getpid()}
"""


def test_tenant_isolation_gives_each_tenant_environments_of_its_own(lambda_emulator_factory: Any, tmp_path: Path) -> None:
    emu = lambda_emulator_factory({
        "Isolated": _function(tmp_path / "src", TENANT_HANDLER, TenancyConfig={"TenantIsolationMode": "PER_TENANT"}),
        "Shared": _function(tmp_path / "src", TENANT_HANDLER),
    }, backend="none")
    lam = emu.lambda_client
    blue1, green1, blue2, green2 = (call(lam, "Isolated", TenantId=tenant) for tenant in ("blue", "green", "blue", "green"))
    assert [c.payload["tenant"] for c in (blue1, green1, blue2, green2)] == ["blue", "green", "blue", "green"]
    assert (blue1.cold, green1.cold, blue2.cold, green2.cold) == (True, True, False, False)  # green never got blue's
    assert blue2.payload["pid"] == blue1.payload["pid"] != green1.payload["pid"] == green2.payload["pid"]
    assert all(c.payload["environment_of"] == c.payload["tenant"] for c in (blue1, green1, blue2, green2))
    assert "Tenant ID: blue" in blue2.report_line
    assert call(lam, "Shared").payload["tenant"] is None
    metrics = emu.metrics()["functions"]
    assert metrics["Isolated"]["InvocationsByTenant"] == {"blue": 2, "green": 2}
    assert lam.get_function_configuration(FunctionName="Isolated")["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    for function, kwargs in (("Isolated", {}), ("Shared", {"TenantId": "blue"}), ("Isolated", {"TenantId": "bad\"id"})):
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.invoke(FunctionName=function, Payload=b"{}", **kwargs)
    record = tmp_path / "async.txt"
    lam.invoke(FunctionName="Isolated", Payload=json.dumps({"record": str(record)}), InvocationType="Event", TenantId="red")
    assert wait_until(lambda: record.exists() and record.read_text() == "red\n")
