"""emulator.template.loader / emulator.template.intrinsics: SAM and CloudFormation templates into an AppSpec.

Templates are written to tmp_path (YAML text where the short tags matter, dicts with long
forms elsewhere). Every error test checks the resource and property the message names.
"""

from __future__ import annotations

import base64
import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.template.intrinsics import merge_globals
from emulator.template.specs import DEFAULT_MEMORY_MB, DEFAULT_RUNTIME, DEFAULT_TIMEOUT_S, AppSpec, EventInvokeSpec
from emulator.template.loader import TemplateError, TemplateLoader, load_template, parse_template

SAM = "AWS::Serverless::Function"
LAMBDA = "AWS::Lambda::Function"
TRANSFORM = "AWS::Serverless-2016-10-31"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:alerts"


@pytest.fixture
def warnings() -> list[str]:
    return []


def sam_function(**props: Any) -> dict[str, Any]:
    """A valid serverless function; a property given as None is left out."""
    merged = {"CodeUri": "src", "Handler": "app.handler", "Runtime": "python3.12", **props}
    return {"Type": SAM, "Properties": {k: v for k, v in merged.items() if v is not None}}


def parse(tmp_path: Path, resources: dict[str, Any], warnings: list[str] | None = None,
          **sections: Any) -> AppSpec:
    doc = {"Transform": TRANSFORM, "Resources": resources, **sections}
    return parse_template(doc, base_dir=tmp_path, source="app.yaml",
                          warn=(warnings.append if warnings is not None else _no_warning))


def _no_warning(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


def load_yaml(tmp_path: Path, text: str, warnings: list[str] | None = None, **kwargs: Any) -> AppSpec:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return load_template(path, warn=(warnings.append if warnings is not None else _no_warning), **kwargs)


def parse_error(tmp_path: Path, resources: dict[str, Any], **sections: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse(tmp_path, resources, [], **sections)
    assert str(caught.value).startswith("app.yaml")
    return caught.value


# --- the basics --------------------------------------------------------------------------


def test_minimal_function_gets_lambda_defaults_and_its_logical_id_as_name(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function()})
    fn = app.functions["Hello"]
    assert (fn.name, fn.logical_id, fn.handler, fn.runtime) == ("Hello", "Hello", "app.handler", "python3.12")
    assert fn.code_dir == src.resolve()
    assert (fn.memory_mb, fn.timeout_s) == (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S)
    assert fn.environment == {} and fn.event_invoke is None and fn.reserved_concurrency is None
    assert app.source == "app.yaml" and app.resources == {}


def test_function_name_property_names_the_function(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function(FunctionName="hello-fn", MemorySize=512, Timeout=30,
                                                 Description="says hi")})
    fn = app.functions["hello-fn"]
    assert (fn.logical_id, fn.memory_mb, fn.timeout_s, fn.description) == ("Hello", 512, 30, "says hi")


def test_missing_code_uri_means_the_template_folder(tmp_path: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function(CodeUri=None)})
    assert app.functions["Hello"].code_dir == tmp_path.resolve()


def test_missing_runtime_defaults_and_warns(tmp_path: Path, src: Path, warnings: list[str]) -> None:
    app = parse(tmp_path, {"Hello": sam_function(Runtime=None)}, warnings)
    assert app.functions["Hello"].runtime == DEFAULT_RUNTIME
    assert len(warnings) == 1 and "'Hello'" in warnings[0] and "Runtime" in warnings[0]


def test_default_warn_goes_to_the_emulator_template_logger(tmp_path: Path, src: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    doc = {"Resources": {"Hello": sam_function(Runtime=None)}}
    with caplog.at_level(logging.WARNING, logger="emulator.template.loader"):
        parse_template(doc, base_dir=tmp_path, source="app.yaml")
    assert [r.name for r in caplog.records] == ["emulator.template.loader"]


def test_lambda_function_with_local_code_path_and_dead_letter_config(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Worker": {"Type": LAMBDA, "Properties": {
        "Code": "src", "Handler": "app.handler", "Runtime": "python3.11",
        "DeadLetterConfig": {"TargetArn": QUEUE_ARN}}}})
    fn = app.functions["Worker"]
    assert fn.code_dir == src.resolve() and fn.dead_letter_arn == QUEUE_ARN


def test_inline_zipfile_is_written_to_the_cache_folder_once(tmp_path: Path) -> None:
    code = "def handler(event, context):\n    return 42\n"
    resources = {"Inline": {"Type": LAMBDA, "Properties": {
        "FunctionName": "inline-fn", "Code": {"ZipFile": code}, "Handler": "index.handler",
        "Runtime": "python3.11"}}}
    fn = parse(tmp_path, resources).functions["inline-fn"]
    assert fn.code_dir == tmp_path / ".emulator" / "inline" / "inline-fn"
    written = fn.code_dir / "index.py"
    assert written.read_text() == code
    before = written.stat().st_mtime_ns
    written.touch()  # a reload with the same source must not rewrite the file
    touched = written.stat().st_mtime_ns
    parse(tmp_path, resources)
    assert written.stat().st_mtime_ns == touched and written.read_text() == code
    assert touched >= before


def test_sam_inline_code_is_written_like_zipfile(tmp_path: Path) -> None:
    app = parse(tmp_path, {"Inline": sam_function(CodeUri=None, InlineCode="X = 1\n", Handler="index.handler")})
    assert (app.functions["Inline"].code_dir / "index.py").read_text() == "X = 1\n"


def test_json_template_is_loaded(tmp_path: Path, src: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"Resources": {"Hello": sam_function(
        Environment={"Variables": {"REGION": {"Ref": "AWS::Region"}}})}}))
    app = load_template(path, region="eu-west-1", warn=_no_warning)
    assert app.functions["Hello"].environment == {"REGION": "eu-west-1"}
    assert app.source == str(path)


