"""Real apps run unchanged: templates in the shapes AWS's public SAM pattern collections use
(written here, not copied), started as a user starts them.

Each test names the behaviour it proves; the templates are plain YAML written to tmp_path.
"""

from __future__ import annotations

import json
import shutil
import os
import logging
import stat
import subprocess
import textwrap
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core_testkit import wait_until
from host_testkit import emulator_command, emulator_process

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


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _zip_folder(folder: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(folder)))
                info.create_system, info.external_attr = 3, (path.stat().st_mode & 0xFFFF) << 16
                bundle.writestr(info, path.read_bytes())
    return archive


LAYERS_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    Timeout: 10
    Layers:
      - !Ref SharedLayer
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: shared-utils
      ContentUri: layers/shared/
      CompatibleRuntimes: [python3.11]
  ExtrasLayer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      LayerName: extras
      Content: build/extras-layer.zip
  WithLayers:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Layers:
        - !Ref ExtrasLayer
        - arn:aws:lambda:us-east-1:017000801446:layer:SomeonesLayer:7
  WithoutLayers:
    Type: AWS::Lambda::Function
    Properties:
      Code: src/
      Handler: app.handler
      Runtime: python3.11
"""

LAYER_HANDLER = """\
import importlib, os, subprocess, sys

def handler(event, context):
    found = {}
    for name in ("shared_utils", "extras_pkg", "common"):
        try:
            found[name] = importlib.import_module(name).WHO
        except ImportError:
            found[name] = None
    tool = subprocess.run(["greet"], capture_output=True, text=True).stdout.strip() if found["shared_utils"] else None
    layer_entries = [entry.split(os.sep)[-3:] for entry in sys.path[1:4]]
    return {"found": found, "tool": tool, "path": layer_entries, "task_root_first": sys.path[0] == os.getcwd()}
"""


def test_layers_reach_the_handler_in_order_and_only_their_functions(lambda_emulator_factory: Any, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A folder layer from Globals and a .zip layer on the function: their python/ and
    python/lib/python3.11/site-packages/ folders are on sys.path after the code, in layer
    order (the later layer's `common` wins), their bin/ on PATH; a foreign layer ARN is
    reported once and the function still runs; another function sees none of it."""
    _write(tmp_path, {
        "src/app.py": LAYER_HANDLER,
        "layers/shared/python/shared_utils.py": "WHO = 'shared'\n",
        "layers/shared/python/common.py": "WHO = 'shared'\n",
        "layers/shared/bin/greet": "#!/bin/sh\necho hello from a layer\n",
        "extras/python/lib/python3.11/site-packages/extras_pkg/__init__.py": "WHO = 'extras'\n",
        "extras/python/common.py": "WHO = 'extras'\n",
        "template.yaml": LAYERS_TEMPLATE,
    })
    (tmp_path / "layers/shared/bin/greet").chmod(0o755)
    _zip_folder(tmp_path / "extras", tmp_path / "build/extras-layer.zip")
    with caplog.at_level(logging.WARNING, logger="emulator.template.loader"):
        emu = lambda_emulator_factory(tmp_path / "template.yaml", backend="none")
    foreign = [r.getMessage() for r in caplog.records if "SomeonesLayer" in r.getMessage()]
    assert len(foreign) == 1 and "starts without it" in foreign[0]
    with_layers = emu.invoke("WithLayers")
    assert with_layers["found"] == {"shared_utils": "shared", "extras_pkg": "extras", "common": "extras"}
    assert with_layers["tool"] == "hello from a layer" and with_layers["task_root_first"]
    assert with_layers["path"][0][-2:] == ["python3.11", "site-packages"]
    assert with_layers["path"][1][-1] == "python"
    without = emu.invoke("WithoutLayers")
    assert without["found"] == {"shared_utils": None, "extras_pkg": None, "common": None}
    layers = emu.lambda_client.get_function_configuration(FunctionName="WithLayers")["Layers"]
    assert [layer["Arn"] for layer in layers] == [
        "arn:aws:lambda:us-east-1:123456789012:layer:shared-utils:1", "arn:aws:lambda:us-east-1:123456789012:layer:extras:1"]
    lam = emu.lambda_client
    extras = lam.get_layer_version(LayerName="extras", VersionNumber=1)
    assert extras["LayerVersionArn"] == "arn:aws:lambda:us-east-1:123456789012:layer:extras:1"
    assert extras["Content"]["CodeSize"] == len("WHO = 'extras'\n") * 2
    assert lam.get_layer_version_by_arn(Arn=extras["LayerVersionArn"])["Version"] == 1
    assert [layer["LayerName"] for layer in lam.list_layers()["Layers"]] == ["extras", "shared-utils"]
    assert [layer["LayerName"] for layer in lam.list_layers(CompatibleRuntime="python3.11")["Layers"]] == ["shared-utils"]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="shared-utils")["LayerVersions"]] == [1]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version(LayerName="extras", VersionNumber=2)


