"""CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction and
GetFunction's Code.Location, driven through boto3 as a deploy tool would
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html and the operations
next to it; states: https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from core_testkit import Gate, wait_until
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ROLE = "arn:aws:iam::123456789012:role/lambda-role"
ECHO_ENV = """
import os
def handler(event, context):
    gate = event.get("gate")
    if gate:
        open(os.path.join(gate, "in-" + context.aws_request_id), "w").close()
        while not os.path.exists(os.path.join(gate, "open")):
            pass
    return {"version": VERSION, "colour": os.environ.get("COLOUR"), "memory": context.memory_limit_in_mb}
"""


def package(files: dict[str, str], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)  # a symbolic link
            archive.writestr(info, target)
    return buffer.getvalue()


def app(version: int) -> bytes:
    return package({"app.py": f"VERSION = {version}\n" + ECHO_ENV})


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Echo": inline_function("def handler(event, context):\n    return event\n", FunctionName="echo"),
        "EchoPermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": "Echo"}, "Action": "lambda:InvokeFunction", "Principal": "sns.amazonaws.com",
            "SourceArn": "arn:aws:sns:us-east-1:123456789012:topic"}},
    }
    with running_emulator(template, backend="none") as handle:
        yield handle


def create(lam: Any, name: str, code: bytes | None = None, **extra: Any) -> dict[str, Any]:
    answer = lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                 Code={"ZipFile": code if code is not None else app(1)}, **extra)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return answer


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = excinfo.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def invoke(emu: EmulatorHandle, name: str, payload: Any = None, **kwargs: Any) -> Any:
    return emu.invoke(name, payload or {}, **kwargs)


# -- CreateFunction -----------------------------------------------------------------------
def test_created_function_is_pending_then_active_and_runs_its_package(emu: EmulatorHandle, lam: Any) -> None:
    code = app(1)
    answer = lam.create_function(FunctionName="made", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                 Code={"ZipFile": code}, MemorySize=256, Timeout=7, Description="from a zip",
                                 Environment={"Variables": {"COLOUR": "red"}})
    # CodeSha256 is the base64 SHA-256 of the package, CodeSize its length (API_FunctionConfiguration).
    assert answer["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert answer["CodeSize"] == len(code)
    assert answer["State"] == "Pending" and answer["LastUpdateStatus"] == "Successful"
    assert (answer["MemorySize"], answer["Timeout"], answer["Role"], answer["Runtime"]) == (256, 7, ROLE, "python3.12")
    lam.get_waiter("function_active_v2").wait(FunctionName="made", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert lam.get_function_configuration(FunctionName="made")["State"] == "Active"
    assert invoke(emu, "made") == {"version": 1, "colour": "red", "memory": "256"}
    lam.delete_function(FunctionName="made")


def test_create_with_publish_answers_version_one(emu: EmulatorHandle, lam: Any) -> None:
    answer = lam.create_function(FunctionName="published", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                 Code={"ZipFile": app(1)}, Publish=True)
    assert answer["Version"] == "1" and answer["FunctionArn"].endswith(":published:1")
    assert invoke(emu, "published", Qualifier="1")["version"] == 1
    lam.delete_function(FunctionName="published")


def test_an_existing_name_is_a_conflict(lam: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        create(lam, "echo")
    assert error_of(excinfo) == ("ResourceConflictException", "Function already exist: echo", 409)


@pytest.mark.parametrize(("request_fields", "expected"), [
    ({"Role": "not-a-role"}, ("ValidationException", "Value 'not-a-role' at 'role' failed to satisfy constraint")),
    ({"Timeout": 901}, ("ValidationException", "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900")),
    ({"MemorySize": 64}, ("ValidationException", "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128")),
    ({"MemorySize": 10241}, ("InvalidParameterValueException", "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240")),
    ({"Runtime": "python3.7"}, ("InvalidParameterValueException", "The runtime parameter of python3.7 is no longer supported")),
    ({"Runtime": "nodejs20.x"}, ("InvalidParameterValueException", "Runtime nodejs20.x is not emulated")),
    ({"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}}, ("InvalidParameterValueException", "Reserved keys used in this request: AWS_REGION")),
    ({"Environment": {"Variables": {"BIG": "x" * 5000}}}, ("InvalidParameterValueException", "exceeded the 4KB limit")),
    ({"Layers": [f"arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1" for i in range(6)]}, ("InvalidParameterValueException", "Cannot reference more than 5 layers.")),
    ({"Code": {"ZipFile": b"this is not a zip"}}, ("InvalidParameterValueException", "Could not unzip uploaded file. Please check your file, then try to upload again.")),
    ({"Code": {"S3Bucket": "bucket", "S3Key": "key.zip"}}, ("InvalidParameterValueException", "needs the AWS backend")),
    ({"Tags": {"aws:owner": "me"}}, ("InvalidParameterValueException", "reserved for AWS use")),
    ({"LoggingConfig": {"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}}, ("InvalidParameterValueException", "LogFormat JSON")),
])
def test_create_answers_bad_input_with_lambdas_errors(lam: Any, unchecked: Any, request_fields: dict[str, Any], expected: tuple[str, str]) -> None:
    fields: dict[str, Any] = {"FunctionName": "refused", "Runtime": "python3.11", "Role": ROLE, "Handler": "app.handler",
                              "Code": {"ZipFile": app(1)}}
    fields.update(request_fields)
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_function(**fields)
    code, message, status = error_of(excinfo)
    assert (code, status) == (expected[0], 400)
    assert expected[1] in message
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="refused")


def test_a_package_entry_outside_its_folder_is_refused_and_nothing_is_written(lam: Any, tmp_path: Path) -> None:
    target = tmp_path / "escaped.py"
    evil = package({"app.py": "def handler(e, c):\n    return 1\n", f"../../../../../../..{target}": "boom"})
    with pytest.raises(ClientError) as excinfo:
        create(lam, "evil", evil)
    code, message, _ = error_of(excinfo)
    assert code == "InvalidParameterValueException" and "points outside the package" in message
    assert not target.exists()


def test_a_link_out_of_the_package_is_left_out_and_one_inside_is_kept(emu: EmulatorHandle, lam: Any) -> None:
    code = package({"app.py": "import os\ndef handler(e, c):\n    return [open('inner').read()] + sorted(\n"
                              "        n for n in os.listdir('.') if n != '__pycache__')\n",
                    "data/real.txt": "inside"}, links={"passwd": "/etc/passwd", "up": "../../..", "inner": "data/real.txt"})
    create(lam, "linked", code)
    assert invoke(emu, "linked") == ["inside", "app.py", "data", "inner"]
    lam.delete_function(FunctionName="linked")


def test_a_package_that_unzips_beyond_250_mb_is_refused(lam: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(251):
                member.write(chunk)
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    with pytest.raises(ClientError) as excinfo:
        create(lam, "bomb", buffer.getvalue())
    assert error_of(excinfo) == ("InvalidParameterValueException",
                                 "Unzipped size must be smaller than 262144000 bytes", 400)


def test_an_upload_over_lambdas_request_limit_is_413(emu: EmulatorHandle) -> None:
    body = json.dumps({"FunctionName": "huge", "Role": ROLE, "Handler": "app.handler", "Runtime": "python3.11",
                       "Code": {"ZipFile": "A" * 69_905_100}}).encode()
    request = urllib.request.Request(emu.url + "/2015-03-31/functions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=60)
    assert excinfo.value.code == 413
    assert excinfo.value.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert json.loads(excinfo.value.read())["message"] == "Request must be smaller than 69905067 bytes for the CreateFunction operation"


# -- UpdateFunctionConfiguration ------------------------------------------------------------
def test_update_configuration_reaches_new_environments_while_a_busy_one_finishes_first(
        emu: EmulatorHandle, lam: Any, tmp_path: Path) -> None:
    create(lam, "changing", Environment={"Variables": {"COLOUR": "red"}})
    gate = Gate(tmp_path / "gate")
    held: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: held.update(invoke(emu, "changing", {"gate": gate.path})))
    thread.start()
    assert wait_until(lambda: gate.arrived() == 1)
    answer = lam.update_function_configuration(FunctionName="changing", MemorySize=512,
                                               Environment={"Variables": {"COLOUR": "blue"}})
    assert answer["LastUpdateStatus"] == "InProgress"
    assert answer["MemorySize"] == 512 and answer["Environment"]["Variables"] == {"COLOUR": "blue"}
    lam.get_waiter("function_updated_v2").wait(FunctionName="changing", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert lam.get_function(FunctionName="changing")["Configuration"]["LastUpdateStatus"] == "Successful"
    # The busy environment is still running the old configuration; a new one runs the new.
    assert invoke(emu, "changing") == {"version": 1, "colour": "blue", "memory": "512"}
    gate.open()
    thread.join(30)
    assert held == {"version": 1, "colour": "red", "memory": "128"}
    assert invoke(emu, "changing")["colour"] == "blue"
    lam.delete_function(FunctionName="changing")


def test_update_configuration_checks_its_input_and_the_revision(lam: Any, unchecked: Any) -> None:
    create(lam, "strict")
    with pytest.raises(ClientError) as excinfo:
        unchecked.update_function_configuration(FunctionName="strict", Timeout=0)
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        lam.update_function_configuration(FunctionName="strict", Description="x", RevisionId="stale")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("PreconditionFailedException", 412)
    revision = lam.get_function_configuration(FunctionName="strict")["RevisionId"]
    answer = lam.update_function_configuration(FunctionName="strict", Handler="app.other", RevisionId=revision)
    assert answer["Handler"] == "app.other" and answer["RevisionId"] != revision
    with pytest.raises(ClientError) as excinfo:
        lam.update_function_configuration(FunctionName="missing-fn", Timeout=5)
    assert error_of(excinfo)[0] == "ResourceNotFoundException"
    lam.delete_function(FunctionName="strict")


def test_logging_config_is_kept_with_lambdas_defaults(lam: Any) -> None:
    create(lam, "logged", LoggingConfig={"LogFormat": "JSON", "LogGroup": "/custom/group"})
    config = lam.get_function_configuration(FunctionName="logged")["LoggingConfig"]
    assert config == {"LogFormat": "JSON", "LogGroup": "/custom/group", "ApplicationLogLevel": "INFO",
                      "SystemLogLevel": "INFO"}
    lam.delete_function(FunctionName="logged")


# -- UpdateFunctionCode -----------------------------------------------------------------------
def test_update_code_switches_new_environments_and_publish_makes_a_version(emu: EmulatorHandle, lam: Any) -> None:
    create(lam, "coded")
    assert invoke(emu, "coded")["version"] == 1
    answer = lam.update_function_code(FunctionName="coded", ZipFile=app(2))
    assert answer["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName="coded", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(emu, "coded")["version"] == 2
    published = lam.update_function_code(FunctionName="coded", ZipFile=app(3), Publish=True)
    assert published["Version"] == "1"
    assert invoke(emu, "coded", Qualifier="1")["version"] == 3
    fourth = app(4)
    dry = lam.update_function_code(FunctionName="coded", ZipFile=fourth, DryRun=True)
    assert dry["CodeSha256"] == base64.b64encode(hashlib.sha256(fourth).digest()).decode()
    assert invoke(emu, "coded")["version"] == 3  # a dry run changes nothing
    with pytest.raises(ClientError) as excinfo:
        lam.update_function_code(FunctionName="coded", ZipFile=b"garbage")
    assert error_of(excinfo)[0] == "InvalidParameterValueException"
    lam.delete_function(FunctionName="coded")


def test_code_location_downloads_the_functions_package(emu: EmulatorHandle, lam: Any) -> None:
    code = app(5)
    create(lam, "downloadable", code)
    location = lam.get_function(FunctionName="downloadable")["Code"]["Location"]
    assert location.startswith(emu.url)
    with urllib.request.urlopen(location, timeout=10) as response:
        assert response.read() == code
    # A template function's folder is zipped on demand.
    with urllib.request.urlopen(lam.get_function(FunctionName="echo")["Code"]["Location"], timeout=10) as response:
        names = zipfile.ZipFile(io.BytesIO(response.read())).namelist()
    assert names == ["index.py"]
    lam.delete_function(FunctionName="downloadable")


# -- DeleteFunction ---------------------------------------------------------------------------
def test_delete_removes_a_function_and_a_version_as_lambda_does(emu: EmulatorHandle, lam: Any) -> None:
    create(lam, "doomed", Publish=True)
    lam.publish_version(FunctionName="doomed")  # nothing changed: still version 1
    lam.update_function_code(FunctionName="doomed", ZipFile=app(2), Publish=True)
    lam.create_alias(FunctionName="doomed", Name="live", FunctionVersion="2")
    with pytest.raises(ClientError) as excinfo:
        lam.delete_function(FunctionName="doomed", Qualifier="$LATEST")
    assert error_of(excinfo) == ("InvalidParameterValueException",
                                 "$LATEST version cannot be deleted without deleting the function.", 400)
    with pytest.raises(ClientError) as excinfo:
        lam.delete_function(FunctionName="doomed", Qualifier="2")
    assert error_of(excinfo)[0] == "ResourceConflictException"
    lam.delete_function(FunctionName="doomed", Qualifier="1")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="doomed")["Versions"]]
    assert versions == ["$LATEST", "2"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(emu, "doomed", Qualifier="1")
    response = lam.delete_function(FunctionName="doomed")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(emu, "doomed")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName="doomed")
    # The name is free again; the function_exists waiter sees the new one.
    lam.create_function(FunctionName="doomed", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": app(9)})
    lam.get_waiter("function_exists").wait(FunctionName="doomed", WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    lam.get_waiter("function_active_v2").wait(FunctionName="doomed", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(emu, "doomed")["version"] == 9
    lam.delete_function(FunctionName="doomed")


def test_a_deleted_functions_package_folder_is_removed(emu: EmulatorHandle, lam: Any) -> None:
    create(lam, "tidy")
    invoke(emu, "tidy")
    assert emu.server is not None
    folder = emu.server.registry.functions["tidy"].latest.spec.code_dir.parent
    assert folder.is_dir()
    lam.delete_function(FunctionName="tidy")
    assert wait_until(lambda: not folder.exists())


def test_unknown_routes_and_bad_bodies_never_leak_a_traceback(emu: EmulatorHandle) -> None:
    request = urllib.request.Request(emu.url + "/2015-03-31/functions", data=b"[1, 2]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    assert "Traceback" not in excinfo.value.read().decode()


def test_a_replaced_package_folder_is_removed_once_its_environments_are_gone(emu: EmulatorHandle, lam: Any,
                                                                             tmp_path: Path) -> None:
    create(lam, "replaced")
    assert emu.server is not None
    first = emu.server.registry.functions["replaced"].latest.spec.code_dir.parent
    gate = Gate(tmp_path / "gate")
    held: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: held.update(invoke(emu, "replaced", {"gate": gate.path})))
    thread.start()
    assert wait_until(lambda: gate.arrived() == 1)
    lam.update_function_code(FunctionName="replaced", ZipFile=app(2))
    lam.get_waiter("function_updated_v2").wait(FunctionName="replaced", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(emu, "replaced")["version"] == 2
    assert first.is_dir()  # the busy environment still runs the first package
    gate.open()
    thread.join(30)
    assert held["version"] == 1
    assert wait_until(lambda: not first.exists())
    lam.delete_function(FunctionName="replaced")


def test_code_in_the_backends_s3_is_fetched_as_deploy_tools_upload_it(lambda_emulator_factory: Any) -> None:
    emu = lambda_emulator_factory({"Echo": inline_function("def handler(e, c):\n    return e\n")})
    s3, lam = emu.client("s3"), emu.lambda_client
    s3.create_bucket(Bucket="artifacts")
    code = app(7)
    s3.put_object(Bucket="artifacts", Key="builds/app v1.zip", Body=code)
    answer = lam.create_function(FunctionName="from-s3", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                 Code={"S3Bucket": "artifacts", "S3Key": "builds/app v1.zip"})
    assert answer["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    lam.get_waiter("function_active_v2").wait(FunctionName="from-s3", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert emu.invoke("from-s3", {})["version"] == 7
    s3.put_object(Bucket="artifacts", Key="builds/app v2.zip", Body=app(8))
    lam.update_function_code(FunctionName="from-s3", S3Bucket="artifacts", S3Key="builds/app v2.zip")
    lam.get_waiter("function_updated_v2").wait(FunctionName="from-s3", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert emu.invoke("from-s3", {})["version"] == 8
    with pytest.raises(ClientError) as excinfo:
        lam.update_function_code(FunctionName="from-s3", S3Bucket="artifacts", S3Key="missing.zip")
    code, message, _ = error_of(excinfo)
    assert code == "InvalidParameterValueException"
    assert message.startswith("Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: ")
