"""The quick start with the AWS CLI, v1 and v2, as the README gives it (issue 10).

v1 is the `awscli` package of the test extras (its `aws` sits beside this Python). v2 is not
on PyPI: the test runs it when an `aws` on PATH says `aws-cli/2` (Debian's `apt install
awscli` gives one) and is skipped otherwise. Every command gets `--endpoint-url` as well as
AWS_ENDPOINT_URL, so no CLI version here ever sends a request to AWS's hosts: v1 pins SQS to
its global host without the flag, and v2 releases older than the endpoint settings ignore
the variable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from core_testkit import wait_until
from host_testkit import RunningEmulator, emulator_process

pytestmark = pytest.mark.scenario

CLI_TIMEOUT_S = 60
# v2 reads --payload as base64 unless told otherwise; v1 has no such option.
V2_BINARY_FORMAT = ("--cli-binary-format", "raw-in-base64-out")
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "template.yaml"


def _version(aws: str) -> str:
    try:
        return subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _cli_v1() -> str | None:
    aws = Path(sys.executable).parent / "aws"
    return str(aws) if aws.exists() and _version(str(aws)).startswith("aws-cli/1.") else None


def _cli_v2() -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        aws = shutil.which("aws", path=folder)
        if aws and _version(aws).startswith("aws-cli/2."):
            return aws
    return None


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with emulator_process(tmp_path_factory.mktemp("cli"), HELLO) as running:
        yield running


class Cli:
    def __init__(self, aws: str, emulator: RunningEmulator, cwd: Path) -> None:
        self.aws, self.url, self.cwd = aws, emulator.url, cwd
        # Only what the quick start exports, and no files of the user's.
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "AWS_ENDPOINT_URL": emulator.url,
                    "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}

    def __call__(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.aws, "--endpoint-url", self.url, *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_S)

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "--output", "json"))


def _quick_start(cli: Cli, *binary_format: str) -> None:
    cli("lambda", "invoke", "--function-name", "hello", "--payload", '{"name":"you"}', *binary_format, "out.json")
    assert json.loads((cli.cwd / "out.json").read_text())["message"] == "Hello, you!"
    queue_url = cli.json("sqs", "create-queue", "--queue-name", "work")["QueueUrl"]
    assert queue_url.startswith(cli.url)  # the emulator's own URL, never AWS's host


def _deploy_and_read_logs(cli: Cli, name: str, *binary_format: str) -> None:
    package = cli.cwd / "function.zip"
    with zipfile.ZipFile(package, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    print('deployed', event['n'])\n    return event['n'] * 2\n")
    cli("lambda", "create-function", "--function-name", name, "--runtime", "python3.11", "--handler", "app.handler",
        "--role", "arn:aws:iam::123456789012:role/lambda", "--zip-file", f"fileb://{package}",
        "--tags", "team=orders")
    cli("lambda", "wait", "function-active-v2", "--function-name", name)
    assert cli.json("lambda", "list-tags", "--resource",
                    f"arn:aws:lambda:us-east-1:123456789012:function:{name}")["Tags"] == {"team": "orders"}
    cli("lambda", "invoke", "--function-name", name, "--payload", '{"n": 21}', *binary_format, "n.json")
    assert (cli.cwd / "n.json").read_text() == "42"

    def logged() -> list[str]:
        args = ("logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}", "--output", "json")
        result = cli.run(*args)
        if result.returncode != 0 and "ResourceNotFoundException" in result.stderr:
            return []  # the group comes with the first logs shipped, a moment after the invoke (as on AWS)
        assert result.returncode == 0, (args, result.stderr)
        return [event["message"] for event in json.loads(result.stdout)["events"]]

    assert wait_until(lambda: "deployed 21" in logged()), logged()


def test_the_quick_start_with_aws_cli_v1(emulator: RunningEmulator, tmp_path: Path) -> None:
    aws = _cli_v1()
    assert aws, "the test extras install awscli (AWS CLI v1)"
    cli = Cli(aws, emulator, tmp_path)
    _quick_start(cli)  # v1 sends --payload as it is: no --cli-binary-format
    _deploy_and_read_logs(cli, "from-cli-v1")


def test_the_quick_start_with_aws_cli_v2(emulator: RunningEmulator, tmp_path: Path) -> None:
    aws = _cli_v2()
    if aws is None:
        pytest.skip("no AWS CLI v2 on PATH (not on PyPI; Debian: apt install awscli)")
    cli = Cli(aws, emulator, tmp_path)
    _quick_start(cli, *V2_BINARY_FORMAT)
    _deploy_and_read_logs(cli, "from-cli-v2", *V2_BINARY_FORMAT)
    tail = cli("logs", "tail", "/aws/lambda/from-cli-v2")  # a v2 command, reading FilterLogEvents
    assert "deployed 21" in tail and "REPORT RequestId" in tail
