"""Template parameters, imports and the values of Ref / Fn::GetAtt: CloudFormation's rules
(emulator.template.parameters, emulator.template.resource_values) and the `Key=Value` pairs
`--parameter-overrides` takes (emulator.config.key_values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.config import Config, from_sources, key_values
from emulator.template.loader import TemplateError, parse_template
from emulator.template.specs import AppSpec

SAM = "AWS::Serverless::Function"


@pytest.fixture(autouse=True)
def _code(src: Path) -> Path:
    """Every test here has the code folder its templates name."""
    return src


def function(**props: Any) -> dict[str, Any]:
    return {"Type": SAM, "Properties": {"CodeUri": "src", "Handler": "app.handler", "Runtime": "python3.12", **props}}


def load(tmp_path: Path, resources: dict[str, Any], *, warnings: list[str] | None = None,
         parameters: dict[str, str] | None = None, imports: dict[str, str] | None = None, **sections: Any) -> AppSpec:
    doc = {"Transform": "AWS::Serverless-2016-10-31", "Resources": resources, **sections}
    sink = warnings if warnings is not None else []
    app = parse_template(doc, base_dir=tmp_path, source="app.yaml", warn=sink.append,
                         parameters=parameters, imports=imports)
    if warnings is None:
        assert sink == []
    return app


def env(tmp_path: Path, value: Any, others: dict[str, Any] | None = None, **kwargs: Any) -> str:
    app = load(tmp_path, {"Fn": function(Environment={"Variables": {"VAL": value}}), **(others or {})}, **kwargs)
    return app.functions["Fn"].environment["VAL"]


def failure(tmp_path: Path, resources: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        load(tmp_path, resources, warnings=[], **kwargs)
    return str(caught.value)


# --- parameters ------------------------------------------------------------------------------


def test_every_parameter_without_default_or_value_is_named_in_one_message(tmp_path: Path) -> None:
    message = failure(tmp_path, {"Fn": function()}, Parameters={
        "Stage": {"Type": "String"}, "Size": {"Type": "Number", "Default": 1}, "Owner": {"Type": "String"}})
    assert message.startswith("app.yaml: parameters 'Stage', 'Owner' have no Default and no value was given")
    assert "--parameter-overrides Stage=... Owner=..." in message
    assert "EMULATOR_PARAMETER_OVERRIDES" in message and "parameter_overrides=" in message


def test_an_unused_parameter_without_value_fails_too_as_in_cloudformation(tmp_path: Path) -> None:
    assert "'Unused' has no Default" in failure(tmp_path, {"Fn": function()}, Parameters={"Unused": {"Type": "String"}})


def test_given_values_are_used_and_a_parameter_without_default_then_loads(tmp_path: Path) -> None:
    assert env(tmp_path, {"Ref": "Stage"}, Parameters={"Stage": {"Type": "String"}}, parameters={"Stage": "prod"}) == "prod"


@pytest.mark.parametrize(("declaration", "value", "words"), [
    ({"Type": "String", "AllowedValues": ["dev", "prod"]}, "qa", ["'qa'", "AllowedValues ['dev', 'prod']"]),
    ({"Type": "String", "AllowedPattern": "[a-z]+"}, "Dev1", ["AllowedPattern '[a-z]+'"]),
    ({"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "lower case only"}, "X",
     ["(lower case only)"]),
    ({"Type": "String", "MinLength": 3}, "ab", ["MinLength 3"]),
    ({"Type": "String", "MaxLength": "2"}, "abc", ["MaxLength 2"]),
    ({"Type": "Number"}, "ten", ["not a number"]),
    ({"Type": "Number", "MinValue": 128}, "64", ["MinValue 128"]),
    ({"Type": "Number", "MaxValue": 10}, "10.5", ["MaxValue 10"]),
    ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "a, c", ["'c'", "AllowedValues"]),
    ({"Type": "List<Number>"}, "1,x", ["'x' is not a number"]),
    ({"Type": "Text"}, "x", ["Type 'Text'", "not a CloudFormation parameter type"]),
    ({"Type": "String", "AllowedPattern": "("}, "x", ["not a regular expression"]),
])
def test_constraints_are_checked_as_cloudformation_does(tmp_path: Path, declaration: dict[str, Any],
                                                        value: str, words: list[str]) -> None:
    message = failure(tmp_path, {"Fn": function()}, Parameters={"P": declaration}, parameters={"P": value})
    assert message.startswith("app.yaml: parameter 'P'")
    for word in words:
        assert word in message


@pytest.mark.parametrize(("declaration", "value", "expected"), [
    ({"Type": "Number", "MinValue": 1, "MaxValue": 10}, "10", "10"),
    ({"Type": "String", "AllowedPattern": "[a-z]+", "MinLength": 2, "MaxLength": 4}, "abcd", "abcd"),
    ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, " b ,a", "b+a"),
    ({"Type": "List<Number>", "MaxValue": 5}, "1,5", "1+5"),
    ({"Type": "AWS::EC2::VPC::Id"}, "vpc-123", "vpc-123"),
])
def test_values_within_their_constraints_load(tmp_path: Path, declaration: dict[str, Any], value: str,
                                              expected: str) -> None:
    ref: Any = {"Fn::Join": ["+", {"Ref": "P"}]} if "List" in declaration["Type"] else {"Ref": "P"}
    assert env(tmp_path, ref, Parameters={"P": declaration}, parameters={"P": value}) == expected


def test_an_ssm_parameter_type_is_used_as_given_with_one_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    value = env(tmp_path, {"Ref": "Ami"}, warnings=warnings,
                Parameters={"Ami": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/base/ami"}})
    assert value == "/base/ami"
    assert len(warnings) == 1 and "does not look it up in SSM" in warnings[0] and "--parameter-overrides Ami=" in warnings[0]


# --- pseudo parameters, imports, Ref and GetAtt ------------------------------------------------


def test_pseudo_parameters(tmp_path: Path) -> None:
    value = {"Fn::Join": ["|", [{"Ref": name} for name in (
        "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix", "AWS::StackId")]]}
    assert env(tmp_path, value).split("|") == [
        "us-east-1", "123456789012", "local", "aws", "amazonaws.com",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/local/local"]


def test_import_value_reads_the_given_exports_even_through_sub(tmp_path: Path) -> None:
    value = {"Fn::ImportValue": {"Fn::Sub": "${Net}-VpcId"}}
    assert env(tmp_path, value, Parameters={"Net": {"Type": "String", "Default": "core"}},
               imports={"core-VpcId": "vpc-42"}) == "vpc-42"


def test_import_value_without_a_given_value_says_how_to_give_it(tmp_path: Path) -> None:
    message = failure(tmp_path, {"Fn": function(Environment={"Variables": {"VAL": {"Fn::ImportValue": "shared-Bus"}}})})
    assert "property 'Environment.Variables.VAL'" in message
    assert "--import-values shared-Bus=..." in message and "EMULATOR_IMPORT_VALUES" in message


@pytest.mark.parametrize(("resource", "value", "expected"), [
    ({"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "site"}}, {"Fn::GetAtt": ["R", "DomainName"]},
     "site.s3.amazonaws.com"),
    ({"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "site"}}, {"Fn::GetAtt": ["R", "RegionalDomainName"]},
     "site.s3.us-east-1.amazonaws.com"),
    ({"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "site"}}, {"Fn::GetAtt": ["R", "WebsiteURL"]},
     "http://site.s3-website-us-east-1.amazonaws.com"),
    ({"Type": "AWS::StepFunctions::StateMachine", "Properties": {"StateMachineName": "flow"}}, {"Ref": "R"},
     "arn:aws:states:us-east-1:123456789012:stateMachine:flow"),
    ({"Type": "AWS::Serverless::StateMachine"}, {"Fn::GetAtt": ["R", "Name"]}, "R"),
    ({"Type": "AWS::Events::EventBus", "Properties": {"Name": "orders"}}, {"Fn::GetAtt": ["R", "Arn"]},
     "arn:aws:events:us-east-1:123456789012:event-bus/orders"),
    ({"Type": "AWS::Events::EventBus", "Properties": {"Name": "orders"}}, {"Ref": "R"}, "orders"),
    ({"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/app"}}, {"Fn::GetAtt": ["R", "Arn"]},
     "arn:aws:logs:us-east-1:123456789012:log-group:/app:*"),
    ({"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/cfg/x", "Type": "String", "Value": "v"}},
     {"Fn::Join": [",", [{"Ref": "R"}, {"Fn::GetAtt": ["R", "Value"]}]]}, "/cfg/x,v"),
    ({"Type": "AWS::Serverless::LayerVersion", "Properties": {"LayerName": "deps", "ContentUri": "src"}},
     {"Ref": "R"}, "arn:aws:lambda:us-east-1:123456789012:layer:deps:1"),
    ({"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": "src"}},
     {"Fn::GetAtt": ["R", "LayerVersionArn"]}, "arn:aws:lambda:us-east-1:123456789012:layer:R:1"),
    ({"Type": "AWS::IAM::Role", "Properties": {"RoleName": "runner"}}, {"Fn::GetAtt": ["R", "Arn"]},
     "arn:aws:iam::123456789012:role/runner"),
    ({"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}, "Name": "live",
                                                   "FunctionVersion": "1"}},
     {"Ref": "R"}, "arn:aws:lambda:us-east-1:123456789012:function:Fn:live"),
])
def test_ref_and_getatt_values_of_common_types(tmp_path: Path, resource: dict[str, Any], value: Any,
                                               expected: str) -> None:
    assert env(tmp_path, value, {"R": resource}, warnings=[]) == expected


def test_getatt_of_an_unsupported_attribute_names_it_and_the_supported_ones(tmp_path: Path) -> None:
    message = failure(tmp_path, {
        "Fn": function(Environment={"Variables": {"VAL": {"Fn::GetAtt": ["Bus", "Policy"]}}}),
        "Bus": {"Type": "AWS::Events::EventBus"}})
    assert "Fn::GetAtt Bus.Policy: attribute 'Policy' of AWS::Events::EventBus is not supported" in message
    assert "(supported: Arn, Name)" in message


def test_ref_of_a_type_the_emulator_does_not_know_warns_once_and_gives_the_logical_id(tmp_path: Path) -> None:
    warnings: list[str] = []
    app = load(tmp_path, {
        "Fn": function(Environment={"Variables": {"AA": {"Ref": "One"}, "BB": {"Ref": "Two"}}}),
        "One": {"Type": "AWS::Pipes::Pipe"}, "Two": {"Type": "AWS::Pipes::Pipe"}}, warnings=warnings)
    assert app.functions["Fn"].environment == {"AA": "One", "BB": "Two"}
    about_ref = [w for w in warnings if "Ref of a AWS::Pipes::Pipe" in w]
    assert len(about_ref) == 1 and "gives its logical id" in about_ref[0]


def test_the_role_sam_generates_for_a_function_can_be_referenced(tmp_path: Path) -> None:
    value = {"Fn::Join": [",", [{"Ref": "FnRole"}, {"Fn::GetAtt": ["FnRole", "Arn"]}]]}
    assert env(tmp_path, value) == "FnRole,arn:aws:iam::123456789012:role/FnRole"


def test_alias_and_version_of_an_auto_published_function(tmp_path: Path) -> None:
    resources = {"Api": function(AutoPublishAlias="live"),
                 "Fn": function(Environment={"Variables": {"AL": {"Ref": "Api.Alias"}, "VE": {"Ref": "Api.Version"}}})}
    assert load(tmp_path, resources).functions["Fn"].environment == {
        "AL": "arn:aws:lambda:us-east-1:123456789012:function:Api:live",
        "VE": "arn:aws:lambda:us-east-1:123456789012:function:Api:1"}
    message = failure(tmp_path, {"Api": function(),
                                 "Fn": function(Environment={"Variables": {"AL": {"Ref": "Api.Alias"}}})})
    assert "has no AutoPublishAlias" in message


# --- Key=Value pairs as sam takes them --------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("Stage=dev Size=2", {"Stage": "dev", "Size": "2"}),
    ('Msg="hello world" Empty=', {"Msg": "hello world", "Empty": ""}),
    ("ParameterKey=Stage,ParameterValue=prod ParameterKey=Url, ParameterValue=a=b", {"Stage": "prod", "Url": "a=b"}),
    (['Msg="hello world"', "ParameterKey=K,", "ParameterValue=v"], {"Msg": "hello world", "K": "v"}),
    (["Stage=dev Size=2", "Owner=me"], {"Stage": "dev", "Size": "2", "Owner": "me"}),  # sam's one-argument form
    ({"Stage": 3}, {"Stage": "3"}),
])
def test_key_values(raw: Any, expected: dict[str, str]) -> None:
    assert key_values(raw) == expected


@pytest.mark.parametrize("raw", ["Stage", "=x", 'Unclosed="x', ["Msg=hello world"]])
def test_key_values_refuses_what_is_not_a_pair(raw: Any) -> None:
    with pytest.raises(ValueError):
        key_values(raw)


def test_overrides_come_from_flags_the_environment_and_fixture_settings() -> None:
    config = from_sources({"parameter_overrides": ["Stage=prod", 'Msg="a b"']},
                          {"EMULATOR_PARAMETER_OVERRIDES": "Stage=dev", "EMULATOR_IMPORT_VALUES": "net-Vpc=vpc-1"})
    assert config.parameter_overrides == {"Stage": "prod", "Msg": "a b"}  # the flag wins
    assert config.import_values == {"net-Vpc": "vpc-1"}
    assert Config().replace(parameter_overrides="A=1 B=2").parameter_overrides == {"A": "1", "B": "2"}
    with pytest.raises(ValueError, match="EMULATOR_PARAMETER_OVERRIDES"):
        from_sources({}, {"EMULATOR_PARAMETER_OVERRIDES": "nonsense"})
