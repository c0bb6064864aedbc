"""The Invoke contract seen through boto3 (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html,
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html): warm and cold starts, the
environment and context a handler gets, its logs, the API's errors and the function catalogue.

One emulator serves the whole module; each test uses functions nobody else touches, or
compares metrics before and after, so the tests do not depend on their order.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import WARM_STATE_SOURCE, call, function_metrics, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

REGION = "us-east-1"
ACCOUNT = "123456789012"
MB = 1024 * 1024

INSPECT = """
import os
def handler(event, context):
    cc = context.client_context
    out = {
        "env": dict(os.environ),
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "client_context": cc and {
                "custom": cc.custom,
                "env": cc.env,
                "installation_id": cc.client and cc.client.installation_id,
                "app_title": cc.client and cc.client.app_title,
            },
            "identity": context.identity and [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        },
    }
    if event.get("call_emulator"):
        import boto3
        session = boto3.Session()
        client = session.client("lambda")
        names = []
        for page in client.get_paginator("list_functions").paginate():
            names += [f["FunctionName"] for f in page["Functions"]]
        out["listed"] = sorted(names)
        out["access_key"] = session.get_credentials().access_key
        out["client_endpoint"] = client.meta.endpoint_url
        out["client_region"] = client.meta.region_name
    return out
"""

CHATTY = """
import logging, sys
def handler(event, context):
    print("printed line")
    logging.warning("warned about %s", "disk")
    print("to stderr", file=sys.stderr)
    for i in range(event.get("lines", 0)):
        print(f"bulk {i:05d} " + "y" * 60)
    return "ok"
"""

ECHO = """
import os
def handler(event, context):
    if isinstance(event, dict) and "touch" in event:
        with open(event["touch"], "w") as f:
            f.write(context.aws_request_id)
    return {"event": event, "arn": context.invoked_function_arn}