def test_events_are_kept_resolved(tmp_path: Path, src: Path) -> None:
    events = {"FromQueue": {"Type": "SQS", "Properties": {
        "Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 5}}}
    app = parse(tmp_path, {"Hello": sam_function(Events=events), "Jobs": {"Type": "AWS::SQS::Queue"}})
    assert app.functions["Hello"].events == {"FromQueue": {"Type": "SQS", "Properties": {
        "Queue": "arn:aws:sqs:us-east-1:123456789012:Jobs", "BatchSize": 5}}}


def test_concurrency_and_async_settings(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function(
        ReservedConcurrentExecutions=10, AutoPublishAlias="live",
        ProvisionedConcurrencyConfig={"ProvisionedConcurrentExecutions": 2},
        DeadLetterQueue={"Type": "SNS", "TargetArn": TOPIC_ARN},
        EventInvokeConfig={"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60,
                           "DestinationConfig": {
                               "OnSuccess": {"Type": "Lambda", "Destination": {"Fn::GetAtt": ["Other", "Arn"]}},
                               "OnFailure": {"Type": "SQS", "Destination": QUEUE_ARN}}}),
        "Other": sam_function()})
    fn = app.functions["Hello"]
    assert (fn.reserved_concurrency, fn.auto_publish_alias, fn.provisioned_concurrency) == (10, "live", 2)
    assert fn.dead_letter_arn == TOPIC_ARN
    assert fn.event_invoke == EventInvokeSpec(
        maximum_retry_attempts=0, maximum_event_age_s=60,
        on_success_arn="arn:aws:lambda:us-east-1:123456789012:function:Other", on_failure_arn=QUEUE_ARN)


def test_event_invoke_config_resource_attaches_to_its_function(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function(FunctionName="hello"), "HelloAsync": {
        "Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": {"Ref": "Hello"}, "Qualifier": "$LATEST", "MaximumRetryAttempts": 1,
            "DestinationConfig": {"OnFailure": {"Destination": QUEUE_ARN}}}}})
    assert app.functions["hello"].event_invoke == EventInvokeSpec(1, None, None, QUEUE_ARN)
    assert "HelloAsync" not in app.resources


def test_event_invoke_config_accepts_a_function_arn(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Hello": sam_function(), "HelloAsync": {
        "Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": {"Fn::GetAtt": ["Hello", "Arn"]}, "Qualifier": "$LATEST",
            "MaximumEventAgeInSeconds": 3600}}})
    assert app.functions["Hello"].event_invoke == EventInvokeSpec(None, 3600, None, None)


# --- YAML short tags and long forms ------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("!Ref Name", {"Ref": "Name"}),
    ("!GetAtt Res.Attr", {"Fn::GetAtt": ["Res", "Attr"]}),
    ("!GetAtt Db.Endpoint.Address", {"Fn::GetAtt": ["Db", "Endpoint.Address"]}),
    ("!GetAtt [Res, Attr]", {"Fn::GetAtt": ["Res", "Attr"]}),
    ("!Sub 'a-${X}'", {"Fn::Sub": "a-${X}"}),
    ("!Sub ['${A}', {A: !Ref B}]", {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}),
    ("!Join [',', [a, !Ref B]]", {"Fn::Join": [",", ["a", {"Ref": "B"}]]}),
    ("!Select [0, !Split [',', 'a,b']]", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}),
    ("!If [C, 1, 2]", {"Fn::If": ["C", 1, 2]}),
    ("!Equals [a, b]", {"Fn::Equals": ["a", "b"]}),
    ("!Not [!Condition C]", {"Fn::Not": [{"Condition": "C"}]}),
    ("!And [!Condition A, !Condition B]", {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]}),
    ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
    ("!FindInMap [M, K, V]", {"Fn::FindInMap": ["M", "K", "V"]}),
    ("!Base64 text", {"Fn::Base64": "text"}),
    ("!GetAZs ''", {"Fn::GetAZs": ""}),
    ("!ImportValue Shared", {"Fn::ImportValue": "Shared"}),
])
def test_short_tags_become_long_forms(text: str, expected: dict[str, Any]) -> None:
    assert yaml.load(text, Loader=TemplateLoader) == expected  # noqa: S506


def test_yaml_dates_stay_strings() -> None:
    doc = yaml.load("AWSTemplateFormatVersion: 2010-09-09\n", Loader=TemplateLoader)  # noqa: S506
    assert doc == {"AWSTemplateFormatVersion": "2010-09-09"}


SHORT = """
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Stage: {Type: String, Default: dev}
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: src
          Handler: app.handler
          Runtime: python3.12
          Environment:
            Variables:
              QUEUE_ARN: !GetAtt Jobs.Arn
              QUEUE_URL: !Ref Jobs
              NAME: !Sub "${AWS::StackName}-${Stage}-${Jobs.QueueName}"
              JOINED: !Join ["/", [!Ref Stage, !Select [1, !Split [",", "a,b,c"]]]]
"""
LONG = """
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Stage: {Type: String, Default: dev}
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: src
          Handler: app.handler
          Runtime: python3.12
          Environment:
            Variables:
              QUEUE_ARN: {"Fn::GetAtt": [Jobs, Arn]}
              QUEUE_URL: {Ref: Jobs}
              NAME: {"Fn::Sub": "${AWS::StackName}-${Stage}-${Jobs.QueueName}"}
              JOINED: {"Fn::Join": ["/", [{Ref: Stage}, {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}]]}
"""


def test_short_and_long_forms_resolve_the_same(tmp_path: Path, src: Path) -> None:
    short = load_yaml(tmp_path, SHORT).functions["Hello"].environment
    long = load_yaml(tmp_path, LONG).functions["Hello"].environment
    assert short == long == {
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:Jobs",
        "QUEUE_URL": "http://127.0.0.1:4566/123456789012/Jobs",
        "NAME": "local-dev-Jobs",
        "JOINED": "dev/b",
    }


