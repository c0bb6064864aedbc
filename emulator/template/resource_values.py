"""What `Ref` and `Fn::GetAtt` return for each resource type, as CloudFormation documents it
per type in its template reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html),
and the resources SAM generates without declaring them (a function's role, `Fn.Alias`).

Physical names are the name property or the logical id; ARNs use the stack's Region and
account. A type not listed here: `Ref` gives the logical id (warned once), `Fn::GetAtt` fails
naming the attribute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from emulator.template.api_ids import GATEWAY_ATTRIBUTES, GATEWAY_REF_VALUES

SAM_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
SAM_LAYER = "AWS::Serverless::LayerVersion"
LAMBDA_LAYER = "AWS::Lambda::LayerVersion"
LAYER_TYPES = (SAM_LAYER, LAMBDA_LAYER)
# Real stream labels are creation timestamps; locally a table has one fixed label.
DYNAMODB_STREAM_LABEL = "1970-01-01T00:00:00.000"
# Every layer of a local template is version 1 (one stack, one deployment).
LOCAL_LAYER_VERSION = 1

# The property holding each type's physical name; without it the logical id is the name.
NAME_PROPERTY = {
    SAM_FUNCTION: "FunctionName", LAMBDA_FUNCTION: "FunctionName", "AWS::SQS::Queue": "QueueName",
    "AWS::Kinesis::Stream": "Name", "AWS::SNS::Topic": "TopicName", "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName", "AWS::IAM::Role": "RoleName", SAM_LAYER: "LayerName",
    LAMBDA_LAYER: "LayerName", "AWS::Serverless::SimpleTable": "TableName",
    "AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::Serverless::StateMachine": "Name",
    "AWS::Events::EventBus": "Name", "AWS::Events::Rule": "Name", "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SSM::Parameter": "Name", "AWS::SecretsManager::Secret": "Name",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
}


class StackView(Protocol):
    """What these getters read of the stack (emulator.template.intrinsics.StackScope)."""

    region: str
    account_id: str
    endpoint_url: str

    def name_of(self, logical_id: str) -> str: ...

    def arn(self, service: str, resource: str) -> str: ...

    def property_of(self, logical_id: str, prop: str) -> Any: ...

    def table_stream_arn(self, logical_id: str) -> str: ...


Getter = Callable[[StackView, str], Any]


def _name(stack: StackView, logical_id: str) -> str:
    return stack.name_of(logical_id)


def _function_arn(stack: StackView, logical_id: str) -> str:
    return stack.arn("lambda", f"function:{stack.name_of(logical_id)}")


def layer_version_arn(stack: StackView, logical_id: str) -> str:
    return stack.arn("lambda", f"layer:{stack.name_of(logical_id)}:{LOCAL_LAYER_VERSION}")


def _queue_url(stack: StackView, logical_id: str) -> str:
    return f"{stack.endpoint_url}/{stack.account_id}/{stack.name_of(logical_id)}"


def _role_arn(stack: StackView, logical_id: str) -> str:
    return f"arn:aws:iam::{stack.account_id}:role/{stack.name_of(logical_id)}"


def _stable_id(prefix: str, stack: StackView, logical_id: str, length: int = 17) -> str:
    # An id that looks like AWS's and stays the same across loads of the same template.
    digest = hashlib.sha256(f"{stack.account_id}/{logical_id}".encode()).hexdigest().upper()
    return prefix + digest[:length]


def _bucket_website(stack: StackView, logical_id: str) -> str:
    return f"http://{stack.name_of(logical_id)}.s3-website-{stack.region}.amazonaws.com"


def _secret_arn(stack: StackView, logical_id: str) -> str:
    # Secrets Manager appends six random characters to a secret's ARN.
    return stack.arn("secretsmanager", f"secret:{stack.name_of(logical_id)}-{_stable_id('', stack, logical_id, 6)}")


def _kms_key_id(stack: StackView, logical_id: str) -> str:
    digest = hashlib.sha256(f"{stack.account_id}/{logical_id}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _state_machine_arn(stack: StackView, logical_id: str) -> str:
    return stack.arn("states", f"stateMachine:{stack.name_of(logical_id)}")


def _log_group_arn(stack: StackView, logical_id: str) -> str:
    return stack.arn("logs", f"log-group:{stack.name_of(logical_id)}:*")


def _alias_arn(stack: StackView, logical_id: str) -> str:
    function = str(stack.property_of(logical_id, "FunctionName"))
    base = function if function.startswith("arn:") else stack.arn("lambda", f"function:{function}")
    return f"{base}:{stack.property_of(logical_id, 'Name')}"


def _event_bus_arn(stack: StackView, logical_id: str) -> str:
    return stack.arn("events", f"event-bus/{stack.name_of(logical_id)}")


# What `Ref` returns per type.
REF_VALUES: dict[str, Getter] = {
    SAM_FUNCTION: _name, LAMBDA_FUNCTION: _name, "AWS::SQS::Queue": _queue_url,
    "AWS::SNS::Topic": lambda s, lid: s.arn("sns", s.name_of(lid)),
    "AWS::Kinesis::Stream": _name, "AWS::DynamoDB::Table": _name, "AWS::S3::Bucket": _name,
    "AWS::IAM::Role": _name, SAM_LAYER: layer_version_arn, LAMBDA_LAYER: layer_version_arn,
    "AWS::Serverless::SimpleTable": _name,
    "AWS::StepFunctions::StateMachine": _state_machine_arn, "AWS::Serverless::StateMachine": _state_machine_arn,
    "AWS::Events::EventBus": _name, "AWS::Events::Rule": _name, "AWS::Logs::LogGroup": _name,
    "AWS::SSM::Parameter": _name, "AWS::SecretsManager::Secret": _secret_arn, "AWS::KMS::Key": _kms_key_id,
    "AWS::KinesisFirehose::DeliveryStream": _name, "AWS::Lambda::Alias": _alias_arn,
    "AWS::SNS::Subscription": lambda s, lid: s.arn("sns", f"subscription/{_stable_id('', s, lid, 32).lower()}"),
    **GATEWAY_REF_VALUES,  # API Gateway's APIs, resources, stages, keys and plans
}

# The `Fn::GetAtt` attributes the emulator can answer, per type.
ATTRIBUTES: dict[str, dict[str, Getter]] = {
    SAM_FUNCTION: {"Arn": _function_arn},
    LAMBDA_FUNCTION: {"Arn": _function_arn},
    "AWS::SQS::Queue": {"Arn": lambda s, lid: s.arn("sqs", s.name_of(lid)), "QueueName": _name,
                        "QueueUrl": _queue_url},
    "AWS::Kinesis::Stream": {"Arn": lambda s, lid: s.arn("kinesis", f"stream/{s.name_of(lid)}")},
    "AWS::SNS::Topic": {"TopicArn": REF_VALUES["AWS::SNS::Topic"], "TopicName": _name},
    "AWS::DynamoDB::Table": {"Arn": lambda s, lid: s.arn("dynamodb", f"table/{s.name_of(lid)}"),
                             "StreamArn": lambda s, lid: s.table_stream_arn(lid)},
    "AWS::S3::Bucket": {
        "Arn": lambda s, lid: f"arn:aws:s3:::{s.name_of(lid)}",
        "DomainName": lambda s, lid: f"{s.name_of(lid)}.s3.amazonaws.com",
        "DualStackDomainName": lambda s, lid: f"{s.name_of(lid)}.s3.dualstack.{s.region}.amazonaws.com",
        "RegionalDomainName": lambda s, lid: f"{s.name_of(lid)}.s3.{s.region}.amazonaws.com",
        "WebsiteURL": _bucket_website,
    },
    "AWS::IAM::Role": {"Arn": _role_arn, "RoleId": lambda s, lid: _stable_id("AROA", s, lid)},
    LAMBDA_LAYER: {"LayerVersionArn": layer_version_arn},
    "AWS::StepFunctions::StateMachine": {"Arn": _state_machine_arn, "Name": _name},
    "AWS::Serverless::StateMachine": {"Arn": _state_machine_arn, "Name": _name},
    "AWS::Events::EventBus": {"Arn": _event_bus_arn, "Name": _name},
    "AWS::Events::Rule": {"Arn": lambda s, lid: s.arn("events", f"rule/{s.name_of(lid)}")},
    "AWS::Logs::LogGroup": {"Arn": _log_group_arn},
    "AWS::SSM::Parameter": {"Type": lambda s, lid: s.property_of(lid, "Type"),
                            "Value": lambda s, lid: s.property_of(lid, "Value")},
    "AWS::SecretsManager::Secret": {"Id": _secret_arn},
    "AWS::KMS::Key": {"Arn": lambda s, lid: s.arn("kms", f"key/{_kms_key_id(s, lid)}"), "KeyId": _kms_key_id},
    "AWS::KinesisFirehose::DeliveryStream": {
        "Arn": lambda s, lid: s.arn("firehose", f"deliverystream/{s.name_of(lid)}")},
    **GATEWAY_ATTRIBUTES,
}


def implicit_resources(types: dict[str, str], raw: dict[str, Any]) -> dict[str, str]:
    """The resources SAM generates that templates refer to by name: `<Function>Role` for a
    serverless function without a Role
    (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification-generated-resources-function.html).
    Logical id -> type; declared resources win."""
    implicit: dict[str, str] = {}
    for logical_id, rtype in types.items():
        if rtype == SAM_FUNCTION and "Role" not in raw[logical_id]["Properties"]:
            implicit.setdefault(f"{logical_id}Role", "AWS::IAM::Role")
    return {lid: rtype for lid, rtype in implicit.items() if lid not in types}