VENDORED_HANDLER = """\
import importlib.metadata
import six
import vendored_lib

def handler(event, context):
    return {"lib": vendored_lib.VERSION, "metadata": importlib.metadata.version("vendored-lib"), "six": six.__version__}
"""


def _vendored_app(folder: Path) -> Path:
    """A function folder as `pip install -r requirements.txt -t .` leaves it: packages and their
    dist-info beside the handler, one of them (six) also installed where the emulator runs."""
    return _write(folder, {
        "app.py": VENDORED_HANDLER,
        "requirements.txt": "vendored-lib==2.5.0\nsix==0.0\n",
        "vendored_lib/__init__.py": "VERSION = '2.5.0'\n",
        "vendored_lib-2.5.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: vendored-lib\nVersion: 2.5.0\n",
        "six.py": "__version__ = 'vendored'\n",
    })


ZIP_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  FromZip:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: build/function.zip
      Handler: app.handler
      Runtime: python3.11
  FromFolder:
    Type: AWS::Lambda::Function
    Properties:
      Code: vendored/
      Handler: app.handler
      Runtime: python3.11
      Role: arn:aws:iam::123456789012:role/lambda
"""


def test_zip_packages_and_vendored_dependencies_run_as_on_aws(lambda_emulator_factory: Any, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """`CodeUri: build/function.zip` is unpacked into a folder of the emulator's; dependencies
    vendored in the function's own folder come first on sys.path (before what the emulator's
    Python has installed, here `six`), with their metadata; a link in the zip that points
    outside the package is left out with a warning."""
    _vendored_app(tmp_path / "vendored")
    (tmp_path / "template.yaml").write_text(ZIP_TEMPLATE)
    archive = _zip_folder(tmp_path / "vendored", tmp_path / "build/function.zip")
    with zipfile.ZipFile(archive, "a") as bundle:
        link = zipfile.ZipInfo("etc-passwd")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    with caplog.at_level(logging.WARNING, logger="emulator.functions.packages"):
        emu = lambda_emulator_factory(tmp_path / "template.yaml", backend="none")
    expected = {"lib": "2.5.0", "metadata": "2.5.0", "six": "vendored"}
    assert emu.invoke("FromZip") == expected
    assert emu.invoke("FromFolder") == expected
    skipped = [r.getMessage() for r in caplog.records if "etc-passwd" in r.getMessage()]
    assert len(skipped) == 1 and "points outside the package" in skipped[0]
    code_dir = Path(emu.server.app.functions["FromZip"].code_dir)
    assert code_dir.is_dir() and tmp_path not in code_dir.parents  # the emulator's own folder
    emu.stop()
    assert not code_dir.exists()  # removed with the emulator


def test_a_zip_bomb_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(ZIP_TEMPLATE.split("  FromFolder:")[0])
    with zipfile.ZipFile(tmp_path / "build.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("app.py", "def handler(e, c):\n    return 1\n")
        with bundle.open("zeros.bin", "w", force_zip64=True) as zeros:  # ~300 KB zipped, 300 MB unzipped
            for _ in range(300):
                zeros.write(bytes(1024 * 1024))
    (tmp_path / "build").mkdir()
    (tmp_path / "build.zip").rename(tmp_path / "build/function.zip")
    result = subprocess.run([*emulator_command(), "up", "--port", "0", "--template", "template.yaml", "--backend", "none"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "unzipped size must be smaller than 262144000 bytes" in result.stderr and "Traceback" not in result.stderr


PARAMETERS_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    AllowedValues: [dev, prod]
  TableName:
    Type: String
    AllowedPattern: '[a-z-]+'
  Owner:
    Type: String
    Default: team-a
Mappings:
  StageSettings:
    dev: {Timeout: 5}
    prod: {Timeout: 20}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  ProdAndOwned: !And [!Condition IsProd, !Equals [!Ref Owner, team-a]]
Globals:
  Function:
    Runtime: python3.11
    Handler: app.handler
    CodeUri: src/
    Timeout: !FindInMap [StageSettings, !Ref Stage, Timeout]
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "orders-${Stage}"
      MemorySize: !If [IsProd, 1024, 256]
      ReservedConcurrentExecutions: !If [IsProd, 10, !Ref AWS::NoValue]
      Environment:
        Variables:
          STAGE: !Ref Stage
          TABLE: !Ref TableName
          REGION_AND_ACCOUNT: !Join [":", [!Ref AWS::Region, !Ref AWS::AccountId]]
          FIRST_PART: !Select [0, !Split ["-", !Ref TableName]]
          ENCODED: !Base64 hello
          VPC: !ImportValue network-VpcId
          DEBUG: !If [IsDev, "1", !Ref AWS::NoValue]
  Nightly:
    Type: AWS::Serverless::Function
    Condition: ProdAndOwned
    Properties:
      FunctionName: !Sub "nightly-${Stage}"
"""