# --- intrinsics --------------------------------------------------------------------------


def env_of(tmp_path: Path, variables: dict[str, Any], extra: dict[str, Any] | None = None,
           **sections: Any) -> dict[str, str]:
    app = parse(tmp_path, {"Fn": sam_function(Environment={"Variables": variables}), **(extra or {})},
                **sections)
    return app.functions["Fn"].environment


RESOURCES = {
    "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
    "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
    "Clicks": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}},
    "Alerts": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}},
    "Items": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": "items", "StreamSpecification": {"StreamViewType": "NEW_IMAGE"}}},
    "Uploads": {"Type": "AWS::S3::Bucket"},
    "Helper": sam_function(FunctionName="helper"),
}


def test_ref_and_getatt_of_every_supported_resource(tmp_path: Path, src: Path) -> None:
    refs = {f"REF_{lid.upper()}": {"Ref": lid} for lid in RESOURCES}
    atts = {f"ATT_{i}": {"Fn::GetAtt": pair} for i, pair in enumerate([
        ["Jobs", "Arn"], ["Jobs", "QueueName"], ["Jobs", "QueueUrl"], ["Orders", "Arn"],
        ["Clicks", "Arn"], ["Alerts", "TopicArn"], ["Alerts", "TopicName"], ["Items", "Arn"],
        ["Items", "StreamArn"], ["Uploads", "Arn"], ["Helper", "Arn"]])}
    env = env_of(tmp_path, {**refs, **atts}, RESOURCES)
    assert env == {
        "REF_JOBS": "http://127.0.0.1:4566/123456789012/jobs",
        "REF_ORDERS": "http://127.0.0.1:4566/123456789012/Orders.fifo",
        "REF_CLICKS": "Clicks",
        "REF_ALERTS": "arn:aws:sns:us-east-1:123456789012:alerts",
        "REF_ITEMS": "items",
        "REF_UPLOADS": "uploads",
        "REF_HELPER": "helper",
        "ATT_0": "arn:aws:sqs:us-east-1:123456789012:jobs",
        "ATT_1": "jobs",
        "ATT_2": "http://127.0.0.1:4566/123456789012/jobs",
        "ATT_3": "arn:aws:sqs:us-east-1:123456789012:Orders.fifo",
        "ATT_4": "arn:aws:kinesis:us-east-1:123456789012:stream/Clicks",
        "ATT_5": "arn:aws:sns:us-east-1:123456789012:alerts",
        "ATT_6": "alerts",
        "ATT_7": "arn:aws:dynamodb:us-east-1:123456789012:table/items",
        "ATT_8": "arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/1970-01-01T00:00:00.000",
        "ATT_9": "arn:aws:s3:::uploads",
        "ATT_10": "arn:aws:lambda:us-east-1:123456789012:function:helper",
    }


def test_pseudo_parameters_follow_the_load_options(tmp_path: Path, src: Path) -> None:
    doc = {"Resources": {"Fn": sam_function(Environment={"Variables": {
        name.split("::")[1]: {"Ref": name} for name in
        ("AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix")}}),
        "Jobs": {"Type": "AWS::SQS::Queue"}}}
    app = parse_template(doc, base_dir=tmp_path, source="t", region="eu-west-1",
                         account_id="000000000000", endpoint_url="http://localhost:9999/")
    assert app.functions["Fn"].environment == {
        "Region": "eu-west-1", "AccountId": "000000000000", "StackName": "local",
        "Partition": "aws", "URLSuffix": "amazonaws.com"}
    assert parse_template(
        {"Resources": {"Fn": sam_function(Environment={"Variables": {"QU": {"Ref": "Jobs"}}}),
                       "Jobs": {"Type": "AWS::SQS::Queue"}}},
        base_dir=tmp_path, source="t", account_id="000000000000", endpoint_url="http://localhost:9999/",
    ).functions["Fn"].environment == {"QU": "http://localhost:9999/000000000000/Jobs"}


@pytest.mark.parametrize(("value", "expected"), [
    ({"Fn::Sub": "${Stage}"}, "dev"),
    ({"Fn::Sub": "${Jobs}"}, "http://127.0.0.1:4566/123456789012/jobs"),
    ({"Fn::Sub": "${Jobs.Arn}"}, "arn:aws:sqs:us-east-1:123456789012:jobs"),
    ({"Fn::Sub": "${AWS::Region}/${AWS::AccountId}"}, "us-east-1/123456789012"),
    ({"Fn::Sub": "${!Literal} and ${ Stage }"}, "${Literal} and dev"),
    ({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Jobs"}}]}, "http://127.0.0.1:4566/123456789012/jobs-dev"),
    ({"Fn::Sub": ["${Stage}", {"Stage": "shadowed"}]}, "shadowed"),
    ({"Fn::Join": ["", ["a", 1, True]]}, "a1true"),
    ({"Fn::Select": ["1", ["x", "y"]]}, "y"),
    ({"Fn::Select": [0, {"Fn::Split": ["|", "p|q"]}]}, "p"),
    ({"Fn::If": ["IsDev", "on", "off"]}, "on"),
    ({"Fn::If": ["IsProd", "on", "off"]}, "off"),
    ({"Fn::If": ["Both", "x", "y"]}, "y"),
    ({"Fn::If": ["Either", "x", "y"]}, "x"),
    ({"Fn::If": ["NotProd", "x", "y"]}, "x"),
    ({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, "256"),
    ({"Fn::Base64": "hi"}, base64.b64encode(b"hi").decode()),
    ({"Fn::Select": [2, {"Fn::GetAZs": ""}]}, "us-east-1c"),
    ({"Fn::Select": [1, {"Ref": "Names"}]}, "b"),
    (True, "true"),
    (5, "5"),
])
def test_intrinsic_values(tmp_path: Path, src: Path, value: Any, expected: str) -> None:
    env = env_of(
        tmp_path, {"VAL": value}, {"Jobs": RESOURCES["Jobs"]},
        Parameters={"Stage": {"Type": "String", "Default": "dev"},
                    "Names": {"Type": "CommaDelimitedList", "Default": "a, b ,c"}},
        Mappings={"Sizes": {"dev": {"Memory": 256}}},
        Conditions={"IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
                    "IsProd": {"Fn::Equals": ["prod", {"Ref": "Stage"}]},
                    "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
                    "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]},
                    "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsDev"}]}})
    assert env == {"VAL": expected}


