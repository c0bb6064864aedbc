"""`emulator up` with a template that declares APIs: `--api-port 0` picks a port and the ready
message lists every API stage with its URLs and routes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from apigw_testkit import request
from core_testkit import wait_until
from emulator.template.api_ids import api_id

pytestmark = pytest.mark.scenario

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.11
      Events:
        Get:
          Type: Api
          Properties: {Path: /hello, Method: get}
        All:
          Type: HttpApi
"""
_URL = re.compile(r"REST API ServerlessRestApi \((\w+)\), stage Prod: (http://127\.0\.0\.1:\d+)/Prod/")


def test_up_lists_the_apis_with_their_urls(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(textwrap.dedent("""
        def handler(event, context):
            return {"statusCode": 200, "body": "hello from " + event["requestContext"]["stage"]}
    """))
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    stderr_path = tmp_path / "stderr"
    command = [str(Path(sys.executable).parent / "emulator"), "up", "--backend", "none", "--port", "0", "--api-port", "0"]
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ})
    try:
        assert wait_until(lambda: _URL.search(stderr_path.read_text()), 60), stderr_path.read_text()
        found = _URL.search(stderr_path.read_text())
        assert found is not None and found.group(1) == api_id("ServerlessRestApi")
        text = stderr_path.read_text()
        assert "GET /hello -> Hello" in text and "HTTP API ServerlessHttpApi" in text and "$default -> Hello" in text
        reply = request(found.group(2), "GET", "/Prod/hello")
        assert (reply.status, reply.body) == (200, b"hello from Prod")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0
