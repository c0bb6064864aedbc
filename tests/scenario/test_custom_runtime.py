"""A custom runtime (`Runtime: provided.al2023`): the function's own `bootstrap`, here the shell
script of AWS's custom-runtime tutorial
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-walkthrough.html), polling the
emulator's Runtime API with curl (`--execution process-runtime-api`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core_testkit import call
from emulator.pytest_plugin import running_emulator

pytestmark = [pytest.mark.scenario, pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")]

BOOTSTRAP = r"""#!/bin/sh
set -eu
# Init: report an error when asked to, as a runtime that cannot load its handler would.
if [ "${FAIL_INIT:-}" = "1" ]; then
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error" \
    -H "Lambda-Runtime-Function-Error-Type: Runtime.NoSuchHandler" -d '{"errorMessage": "no handler", "errorType": "Runtime.NoSuchHandler"}'
  exit 1
fi
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "handling $REQUEST_ID with $_HANDLER"
  case "$EVENT" in
    *fail*) curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/error" \
              -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" -d '{"errorMessage": "asked to fail", "errorType": "Custom.Failure"}' ;;
    *) curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" -d "{\"echo\": $EVENT}" ;;
  esac
  rm -f "$HEADERS"
done
"""


def test_a_custom_runtime_bootstrap_serves_through_the_runtime_api(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "bootstrap").write_text(BOOTSTRAP)
    os.chmod(code / "bootstrap", 0o755)
    function = {"Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": str(code), "Handler": "function.handler", "Runtime": "provided.al2023"}}
    broken = {"Type": "AWS::Serverless::Function", "Properties": {
        **function["Properties"], "Environment": {"Variables": {"FAIL_INIT": "1"}}}}
    with running_emulator({"Custom": function, "Broken": broken}, backend="none", execution="process-runtime-api") as emu:
        lam = emu.lambda_client
        first = call(lam, "Custom", {"n": 1})
        assert (first.function_error, first.payload) == (None, {"echo": {"n": 1}})
        assert f"handling {first.request_id} with function.handler" in first.log and first.cold
        assert not call(lam, "Custom", {"n": 2}).cold
        failed = call(lam, "Custom", {"fail": True})
        assert (failed.function_error, failed.payload["errorType"]) == ("Unhandled", "Custom.Failure")
        init_failed = call(lam, "Broken", {})
        assert (init_failed.function_error, init_failed.payload["errorType"]) == ("Unhandled", "Runtime.NoSuchHandler")
        assert "INIT_REPORT" in init_failed.log and "Error Type: Runtime.NoSuchHandler" in init_failed.log