def test_no_value_removes_the_key(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {"Fn": sam_function(
        ReservedConcurrentExecutions={"Fn::If": ["Never", 5, {"Ref": "AWS::NoValue"}]},
        Environment={"Variables": {"GONE": {"Ref": "AWS::NoValue"}, "KEPT": "x"}})},
        Conditions={"Never": {"Fn::Equals": ["a", "b"]}})
    fn = app.functions["Fn"]
    assert fn.environment == {"KEPT": "x"} and fn.reserved_concurrency is None


def test_parameters_given_override_defaults_and_numbers_become_ints(tmp_path: Path, src: Path,
                                                                   warnings: list[str]) -> None:
    doc = {"Parameters": {"Memory": {"Type": "Number", "Default": 128},
                          "Stage": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
           "Resources": {"Fn": sam_function(MemorySize={"Ref": "Memory"},
                                            Environment={"Variables": {"STAGE": {"Ref": "Stage"}}})}}
    app = parse_template(doc, base_dir=tmp_path, source="t", warn=warnings.append,
                         parameters={"Memory": "1024", "Stage": "prod", "Unused": "x"})
    fn = app.functions["Fn"]
    assert (fn.memory_mb, fn.environment) == (1024, {"STAGE": "prod"})
    assert len(warnings) == 1 and "'Unused'" in warnings[0]


def test_resource_condition_leaves_the_resource_out(tmp_path: Path, src: Path) -> None:
    resources = {
        "Fn": sam_function(Environment={"Variables": {
            "QU": {"Fn::If": ["WithQueue", {"Ref": "Extra"}, "none"]}}}),
        "Extra": {"Type": "AWS::SQS::Queue", "Condition": "WithQueue"},
        "ProdOnly": {**sam_function(FunctionName="prod-only"), "Condition": "WithQueue"},
    }
    app = parse(tmp_path, resources, Conditions={"WithQueue": {"Fn::Equals": ["a", "b"]}})
    assert set(app.functions) == {"Fn"} and app.resources == {}
    assert app.functions["Fn"].environment == {"QU": "none"}


# --- Globals -----------------------------------------------------------------------------


def test_globals_merge_maps_and_the_resource_wins_scalars(tmp_path: Path, src: Path) -> None:
    globals_ = {"Function": {"Timeout": 10, "MemorySize": 256, "Runtime": "python3.11",
                             "Environment": {"Variables": {"SHARED": "g", "OVERRIDE": "global"}}}}
    app = parse(tmp_path, {
        "A": sam_function(Runtime=None, Timeout=20, Environment={"Variables": {"OVERRIDE": "local", "OWN": "a"}}),
        "B": sam_function(Runtime=None),
        "C": {"Type": LAMBDA, "Properties": {"Code": "src", "Handler": "app.handler", "Runtime": "python3.12"}},
    }, Globals=globals_)
    a, b, c = (app.functions[n] for n in "ABC")
    assert (a.timeout_s, a.memory_mb, a.runtime) == (20, 256, "python3.11")
    assert a.environment == {"SHARED": "g", "OVERRIDE": "local", "OWN": "a"}
    assert (b.timeout_s, b.environment) == (10, {"SHARED": "g", "OVERRIDE": "global"})
    # Globals apply to AWS::Serverless::Function only.
    assert (c.timeout_s, c.memory_mb, c.environment) == (DEFAULT_TIMEOUT_S, DEFAULT_MEMORY_MB, {})


def test_merge_globals_prepends_lists_and_treats_intrinsics_as_scalars() -> None:
    assert merge_globals({"Layers": ["g1"], "Tags": {"a": "1"}}, {"Layers": ["l1"], "Tags": {"b": "2"}}) == {
        "Layers": ["g1", "l1"], "Tags": {"a": "1", "b": "2"}}
    assert merge_globals({"V": {"Ref": "X"}}, {"V": {"Other": 1}}) == {"V": {"Other": 1}}
    assert merge_globals({"V": {"a": 1}}, {"V": {"Fn::If": ["C", 1, 2]}}) == {"V": {"Fn::If": ["C", 1, 2]}}
    assert merge_globals({"V": ["a"]}, {"V": "scalar"}) == {"V": "scalar"}


# --- other resources ---------------------------------------------------------------------


def test_resources_are_kept_resolved_with_their_names(tmp_path: Path, src: Path) -> None:
    app = parse(tmp_path, {
        **RESOURCES,
        "Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "FunctionName": {"Ref": "Helper"}, "EventSourceArn": {"Fn::GetAtt": ["Jobs", "Arn"]},
            "BatchSize": 10, "Enabled": {"Ref": "AWS::NoValue"}}},
    })
    jobs, mapping = app.resources["Jobs"], app.resources["Mapping"]
    assert (jobs.type, jobs.name, jobs.properties) == ("AWS::SQS::Queue", "jobs", {"QueueName": "jobs"})
    assert mapping.properties == {"FunctionName": "helper", "BatchSize": 10,
                                  "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:jobs"}
    assert mapping.name == ""
    names = {lid: spec.name for lid, spec in app.resources.items()}
    assert names == {"Jobs": "jobs", "Orders": "Orders.fifo", "Clicks": "Clicks", "Alerts": "alerts",
                     "Items": "items", "Uploads": "uploads", "Mapping": ""}
    assert set(app.functions) == {"helper"}