"""


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with pytest.MonkeyPatch.context() as patch:
        # Credentials a developer might have exported: handlers must never see them.
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIADEVELOPERREALKEY1")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "developer-real-secret")
        with running_emulator(
            {
                "state": inline_function(WARM_STATE_SOURCE),
                "inspect": inline_function(
                    INSPECT, MemorySize=256, Timeout=7,
                    Environment={"Variables": {"GREETING": "hello", "TABLE_NAME": "orders"}},
                ),
                "chatty": inline_function(CHATTY),
                "echo": inline_function(ECHO),
                "catalogued": inline_function(ECHO, Description="listed and described", MemorySize=1024, Timeout=30,
                                              Environment={"Variables": {"STAGE": "test"}}),
            },
            backend="none",
        ) as handle:
            yield handle


# -- warm and cold -------------------------------------------------------------------------------
def test_warm_invocations_keep_module_state_and_tmp_and_report_init_only_once(emu: EmulatorHandle, lam: Any) -> None:
    marker = f"emulator-scenario-{uuid.uuid4().hex}"
    try:
        calls = [call(lam, "state", {"marker": marker}) for _ in range(3)]
    finally:
        Path("/tmp", marker).unlink(missing_ok=True)
    payloads = [c.payload for c in calls]
    assert [p["count"] for p in payloads] == [1, 2, 3]
    assert len({p["pid"] for p in payloads}) == 1
    assert payloads[1]["previous"] == calls[0].request_id and payloads[2]["previous"] == calls[1].request_id
    assert [c.cold for c in calls] == [True, False, False]
    metrics = function_metrics(emu, "state")
    assert (metrics["Invocations"], metrics["ColdStarts"]) == (3, 1)


# -- what the handler sees -----------------------------------------------------------------------------
def test_handler_environment_has_lambdas_variables_its_own_and_dummy_credentials(emu: EmulatorHandle, lam: Any) -> None:
    result = call(lam, "inspect", {"call_emulator": True})
    assert result.function_error is None, result.payload
    out = result.payload
    env = out["env"]
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "inspect",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/inspect",
        "_HANDLER": "index.handler",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "TZ": ":UTC",
        "GREETING": "hello",
        "TABLE_NAME": "orders",
        "AWS_ENDPOINT_URL": emu.url,
    }
    assert {key: env.get(key) for key in expected} == expected
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert Path(env["LAMBDA_TASK_ROOT"], "index.py").is_file()
    # Dummy credentials only: neither the developer's exported keys nor their ~/.aws files.
    assert env["AWS_ACCESS_KEY_ID"] not in ("", "AKIADEVELOPERREALKEY1")
    assert env["AWS_SECRET_ACCESS_KEY"] != "developer-real-secret"
    assert out["access_key"] == env["AWS_ACCESS_KEY_ID"]
    # boto3 inside the handler talks to the emulator without any configuration.
    assert out["client_endpoint"] == emu.url and out["client_region"] == REGION
    assert out["listed"] == ["catalogued", "chatty", "echo", "inspect", "state"]


def test_context_matches_the_invocation(lam: Any) -> None:
    client_context = {"custom": {"tenant": "t-1"}, "env": {"platform": "pytest"}, "client": {"installation_id": "i-9", "app_title": "app"}}
    encoded = base64.b64encode(json.dumps(client_context).encode()).decode()
    plain = call(lam, "inspect")
    ctx = plain.payload["context"]
    assert ctx["aws_request_id"] == plain.request_id
    assert (ctx["function_name"], ctx["function_version"]) == ("inspect", "$LATEST")
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:inspect"
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["log_group_name"] == "/aws/lambda/inspect"
    assert ctx["log_stream_name"] == plain.payload["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < ctx["remaining_ms"] <= 7000
    assert ctx["client_context"] is None
    assert ctx["identity"] == [None, None]

    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:inspect:$LATEST"
    by_arn = call(lam, arn, ClientContext=encoded)
    ctx = by_arn.payload["context"]
    assert ctx["aws_request_id"] == by_arn.request_id != plain.request_id
    assert ctx["invoked_function_arn"] == arn
    assert ctx["client_context"] == {"custom": {"tenant": "t-1"}, "env": {"platform": "pytest"}, "installation_id": "i-9", "app_title": "app"}


# -- logs ------------------------------------------------------------------------------------------
def test_tail_has_handler_output_between_start_end_and_report(lam: Any) -> None:
    result = call(lam, "chatty")
    rid = result.request_id
    lines = result.log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {rid}"
    assert re.fullmatch(
        rf"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
        r"Max Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?",
        lines[-1],
    )
    assert "printed line" in lines and "to stderr" in lines
    warning = [line for line in lines if line.startswith("[WARNING]")]
    assert len(warning) == 1
    assert re.fullmatch(rf"\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\twarned about disk", warning[0])


def test_tail_is_at_most_4_kb_and_ends_with_report(lam: Any) -> None:
    result = call(lam, "chatty", {"lines": 400})
    raw = base64.b64decode(result.headers["x-amz-log-result"])
    assert 3500 < len(raw) <= 4096
    assert result.log.rstrip("\n").splitlines()[-1].startswith(f"REPORT RequestId: {result.request_id}")
    assert "bulk 00399" in result.log and "bulk 00000" not in result.log


def test_no_log_result_without_tail(lam: Any) -> None:
    response = lam.invoke(FunctionName="chatty", Payload=b"{}")
    assert "LogResult" not in response and response["Payload"].read() == b'"ok"'


# -- naming the function -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "qualifier", "expected_arn"),
    [
        ("echo", None, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo", None, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo"),
        (f"{ACCOUNT}:function:echo", None, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo"),
        ("echo:$LATEST", None, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo:$LATEST"),
        ("echo", "$LATEST", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo:$LATEST"),
    ],
)
def test_function_can_be_named_by_name_arn_partial_arn_or_qualified(lam: Any, name: str, qualifier: str | None, expected_arn: str) -> None:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"n": 1}), **kwargs)
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert json.loads(response["Payload"].read()) == {"event": {"n": 1}, "arn": expected_arn}


@pytest.mark.parametrize(
    "name",
    ["bad name!", "a" * 65, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo:v1:extra", "echo:", "arn:aws:s3:::bucket"],
)
def test_malformed_function_names_are_invalid_parameter_values(lam: Any, name: str) -> None:
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name, Payload=b"{}")
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidParameterValueException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_function_is_resource_not_found(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "no-such-function" in caught.value.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="echo", Qualifier="no-such-alias", Payload=b"{}")


# -- request validation ----------------------------------------------------------------------------
def test_body_that_is_not_json_is_invalid_request_content(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as caught:
        lam.invoke(FunctionName="echo", Payload=b"{not json")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_any_json_value_is_a_valid_event(lam: Any) -> None:
    for payload, event in ((b"[1, 2]", [1, 2]), (b'"text"', "text"), (b"null", None), (b"", {})):
        response = lam.invoke(FunctionName="echo", Payload=payload)
        assert json.loads(response["Payload"].read())["event"] == event


def test_sync_payload_over_6_mb_is_request_too_large(lam: Any) -> None:
    payload = json.dumps({"blob": "x" * (6 * MB)}).encode()
    with pytest.raises(lam.exceptions.RequestTooLargeException) as caught:
        lam.invoke(FunctionName="echo", Payload=payload)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_sync_payload_just_under_6_mb_is_accepted(lam: Any) -> None:
    blob = "x" * (6 * MB - 1024)
    response = lam.invoke(FunctionName="echo", Payload=json.dumps({"blob": blob}).encode())
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert len(json.loads(response["Payload"].read())["event"]["blob"]) == len(blob)


def test_event_payload_over_1_mb_is_request_too_large(lam: Any) -> None:
    payload = json.dumps({"blob": "x" * MB}).encode()
    with pytest.raises(lam.exceptions.RequestTooLargeException) as caught:
        lam.invoke(FunctionName="echo", InvocationType="Event", Payload=payload)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    fits = json.dumps({"blob": "x" * (MB - 1024)}).encode()
    assert lam.invoke(FunctionName="echo", InvocationType="Event", Payload=fits)["StatusCode"] == 202


def test_dry_run_is_204_and_runs_nothing(emu: EmulatorHandle, lam: Any) -> None:
    # Other tests' Event invocations may still be running: wait until nothing is.
    assert wait_until(lambda: emu.metrics()["async_queue"]["pending"] == 0 and emu.metrics()["account"]["account_in_flight"] == 0)
    before = function_metrics(emu, "echo")["Invocations"]
    response = lam.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")
    assert response["StatusCode"] == 204 and response["Payload"].read() == b""
    assert function_metrics(emu, "echo")["Invocations"] == before


def test_event_invocation_is_accepted_with_202_and_runs_later(lam: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    response = lam.invoke(FunctionName="echo", InvocationType="Event", Payload=json.dumps({"touch": str(marker)}))
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    assert wait_until(marker.exists), "the Event invocation never ran"
    assert wait_until(lambda: marker.read_text()) == request_id


def _raw(emu: EmulatorHandle, path: str, data: bytes | None = b"{}", headers: dict | None = None, method: str = "POST") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(emu.url + path, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


BAD_REQUESTS = [
    ("/2015-03-31/functions/echo/invocations", b"{oops", {}, "POST", 400, "InvalidRequestContentException"),
    ("/2015-03-31/functions/echo/invocations", b"\xff\xfe\x00", {}, "POST", 400, "InvalidRequestContentException"),
    ("/2015-03-31/functions/echo/invocations", b"{}", {"X-Amz-Invocation-Type": "Sometimes"}, "POST", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/echo/invocations", b"{}", {"X-Amz-Client-Context": "%%%not-base64"}, "POST", 400, "InvalidRequestContentException"),
    ("/2015-03-31/functions/echo/invocations", b"{}", {"X-Amz-Client-Context": base64.b64encode(b"[1]").decode()}, "POST", 400, "InvalidRequestContentException"),
    ("/2015-03-31/functions/echo/invocations", b"{}", {"X-Amz-Client-Context": "e30=" * 1000}, "POST", 400, "InvalidRequestContentException"),
    ("/2015-03-31/functions/echo%2Fx/invocations", b"{}", {}, "POST", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/echo:$LATEST/invocations?Qualifier=other", b"{}", {}, "POST", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/ghost/invocations", b"{}", {}, "POST", 404, "ResourceNotFoundException"),
    ("/2015-03-31/functions/echo/invocations", b"x" * (17 * MB), {}, "POST", 413, "RequestTooLargeException"),
    ("/2015-03-31/functions/?MaxItems=0", None, {}, "GET", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/?MaxItems=many", None, {}, "GET", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/?Marker=not-a-marker", None, {}, "GET", 400, "InvalidParameterValueException"),
    ("/2015-03-31/functions/ghost/configuration", None, {}, "GET", 404, "ResourceNotFoundException"),
]


def test_error_bodies_are_aws_shaped_without_tracebacks_and_the_emulator_keeps_serving(emu: EmulatorHandle, lam: Any) -> None:
    for path, data, headers, method, status, code in BAD_REQUESTS:
        got_status, got_headers, body = _raw(emu, path, data, headers, method)
        where = f"{method} {path[:60]} {headers}"
        assert (got_status, got_headers.get("x-amzn-ErrorType")) == (status, code), f"{where}: {body[:300]!r}"
        assert b"Traceback" not in body and b'File "' not in body, where
        assert isinstance(json.loads(body)["message"], str), where
    assert call(lam, "echo", {"still": "up"}).payload["event"] == {"still": "up"}


# -- the catalogue ---------------------------------------------------------------------------------
def test_get_function_configuration_and_get_function_shapes(lam: Any) -> None:
    config = lam.get_function_configuration(FunctionName="catalogued")
    assert config["FunctionName"] == "catalogued"
    assert config["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:catalogued"
    assert (config["Runtime"], config["Handler"]) == ("python3.11", "index.handler")
    assert (config["MemorySize"], config["Timeout"], config["Version"]) == (1024, 30, "$LATEST")
    assert config["Description"] == "listed and described"
    assert config["Environment"]["Variables"] == {"STAGE": "test"}
    assert config["State"] == "Active" and config["LastUpdateStatus"] == "Successful"
    assert re.fullmatch(r"[0-9a-f]{64}", config["CodeSha256"]) and config["CodeSize"] > 0
    assert config["PackageType"] == "Zip"
    function = lam.get_function(FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:catalogued")
    assert {k: v for k, v in function["Configuration"].items() if k != "ResponseMetadata"} == {
        k: v for k, v in config.items() if k != "ResponseMetadata"
    }
    assert function["Code"]["Location"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="ghost")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_configuration(FunctionName="ghost")


def test_list_functions_pages_with_max_items_and_marker(lam: Any) -> None:
    everything = lam.list_functions()
    names = [f["FunctionName"] for f in everything["Functions"]]
    assert names == sorted(["catalogued", "chatty", "echo", "inspect", "state"]) and "NextMarker" not in everything
    pages, marker = [], None
    while True:
        page = lam.list_functions(MaxItems=2, **({"Marker": marker} if marker else {}))
        pages.append([f["FunctionName"] for f in page["Functions"]])
        marker = page.get("NextMarker")
        if marker is None:
            break
        assert len(pages) < 10, "pagination does not end"
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [name for page in pages for name in page] == names
    paginated = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
    assert [[f["FunctionName"] for f in page["Functions"]] for page in paginated] == [names[:3], names[3:]]
    described = next(f for f in everything["Functions"] if f["FunctionName"] == "catalogued")
    assert (described["MemorySize"], described["Timeout"]) == (1024, 30)
