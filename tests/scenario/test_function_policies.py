"""AddPermission / RemovePermission / GetPolicy and TagResource / UntagResource / ListTags
through boto3, and the template's AWS::Lambda::Permission and Tags
(https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html). Stored and
returned; not enforced (README, "Lambda API").
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
SOURCE = "def handler(event, context):\n    return event\n"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    template = {
        "Resources": {
            "Sam": inline_function(SOURCE, FunctionName="sam-fn", Tags={"team": "payments"}, AutoPublishAlias="live"),
            "Plain": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": "plain-fn", "Handler": "index.handler", "Runtime": "python3.11",
                "Code": {"ZipFile": SOURCE}, "Tags": [{"Key": "stage", "Value": "dev"}]}},
            "FromBucket": {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": {"Fn::GetAtt": ["Sam", "Arn"]}, "Action": "lambda:InvokeFunction",
                "Principal": "s3.amazonaws.com", "SourceAccount": {"Ref": "AWS::AccountId"},
                "SourceArn": "arn:aws:s3:::uploads"}},
        }
    }
    with running_emulator(template, backend="none") as handle:
        yield handle


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = excinfo.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def statements(lam: Any, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    return json.loads(lam.get_policy(FunctionName=name, **kwargs)["Policy"])["Statement"]


def test_the_templates_permission_is_the_functions_policy(lam: Any) -> None:
    policy = json.loads(lam.get_policy(FunctionName="sam-fn")["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert policy["Statement"] == [{
        "Sid": "FromBucket", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": ARN + "sam-fn",
        "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"}},
    }]


def test_add_get_remove_permission_round_trip(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as excinfo:
        lam.get_policy(FunctionName="plain-fn")
    assert error_of(excinfo)[1] == "The resource you requested does not exist."
    answer = lam.add_permission(FunctionName="plain-fn", StatementId="account", Action="lambda:GetFunction",
                                Principal="210987654321")
    assert json.loads(answer["Statement"])["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    revision = lam.get_policy(FunctionName="plain-fn")["RevisionId"]
    lam.add_permission(FunctionName="plain-fn", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", RevisionId=revision)
    assert [s["Sid"] for s in statements(lam, "plain-fn")] == ["account", "events"]
    with pytest.raises(ClientError) as excinfo:
        lam.add_permission(FunctionName="plain-fn", StatementId="events", Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com")
    assert error_of(excinfo) == ("ResourceConflictException", "The statement id (sid) provided already exists. Please "
                                 "choose a new statement id, or remove the existing statement.", 409)
    with pytest.raises(ClientError) as excinfo:
        lam.add_permission(FunctionName="plain-fn", StatementId="late", Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com", RevisionId=revision)
    assert error_of(excinfo)[0::2] == ("PreconditionFailedException", 412)
    lam.remove_permission(FunctionName="plain-fn", StatementId="account")
    assert [s["Sid"] for s in statements(lam, "plain-fn")] == ["events"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as excinfo:
        lam.remove_permission(FunctionName="plain-fn", StatementId="account")
    assert error_of(excinfo)[1] == "Statement account is not found in resource policy."
    lam.remove_permission(FunctionName="plain-fn", StatementId="events")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="plain-fn")


def test_a_qualifier_has_its_own_policy(lam: Any) -> None:
    lam.add_permission(FunctionName="sam-fn", Qualifier="live", StatementId="alias-only", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com")
    assert [s["Resource"] for s in statements(lam, "sam-fn", Qualifier="live")] == [ARN + "sam-fn:live"]
    assert [s["Sid"] for s in statements(lam, "sam-fn")] == ["FromBucket"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.add_permission(FunctionName="sam-fn", Qualifier="nope", StatementId="x", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com")


@pytest.mark.parametrize(("fields", "where"), [
    ({"Action": "invoke everything"}, "'action'"),
    ({"StatementId": "has spaces"}, "'statementId'"),
    ({"SourceAccount": "12"}, "'sourceAccount'"),
    ({"Principal": None}, "Value null at 'principal'"),
])
def test_bad_permissions_answer_validation_errors(unchecked: Any, fields: dict[str, Any], where: str) -> None:
    request: dict[str, Any] = {"FunctionName": "plain-fn", "StatementId": "ok", "Action": "lambda:InvokeFunction",
                               "Principal": "s3.amazonaws.com", **fields}
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ClientError) as excinfo:
        unchecked.add_permission(**request)
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400) and where in message


def test_template_tags_and_tag_round_trip(lam: Any) -> None:
    assert lam.list_tags(Resource=ARN + "sam-fn")["Tags"] == {"team": "payments", "lambda:createdBy": "SAM"}
    assert lam.list_tags(Resource=ARN + "plain-fn")["Tags"] == {"stage": "dev"}
    lam.tag_resource(Resource=ARN + "plain-fn", Tags={"owner": "ops", "stage": "prod"})
    assert lam.list_tags(Resource=ARN + "plain-fn")["Tags"] == {"stage": "prod", "owner": "ops"}
    assert lam.get_function(FunctionName="plain-fn")["Tags"] == {"stage": "prod", "owner": "ops"}
    lam.untag_resource(Resource=ARN + "plain-fn", TagKeys=["owner", "absent"])
    assert lam.list_tags(Resource=ARN + "plain-fn")["Tags"] == {"stage": "prod"}


def test_tags_answer_lambdas_errors(lam: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        lam.tag_resource(Resource=ARN + "sam-fn:live", Tags={"a": "b"})
    assert error_of(excinfo) == ("InvalidParameterValueException", "Tags on function aliases and versions are not "
                                 "supported. Please specify a function ARN.", 400)
    with pytest.raises(ClientError) as excinfo:
        lam.tag_resource(Resource=ARN + "sam-fn", Tags={"aws:cloudformation:stack-name": "x"})
    assert error_of(excinfo)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as excinfo:
        lam.tag_resource(Resource=ARN + "sam-fn", Tags={f"k{i}": "v" for i in range(50)})
    assert error_of(excinfo)[0] == "InvalidParameterValueException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_tags(Resource=ARN + "missing")
    with pytest.raises(ClientError) as excinfo:
        lam.list_tags(Resource="not-an-arn")
    assert error_of(excinfo)[0::2] == ("ValidationException", 400)