def test_unknown_types_are_kept_with_one_warning_per_type(tmp_path: Path, src: Path,
                                                          warnings: list[str]) -> None:
    app = parse(tmp_path, {
        "Fn": sam_function(),
        "Api1": {"Type": "AWS::Events::Rule", "Properties": {"Name": {"Ref": "AWS::StackName"}}},
        "Api2": {"Type": "AWS::Events::Rule", "Properties": {"Name": "v2"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r"}},
    }, warnings)
    assert app.resources["Api1"].properties == {"Name": "local"}
    assert app.resources["Role"].name == "r"
    assert len(warnings) == 1 and "AWS::Events::Rule" in warnings[0]


def test_unresolvable_reference_in_an_unemulated_resource_does_not_stop_loading(
        tmp_path: Path, src: Path, warnings: list[str]) -> None:
    raw = {"Target": {"Fn::GetAtt": ["Missing", "Arn"]}}
    app = parse(tmp_path, {"Fn": sam_function(),
                           "Rule": {"Type": "AWS::IAM::Policy", "Properties": raw}}, warnings)
    assert app.resources["Rule"].properties == raw
    assert len(warnings) == 1
    assert "resource 'Rule', property 'Target'" in warnings[0] and "'Missing'" in warnings[0]


def test_ignored_properties_are_never_evaluated_and_unknown_ones_warn_once(
        tmp_path: Path, src: Path, warnings: list[str]) -> None:
    app = parse(tmp_path, {
        "A": sam_function(Role={"Fn::GetAtt": ["NoSuchRole", "Arn"]}, Tracing="Active", Colour="red"),
        "B": sam_function(Colour="blue", Shape="round"),
        "C": {"Type": LAMBDA, "Properties": {"Code": "src", "Handler": "app.handler",
                                             "Runtime": "python3.11", "Colour": "green"}},
    }, warnings)
    assert set(app.functions) == {"A", "B", "C"}
    assert len(warnings) == 3
    assert sum("'Colour'" in w for w in warnings) == 2  # once per resource type
    assert sum("'Shape'" in w for w in warnings) == 1


# --- errors: each names the resource and the property ------------------------------------


OK_DESTINATION = {"Type": "SQS", "Destination": QUEUE_ARN}


@pytest.mark.parametrize(("props", "prop", "words"), [
    ({"MemorySize": 64}, "MemorySize", ["64", "128 to 10240"]),
    ({"MemorySize": 10241}, "MemorySize", ["10241", "128 to 10240"]),
    ({"MemorySize": "lots"}, "MemorySize", ["'lots'", "integer"]),
    ({"MemorySize": True}, "MemorySize", ["integer"]),
    ({"Timeout": 0}, "Timeout", ["0", "1 to 900"]),
    ({"Timeout": 901}, "Timeout", ["901", "1 to 900"]),
    ({"Runtime": "nodejs-latest"}, "Runtime", ["nodejs-latest", "not a Lambda runtime"]),
    ({"Runtime": "python2.7"}, "Runtime", ["not a Lambda runtime"]),
    ({"Handler": "app"}, "Handler", ["'app'", "module.function"]),
    ({"Handler": None}, "Handler", ["module.function"]),
    ({"CodeUri": "nowhere"}, "CodeUri", ["nowhere", "neither a folder nor a .zip file"]),
    ({"CodeUri": "s3://bucket/key.zip"}, "CodeUri", ["only local code"]),
    ({"CodeUri": {"Bucket": "b", "Key": "k"}}, "CodeUri", ["only local code"]),
    ({"PackageType": "Image"}, "ImageUri", ["needs ImageUri, or Metadata with Dockerfile"]),
    ({"PackageType": "Image", "ImageUri": "repo:tag", "ImageConfig": {"Command": "app.handler"}}, "ImageConfig.Command", ["not a list of strings"]),
    ({"FunctionName": "bad name!"}, "FunctionName", ["not a valid function name"]),
    ({"FunctionName": "x" * 65}, "FunctionName", ["1 to 64"]),
    ({"Environment": {"Variables": {"BIG": "x" * 4094}}}, "Environment.Variables", ["4097 bytes", "4096"]),
    ({"Environment": {"Variables": {"1BAD": "x"}}}, "Environment.Variables.1BAD", ["start with a letter"]),
    ({"Environment": {"Variables": {"X": "x"}}}, "Environment.Variables.X", ["at least 2 characters"]),
    ({"Environment": {"Variables": {"EMPTY": None}}}, "Environment.Variables.EMPTY", ["quote"]),
    ({"Environment": {"Variables": ["A=1"]}}, "Environment.Variables", ["mapping"]),
    ({"ReservedConcurrentExecutions": -1}, "ReservedConcurrentExecutions", ["-1", "at least 0"]),
    ({"AutoPublishAlias": "123"}, "AutoPublishAlias", ["not only digits"]),
    ({"ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 1}},
     "ProvisionedConcurrencyConfig", ["AutoPublishAlias"]),
    ({"AutoPublishAlias": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 0}},
     "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions", ["0", "at least 1"]),
    ({"AutoPublishAlias": "live", "ReservedConcurrentExecutions": 2,
      "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 3}},
     "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions", ["more than ReservedConcurrentExecutions"]),
    ({"EventInvokeConfig": {"MaximumRetryAttempts": 3}}, "EventInvokeConfig.MaximumRetryAttempts", ["3", "0 to 2"]),
    ({"EventInvokeConfig": {"MaximumEventAgeInSeconds": 59}},
     "EventInvokeConfig.MaximumEventAgeInSeconds", ["59", "60 to 21600"]),
    ({"EventInvokeConfig": {"MaximumEventAgeInSeconds": 21601}},
     "EventInvokeConfig.MaximumEventAgeInSeconds", ["21601", "60 to 21600"]),
    ({"EventInvokeConfig": {"DestinationConfig": {"OnFailure": {"Type": "Kafka", "Destination": QUEUE_ARN}}}},
     "EventInvokeConfig.DestinationConfig.OnFailure.Type", ["'Kafka'", "EventBridge"]),
    ({"EventInvokeConfig": {"DestinationConfig": {"OnFailure": {"Type": "SQS"}}}},
     "EventInvokeConfig.DestinationConfig.OnFailure.Destination", ["explicit Destination"]),
    ({"EventInvokeConfig": {"DestinationConfig": {"OnSuccess": {"Type": "S3", "Destination": "arn:aws:s3:::b"}}}},
     "EventInvokeConfig.DestinationConfig.OnSuccess.Destination", ["on-failure destination only"]),
    ({"DeadLetterQueue": {"Type": "Lambda", "TargetArn": QUEUE_ARN}}, "DeadLetterQueue.Type", ["SQS or SNS"]),
    ({"DeadLetterQueue": {"Type": "SNS", "TargetArn": QUEUE_ARN}}, "DeadLetterQueue.TargetArn", ["SNS target"]),
    ({"Events": {"Broken": "SQS"}}, "Events.Broken", ["needs a Type"]),
    ({"Environment": {"Variables": {"VAR": {"Ref": "Nope"}}}}, "Environment.Variables.VAR",
     ["'Nope'", "declare it under Parameters or Resources"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::GetAtt": ["Nope", "Arn"]}}}}, "Environment.Variables.VAR",
     ["no resource 'Nope'"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::GetAtt": ["Jobs", "Colour"]}}}}, "Environment.Variables.VAR",
     ["'Colour'", "supported: Arn, QueueName, QueueUrl"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::GetAtt": ["Items", "StreamArn"]}}}},
     "Environment.Variables.VAR", ["StreamSpecification"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::Sub": "${Nope}"}}}}, "Environment.Variables.VAR", ["'Nope'"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::Sub": "${Jobs.Nope}"}}}}, "Environment.Variables.VAR", ["'Nope'"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::ImportValue": "Shared"}}}}, "Environment.Variables.VAR",
     ["'Shared'", "--import-values Shared=..."]),
    ({"Environment": {"Variables": {"VAR": {"Fn::FindInMap": ["Sizes", "prod", "Memory"]}}}},
     "Environment.Variables.VAR", ["Sizes.prod.Memory"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::Select": [5, ["a"]]}}}}, "Environment.Variables.VAR", ["5"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::Cidr": ["10.0.0.0/16", 1, 8]}}}}, "Environment.Variables.VAR",
     ["Fn::Cidr is not supported"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::If": ["Nope", "a", "b"]}}}}, "Environment.Variables.VAR",
     ["no condition 'Nope'"]),
    ({"Environment": {"Variables": {"VAR": {"Ref": "Excluded"}}}}, "Environment.Variables.VAR",
     ["'Excluded'", "condition 'Never' is false"]),
    ({"Environment": {"Variables": {"VAR": {"Fn::Join": [",", "notalist"]}}}}, "Environment.Variables.VAR", ["list"]),
    ({"Layers": ["ok"], "Environment": {"Variables": {"VAR": {"Fn::Join": ["", [{"Ref": "Oops"}]]}}}},
     "Environment.Variables.VAR", ["'Oops'"]),
    ({"Events": {"Q": {"Type": "SQS", "Properties": {"Queue": [{"Ref": "Oops"}]}}}},
     "Events.Q.Properties.Queue[0]", ["'Oops'"]),
])
def test_function_property_errors_name_the_resource_and_property(
        tmp_path: Path, src: Path, props: dict[str, Any], prop: str, words: list[str]) -> None:
    err = parse_error(
        tmp_path, {"Fn": sam_function(**props), "Jobs": {"Type": "AWS::SQS::Queue"},
                   "Items": {"Type": "AWS::DynamoDB::Table"},
                   "Excluded": {"Type": "AWS::SQS::Queue", "Condition": "Never"}},
        Mappings={"Sizes": {"dev": {"Memory": 256}}},
        Conditions={"Never": {"Fn::Equals": ["a", "b"]}})
    assert (err.logical_id, err.prop) == ("Fn", prop)
    message = str(err)
    assert f"resource 'Fn', property '{prop}'" in message
    for word in words:
        assert word in message


def test_code_uri_may_be_a_zip_package_unpacked_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "build.zip").write_bytes(b"PK")
    app = parse(tmp_path, {"Fn": sam_function(CodeUri="build.zip")})
    assert app.functions["Fn"].code_dir == (tmp_path / "build.zip").resolve()


@pytest.mark.parametrize(("code", "prop", "words"), [
    ({"S3Bucket": "b", "S3Key": "k"}, "Code", ["only local code"]),
    ({"ImageUri": ""}, "ImageUri", ["needs ImageUri"]),
    ({"ZipFile": ""}, "Code.ZipFile", ["non-empty"]),
    (None, "Code", ["required"]),
])
def test_lambda_function_code_errors(tmp_path: Path, code: Any, prop: str, words: list[str]) -> None:
    props = {"Handler": "index.handler", "Runtime": "python3.11", **({"Code": code} if code else {})}
    err = parse_error(tmp_path, {"Fn": {"Type": LAMBDA, "Properties": props}})
    assert (err.logical_id, err.prop) == ("Fn", prop)
    assert all(word in str(err) for word in words)


def test_duplicate_function_names_are_rejected(tmp_path: Path, src: Path) -> None:
    err = parse_error(tmp_path, {"A": sam_function(FunctionName="same"), "B": sam_function(FunctionName="same")})
    assert (err.logical_id, err.prop) == ("B", "FunctionName")
    assert "'A'" in str(err) and "unique" in str(err)


def test_function_named_like_another_functions_logical_id_is_a_duplicate(tmp_path: Path, src: Path) -> None:
    err = parse_error(tmp_path, {"A": sam_function(), "B": sam_function(FunctionName="A")})
    assert err.logical_id == "B"


@pytest.mark.parametrize(("resources", "logical_id", "prop", "words"), [
    ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "plain", "FifoQueue": True}}},
     "Q", "QueueName", [".fifo"]),
    ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "odd.fifo"}}}, "Q", "QueueName", [".fifo"]),
    ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::GetAtt": ["Q", "QueueName"]}}}},
     "Q", "QueueName", ["refers to itself"]),
    ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": ["a"]}}}, "Q", "QueueName", ["not a name"]),
    ({"M": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {"FunctionName": {"Ref": "Gone"}}}},
     "M", "FunctionName", ["'Gone'"]),
    ({"Q": {"Type": "AWS::SQS::Queue", "Condition": "Missing"}}, "Q", "Condition", ["no condition 'Missing'"]),
    ({"E": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
        "FunctionName": "ghost", "Qualifier": "$LATEST"}}}, "E", "FunctionName", ["no function named 'ghost'"]),
    ({"E": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {"FunctionName": "Fn"}}},
     "E", "Qualifier", ["required"]),
    ({"E": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
        "FunctionName": "Fn", "Qualifier": "$LATEST", "MaximumRetryAttempts": 5}}},
     "E", "MaximumRetryAttempts", ["5", "0 to 2"]),
    ({"Fn": sam_function(EventInvokeConfig={"MaximumRetryAttempts": 1}), "E": {
        "Type": "AWS::Lambda::EventInvokeConfig", "Properties": {"FunctionName": "Fn", "Qualifier": "live"}}},
     "E", "FunctionName", ["already has an EventInvokeConfig"]),
    ({"Bad-Id": sam_function()}, None, None, ["alphanumeric"]),
    ({"NoType": {"Properties": {}}}, "NoType", "Type", ["needs a Type"]),
    ({"Props": {"Type": "AWS::SQS::Queue", "Properties": ["x"]}}, "Props", "Properties", ["mapping"]),
])
def test_resource_errors(tmp_path: Path, src: Path, resources: dict[str, Any], logical_id: str | None,
                         prop: str | None, words: list[str]) -> None:
    err = parse_error(tmp_path, {"Fn": sam_function(), **resources})
    assert (err.logical_id, err.prop) == (logical_id, prop)
    assert all(word in str(err) for word in words)


