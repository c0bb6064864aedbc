"""Real apps run unchanged: templates in the shapes AWS's public SAM pattern collections use
(written here, not copied), started as a user starts them.

Each test names the behaviour it proves; the templates are plain YAML written to tmp_path.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from host_testkit import emulator_process

pytestmark = pytest.mark.scenario


def _invoke(url: str, function: str, payload: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(payload if payload is not None else {}).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, dict(response.headers), json.loads(response.read() or b"null")


def test_inline_code_runs_with_a_relative_template_path(tmp_path: Path) -> None:
    """`emulator up --template app/template.yaml` from the project folder: every call used to
    fail with `exit status 70` and nothing in the log (the inline code's folder was relative,
    and environments run in their own working directory)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "template.yaml").write_text(textwrap.dedent("""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Inline:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: index.handler
              InlineCode: |
                def handler(event, context):
                    return {"inline": event["n"] * 2}
        """))
    with emulator_process(tmp_path, Path("app/template.yaml"), "--backend", "none") as emulator:
        status, headers, body = _invoke(emulator.url, "Inline", {"n": 21})
        assert (status, headers.get("X-Amz-Function-Error"), body) == (200, None, {"inline": 42})