PARAMETERS_HANDLER = """\
import os

def handler(event, context):
    return {k: v for k, v in os.environ.items()
            if k in ("STAGE", "TABLE", "REGION_AND_ACCOUNT", "FIRST_PART", "ENCODED", "VPC", "DEBUG")}
"""


def test_parameters_without_defaults_fail_the_start_naming_them_and_overrides_start_it(tmp_path: Path) -> None:
    """`emulator up` of a template whose Parameters have no Default names them all and says
    how to pass them; with `--parameter-overrides` (and EMULATOR_PARAMETER_OVERRIDES) it runs,
    with its conditions, mappings and intrinsics evaluated from those values."""
    _write(tmp_path, {"template.yaml": PARAMETERS_TEMPLATE, "src/app.py": PARAMETERS_HANDLER})
    command = [*emulator_command(), "up", "--port", "0", "--template", "template.yaml", "--backend", "none"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "parameters 'Stage', 'TableName' have no Default" in refused.stderr
    assert "--parameter-overrides Stage=... TableName=..." in refused.stderr
    wrong = subprocess.run([*command, "--parameter-overrides", "Stage=qa", "TableName=orders"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "'qa', which is not one of its AllowedValues ['dev', 'prod']" in wrong.stderr
    env = {**os.environ, "EMULATOR_IMPORT_VALUES": "network-VpcId=vpc-0abc"}
    with emulator_process(tmp_path, Path("template.yaml"), "--backend", "none", "--parameter-overrides",
                          "ParameterKey=Stage,ParameterValue=prod", "TableName=orders-table", env=env) as emulator:
        status, _, body = _invoke(emulator.url, "orders-prod")
        assert status == 200 and body == {
            "STAGE": "prod", "TABLE": "orders-table", "REGION_AND_ACCOUNT": "us-east-1:123456789012",
            "FIRST_PART": "orders", "ENCODED": "aGVsbG8=", "VPC": "vpc-0abc"}
        config = json.loads(urllib.request.urlopen(f"{emulator.url}/2015-03-31/functions/orders-prod/configuration").read())
        assert (config["MemorySize"], config["Timeout"]) == (1024, 20)
        assert _invoke(emulator.url, "nightly-prod")[0] == 200  # its Condition holds in prod


def test_fixture_settings_take_parameter_overrides_and_conditions_leave_resources_out(
        lambda_emulator_factory: Any, tmp_path: Path) -> None:
    _write(tmp_path, {"template.yaml": PARAMETERS_TEMPLATE, "src/app.py": PARAMETERS_HANDLER})
    emu = lambda_emulator_factory(tmp_path / "template.yaml", backend="none",
                                  parameter_overrides={"Stage": "dev", "TableName": "carts"},
                                  import_values="network-VpcId=vpc-1")
    assert emu.invoke("orders-dev")["DEBUG"] == "1"
    config = emu.lambda_client.get_function(FunctionName="orders-dev")
    assert (config["Configuration"]["MemorySize"], config["Configuration"]["Timeout"]) == (256, 5)
    assert "Concurrency" not in config  # AWS::NoValue: no reservation in dev
    with pytest.raises(emu.lambda_client.exceptions.ResourceNotFoundException):
        emu.lambda_client.get_function(FunctionName="nightly-dev")  # left out by its Condition


def test_an_environment_that_cannot_start_says_why_in_the_functions_log(lambda_emulator_factory: Any,
                                                                       tmp_path: Path) -> None:
    """Before, an environment whose set-up failed (here: its code folder is gone) exited with
    status 70 and nothing in the log."""
    code = _write(tmp_path / "code", {"app.py": "def handler(event, context):\n    return 1\n"})
    function = {"Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": str(code), "Handler": "app.handler", "Runtime": "python3.11"}}
    emu = lambda_emulator_factory({"Gone": function}, backend="none", watch_code=False)
    seen: list[str] = []
    emu.server.logs.listeners.append(lambda name, text: seen.append(text) if name == "Gone" else None)
    shutil.rmtree(code)
    response = emu.lambda_client.invoke(FunctionName="Gone", Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ExitError"
    assert wait_until(lambda: "the environment could not start: FileNotFoundError" in "".join(seen)), seen


PATTERN_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: >
  Tenant-aware thumbnails: a packaged function with a shared layer, a bucket that may invoke
  it, JSON logs to a group of its own, and a per-tenant function.

Parameters:
  Environment:
    Type: String
    AllowedValues: [staging, production]
  LogRetentionDays:
    Type: Number
    MinValue: 1

Conditions:
  IsProduction: !Equals [!Ref Environment, production]

Globals:
  Function:
    Runtime: python3.11
    Timeout: 15
    Layers:
      - !Ref CommonLayer

Resources:
  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: !Sub "common-${Environment}"
      ContentUri: dist/common-layer.zip
      CompatibleRuntimes: [python3.11]
    Metadata:
      BuildMethod: python3.11

  UploadsBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "uploads-${Environment}"

  ThumbnailLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/apps/thumbnails-${Environment}"
      RetentionInDays: !Ref LogRetentionDays

  ThumbnailFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "thumbnails-${Environment}"
      CodeUri: dist/thumbnails.zip
      Handler: thumbnails.handler
      MemorySize: !If [IsProduction, 1024, 512]
      ReservedConcurrentExecutions: !If [IsProduction, 50, !Ref AWS::NoValue]
      LoggingConfig:
        LogFormat: JSON
        LogGroup: !Ref ThumbnailLogs
        ApplicationLogLevel: INFO
      Environment:
        Variables:
          BUCKET: !Ref UploadsBucket

  ThumbnailInvokePermission:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt ThumbnailFunction.Arn
      Action: lambda:InvokeFunction
      Principal: s3.amazonaws.com
      SourceAccount: !Ref AWS::AccountId
      SourceArn: !GetAtt UploadsBucket.Arn

  TenantFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "tenant-quota-${Environment}"
      CodeUri: dist/thumbnails.zip
      Handler: thumbnails.tenant_handler
      TenancyConfig:
        TenantIsolationMode: PER_TENANT

Outputs:
  ThumbnailFunctionArn:
    Value: !GetAtt ThumbnailFunction.Arn
"""

PATTERN_HANDLER = """\
import logging
import os

import common_helpers

logger = logging.getLogger()


def handler(event, context):
    logger.info("thumbnail requested", extra={"key": event["key"]})
    return {"thumbnail": common_helpers.thumbnail_name(event["key"]), "bucket": os.environ["BUCKET"]}


def tenant_handler(event, context):
    return {"tenant": context.tenant_id, "helper": common_helpers.__name__,
            "max_concurrency": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")}
"""


def test_a_pattern_shaped_app_runs_unchanged_under_emulator_up(tmp_path: Path) -> None:
    """Parameters without defaults (from --parameter-overrides), a condition, a zipped
    function and a zipped layer from Globals, an S3 bucket with its AWS::Lambda::Permission,
    LoggingConfig to a log group of the template, TenancyConfig: the whole template loads and
    runs as it is, started as a user starts it."""
    _write(tmp_path, {
        "template.yaml": PATTERN_TEMPLATE,
        "package/thumbnails.py": PATTERN_HANDLER,
        "layer/python/common_helpers.py": "def thumbnail_name(key):\n    return 'thumbs/' + key.rsplit('.', 1)[0] + '.png'\n",
    })
    _zip_folder(tmp_path / "package", tmp_path / "dist/thumbnails.zip")
    _zip_folder(tmp_path / "layer", tmp_path / "dist/common-layer.zip")
    with emulator_process(tmp_path, Path("template.yaml"), "--parameter-overrides",
                          "Environment=staging", "LogRetentionDays=7") as emulator:
        import boto3
        clients = {service: boto3.client(service, endpoint_url=emulator.url, region_name="us-east-1",
                                         aws_access_key_id="x", aws_secret_access_key="x")
                   for service in ("lambda", "logs")}
        # The template's log group is there from the start, with its retention (it used to be
        # created only by the first line shipped, without retention).
        groups = clients["logs"].describe_log_groups(logGroupNamePrefix="/apps/")["logGroups"]
        assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [("/apps/thumbnails-staging", 7)]
        lam = clients["lambda"]
        answer = lam.invoke(FunctionName="thumbnails-staging", Payload=json.dumps({"key": "cat.jpg"}).encode())
        assert json.loads(answer["Payload"].read()) == {"thumbnail": "thumbs/cat.png", "bucket": "uploads-staging"}
        config = lam.get_function(FunctionName="thumbnails-staging")
        assert config["Configuration"]["MemorySize"] == 512 and "Concurrency" not in config  # not production
        assert config["Configuration"]["LoggingConfig"]["LogGroup"] == "/apps/thumbnails-staging"
        statement, = json.loads(lam.get_policy(FunctionName="thumbnails-staging")["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Condition"]["ArnLike"] == {"AWS:SourceArn": "arn:aws:s3:::uploads-staging"}
        tenants = [json.loads(lam.invoke(FunctionName="tenant-quota-staging", Payload=b"{}",
                                         TenantId=tenant)["Payload"].read()) for tenant in ("acme", "globex")]
        # AWS_LAMBDA_MAX_CONCURRENCY is Lambda Managed Instances' only, never set here
        # (https://docs.aws.amazon.com/lambda/latest/dg/lambda-managed-instances-python-runtime.html).
        assert tenants == [{"tenant": tenant, "helper": "common_helpers", "max_concurrency": None}
                           for tenant in ("acme", "globex")]

        def thumbnail_log() -> list[dict[str, Any]]:
            try:
                found = clients["logs"].filter_log_events(logGroupName="/apps/thumbnails-staging")["events"]
            except clients["logs"].exceptions.ResourceNotFoundException:
                return []
            return [json.loads(event["message"]) for event in found if "thumbnail requested" in event["message"]]

        logged = wait_until(thumbnail_log)
        assert logged and logged[0]["level"] == "INFO" and logged[0]["key"] == "cat.jpg", logged
        assert "Traceback" not in emulator.log