def test_condition_cycles_and_bad_conditions_are_reported(tmp_path: Path, src: Path) -> None:
    err = parse_error(tmp_path, {"Fn": {**sam_function(), "Condition": "A"}},
                      Conditions={"A": {"Fn::Not": [{"Condition": "B"}]}, "B": {"Fn::Not": [{"Condition": "A"}]}})
    assert (err.logical_id, err.prop) == ("Fn", "Condition") and "depends on itself" in str(err)
    err = parse_error(tmp_path, {"Fn": {**sam_function(), "Condition": "A"}}, Conditions={"A": "yes"})
    assert "expected a condition" in str(err)


@pytest.mark.parametrize(("doc", "words"), [
    ([], ["mapping with a Resources section"]),
    ({}, ["non-empty Resources"]),
    ({"Resources": {}}, ["non-empty Resources"]),
    ({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Transform": "AWS::Include"}, ["AWS::Include", "not supported"]),
    ({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Parameters": ["x"]}, ["Parameters section"]),
    ({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Globals": {"Function": "x"}}, ["Globals.Function"]),
])
def test_top_level_errors(tmp_path: Path, doc: Any, words: list[str]) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(doc, base_dir=tmp_path, source="app.yaml", warn=_no_warning)
    assert str(caught.value).startswith("app.yaml: ")
    assert all(word in str(caught.value) for word in words)


def test_transform_list_with_serverless_is_accepted(tmp_path: Path, src: Path) -> None:
    doc = {"Transform": [TRANSFORM], "Resources": {"Fn": sam_function()}}
    assert set(parse_template(doc, base_dir=tmp_path, source="t").functions) == {"Fn"}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("Resources:\n  Fn:\n    Type: [unclosed\n", 4, ["YAML is malformed"]),
    ("Resources:\n  Fn:\n    Type: AWS::SQS::Queue\n  Fn:\n    Type: AWS::SQS::Queue\n", 4, ["duplicate key 'Fn'"]),
    ("Resources:\n  Q:\n    Type: !Bogus x\n", 3, ["!Bogus"]),
])
def test_malformed_yaml_reports_the_line(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError) as caught:
        load_template(path, warn=_no_warning)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}, line {line}: ")
    assert all(word in str(caught.value) for word in words)


def test_malformed_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text('{\n  "Resources": {\n    "Q": {"Type": }\n  }\n}\n')
    with pytest.raises(TemplateError) as caught:
        load_template(path, warn=_no_warning)
    assert caught.value.line == 3 and "JSON is malformed" in str(caught.value)


def test_missing_file_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read the template"):
        load_template(tmp_path / "absent.yaml")


def test_load_error_names_the_file_resource_and_property(tmp_path: Path, src: Path) -> None:
    text = """
        Resources:
          Hello:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              Handler: app.handler
              Runtime: python3.12
              Timeout: 1000
    """
    with pytest.raises(TemplateError) as caught:
        load_yaml(tmp_path, text)
    assert str(caught.value) == (f"{tmp_path / 'template.yaml'}: resource 'Hello', property 'Timeout': "
                                 "1000 is out of range: the allowed range is 1 to 900")


def test_a_realistic_sam_template(tmp_path: Path, src: Path, warnings: list[str]) -> None:
    text = """
        AWSTemplateFormatVersion: 2010-09-09
        Transform: AWS::Serverless-2016-10-31
        Description: orders service
        Parameters:
          Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
        Conditions:
          IsProd: !Equals [!Ref Stage, prod]
        Mappings:
          Limits: {dev: {Reserved: 5}, prod: {Reserved: 50}}
        Globals:
          Function:
            Runtime: python3.12
            Timeout: 15
            Environment:
              Variables:
                STAGE: !Ref Stage
        Resources:
          OrdersQueue:
            Type: AWS::SQS::Queue
            Properties:
              QueueName: !Sub "${AWS::StackName}-orders-${Stage}"
              VisibilityTimeout: 90
          Failures:
            Type: AWS::SNS::Topic
          OrderWorker:
            Type: AWS::Serverless::Function
            Metadata: {BuildMethod: python3.12}
            Properties:
              FunctionName: !Join ["-", [orders, worker, !Ref Stage]]
              CodeUri: src/
              Handler: app.handler
              MemorySize: !If [IsProd, 1024, 256]
              ReservedConcurrentExecutions: !FindInMap [Limits, !Ref Stage, Reserved]
              Role: !GetAtt SomeRoleDefinedElsewhere.Arn
              Environment:
                Variables:
                  QUEUE_URL: !Ref OrdersQueue
                  DEBUG: !If [IsProd, !Ref AWS::NoValue, "1"]
              EventInvokeConfig:
                MaximumRetryAttempts: 1
                DestinationConfig:
                  OnFailure: {Type: SNS, Destination: !Ref Failures}
              Events:
                Orders:
                  Type: SQS
                  Properties: {Queue: !GetAtt OrdersQueue.Arn, BatchSize: 10}
        Outputs:
          WorkerRole:
            Value: !GetAtt OrderWorkerRole.Arn
    """
    app = load_yaml(tmp_path, text, warnings, region="eu-central-1")
    assert warnings == []
    fn = app.functions["orders-worker-dev"]
    assert (fn.logical_id, fn.runtime, fn.timeout_s, fn.memory_mb, fn.reserved_concurrency) == (
        "OrderWorker", "python3.12", 15, 256, 5)
    assert fn.environment == {"STAGE": "dev", "QUEUE_URL": "http://127.0.0.1:4566/123456789012/local-orders-dev",
                              "DEBUG": "1"}
    assert fn.event_invoke == EventInvokeSpec(1, None, None, "arn:aws:sns:eu-central-1:123456789012:Failures")
    assert fn.events["Orders"]["Properties"]["Queue"] == "arn:aws:sqs:eu-central-1:123456789012:local-orders-dev"
    queue = app.resources["OrdersQueue"]
    assert (queue.name, queue.properties["VisibilityTimeout"]) == ("local-orders-dev", 90)

    prod = load_yaml(tmp_path, text, parameters={"Stage": "prod"}).functions["orders-worker-prod"]
    assert (prod.memory_mb, prod.reserved_concurrency) == (1024, 50)
    assert prod.environment == {"STAGE": "prod", "QUEUE_URL": "http://127.0.0.1:4566/123456789012/local-orders-prod"}


def test_image_functions_read_image_uri_image_config_and_build_metadata(tmp_path: Path) -> None:
    # PackageType Image: ImageUri, ImageConfig and the Metadata `sam build` reads
    # (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-cli-using-build.html).
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text("FROM scratch\n")
    app = parse_template({"Resources": {
        "Uri": {"Type": SAM, "Properties": {"PackageType": "Image", "ImageUri": "repo/fn:1",
                                            "ImageConfig": {"Command": ["app.handler"], "EntryPoint": ["/entry"],
                                                            "WorkingDirectory": "/work"}}},
        "Built": {"Type": SAM, "Properties": {"PackageType": "Image"},
                  "Metadata": {"Dockerfile": "Dockerfile", "DockerContext": "img", "DockerTag": "v1",
                               "DockerBuildArgs": {"A": "1"}}},
        "Cfn": {"Type": LAMBDA, "Properties": {"PackageType": "Image", "Code": {"ImageUri": "repo/cfn:2"}}},
    }}, base_dir=tmp_path)
    uri, built, cfn = app.functions["Uri"], app.functions["Built"], app.functions["Cfn"]
    assert uri.package_type == "Image" and uri.handler == "" and uri.image is not None
    assert (uri.image.uri, uri.image.command, uri.image.entry_point, uri.image.working_directory) == (
        "repo/fn:1", ("app.handler",), ("/entry",), "/work")
    assert built.image is not None and built.image.docker_context == (tmp_path / "img").resolve()
    assert (built.image.dockerfile, built.image.docker_tag, built.image.build_args) == ("Dockerfile", "v1", (("A", "1"),))
    assert built.code_dir == (tmp_path / "img").resolve()  # edits of the build context rebuild the image
    assert cfn.image is not None and cfn.image.uri == "repo/cfn:2"
    assert app.functions["Uri"].code_dir.is_dir()


def test_every_lambda_runtime_family_loads(tmp_path: Path, src: Path) -> None:
    app = parse_template({"Resources": {
        f"F{i}": sam_function(Runtime=runtime) for i, runtime in
        enumerate(("python3.12", "nodejs20.x", "provided.al2023", "java21", "dotnet8", "ruby3.3"))
    }}, base_dir=tmp_path)
    assert sorted(spec.runtime for spec in app.functions.values()) == sorted(
        ("python3.12", "nodejs20.x", "provided.al2023", "java21", "dotnet8", "ruby3.3"))
