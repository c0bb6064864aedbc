"""AWS Lambda Powertools handlers run unchanged and without a warning (issue 10): batch
processors over SQS and Kinesis with parser models, Logger (also under
LoggingConfig's log levels), Tracer, and idempotency against a DynamoDB table of the
template, with the real executions counted.

The app is a SAM template in the shape of AWS's serverless patterns (written here): a
parameter without a Default, given with `--parameter-overrides`; Globals; a table, a queue,
a stream; SAM events; `Policies` (accepted, not enforced). It runs under `emulator up`, and
its logs are read where a user reads them: CloudWatch Logs (`filter_log_events`).
Powertools warns through `warnings.warn` (a line naming a `...Warning` class) or its Logger
(`"level":"WARNING"`); either would be a line with "warning" in it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from core_testkit import wait_until
from host_testkit import RunningEmulator, emulator_process

pytestmark = pytest.mark.scenario

WAIT_S = 30.0

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: Orders, the Powertools way

Parameters:
  OutDir:
    Type: String
    Description: where the handlers write what they really executed
  Stage:
    Type: String
    AllowedValues: [dev, prod]

Globals:
  Function:
    Runtime: python3.11
    CodeUri: src/
    Timeout: 10
    MemorySize: 256
    Tracing: Active
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: !Sub "orders-${Stage}"
        POWERTOOLS_LOG_LEVEL: INFO
        IDEMPOTENCY_TABLE: !Ref IdempotencyTable
        OUT_DIR: !Ref OutDir

Resources:
  IdempotencyTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "idempotency-${Stage}"
      AttributeDefinitions:
        - AttributeName: id
          AttributeType: S
      KeySchema:
        - AttributeName: id
          KeyType: HASH
      TimeToLiveSpecification:
        AttributeName: expiration
        Enabled: true
      BillingMode: PAY_PER_REQUEST

  OrdersQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orders-${Stage}"
      VisibilityTimeout: 60

  OrdersStream:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !Sub "orders-${Stage}"
      ShardCount: 1

  PlaceOrderFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "place-order-${Stage}"
      Handler: place_order.handler
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref IdempotencyTable
      LoggingConfig:
        LogFormat: JSON
        ApplicationLogLevel: INFO
        SystemLogLevel: INFO

  QueueConsumerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.from_queue
      Policies:
        - SQSPollerPolicy:
            QueueName: !GetAtt OrdersQueue.QueueName
        - DynamoDBCrudPolicy:
            TableName: !Ref IdempotencyTable
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt OrdersQueue.Arn
            BatchSize: 10
            FunctionResponseTypes:
              - ReportBatchItemFailures

  StreamConsumerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.from_stream
      Events:
        Orders:
          Type: Kinesis
          Properties:
            Stream: !GetAtt OrdersStream.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            FunctionResponseTypes:
              - ReportBatchItemFailures

"""

MODELS = """\
from aws_lambda_powertools.utilities.parser import BaseModel, Field


class Order(BaseModel):
    orderId: str
    quantity: int = Field(gt=0)
"""

PLACE_ORDER = """\
import os
import uuid

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.parser import parse

from models import Order

logger = Logger()
tracer = Tracer()
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(event_key_jmespath="orderId", raise_on_no_idempotency_key=True)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@idempotent(config=config, persistence_store=persistence)
def handler(event, context):
    order = parse(event=event, model=Order)
    with open(os.path.join(os.environ["OUT_DIR"], "executions.txt"), "a") as out:
        out.write(order.orderId + "\\n")
    logger.info("order placed", extra={"order_id": order.orderId})
    return {"orderId": order.orderId, "quantity": order.quantity, "receipt": uuid.uuid4().hex}
"""

CONSUMERS = """\
import os

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamRecord, SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json

from models import Order

logger = Logger()
tracer = Tracer()
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(event_key_jmespath="orderId")


class OrderMessage(SqsRecordModel):
    body: Json[Order]


queue_batches = BatchProcessor(event_type=EventType.SQS, model=OrderMessage)
stream_batches = BatchProcessor(event_type=EventType.KinesisDataStreams, model=KinesisDataStreamRecord)


def note(name, line):
    with open(os.path.join(os.environ["OUT_DIR"], name), "a") as out:
        out.write(line + "\\n")


@idempotent_function(data_keyword_argument="order", config=config, persistence_store=persistence)
def fulfil(order: Order) -> dict:
    note("fulfilled.txt", order.orderId)
    return {"fulfilled": order.orderId}


@tracer.capture_method
def on_message(record: OrderMessage) -> None:
    note("seen.txt", record.body.orderId)
    fulfil(order=record.body)


def on_shard_record(record: KinesisDataStreamRecord) -> None:
    order = Order.model_validate_json(record.kinesis.data)
    note("stream.txt", f"{record.kinesis.partitionKey} {order.orderId} {order.quantity}")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def from_queue(event, context):
    config.register_lambda_context(context)
    logger.info("batch received", extra={"records": len(event["Records"])})
    return process_partial_response(event=event, record_handler=on_message, processor=queue_batches, context=context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def from_stream(event, context):
    logger.info("batch received", extra={"records": len(event["Records"])})
    return process_partial_response(event=event, record_handler=on_shard_record, processor=stream_batches,
                                    context=context)

"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEmulator, Path]]:
    pytest.importorskip("aws_lambda_powertools.utilities.parser", reason="the test extras install aws-lambda-powertools")
    pytest.importorskip("aws_xray_sdk")
    root = tmp_path_factory.mktemp("powertools-app")
    out = root / "out"
    out.mkdir()
    (root / "template.yaml").write_text(TEMPLATE)
    src = root / "src"
    src.mkdir()
    for name, source in (("models.py", MODELS), ("place_order.py", PLACE_ORDER), ("consumers.py", CONSUMERS)):
        (src / name).write_text(textwrap.dedent(source))
    with emulator_process(root, Path("template.yaml"), "--parameter-overrides", f"OutDir={out}", "Stage=dev",
                          "--keep-alive", "600") as emulator:
        yield emulator, out


def client(emulator: RunningEmulator, service: str) -> Any:
    return boto3.client(service, endpoint_url=emulator.url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def log_lines(emulator: RunningEmulator, group: str, until: str, count: int) -> list[str]:
    """The function's CloudWatch Logs events, once `count` of them contain `until`."""
    logs = client(emulator, "logs")

    def fetch() -> list[str]:
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            found = [event["message"] for page in pages for event in page["events"]]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return found if sum(until in line for line in found) >= count else []

    found = wait_until(fetch, WAIT_S)
    assert found, f"{until!r} never reached {group}"
    return found


def assert_no_warnings(found: list[str]) -> None:
    noisy = [line for line in found if "warning" in line.lower() or "Traceback" in line]
    assert not noisy, noisy


def test_idempotency_returns_the_stored_result_and_nothing_warns(app: tuple[RunningEmulator, Path]) -> None:
    emulator, out = app
    lam = client(emulator, "lambda")

    def place(order: dict[str, Any]) -> tuple[str | None, Any]:
        response = lam.invoke(FunctionName="place-order-dev", Payload=json.dumps(order).encode())
        return response.get("FunctionError"), json.loads(response["Payload"].read())

    error, first = place({"orderId": "o-1", "quantity": 2})
    assert error is None and first["orderId"] == "o-1", first
    assert place({"orderId": "o-1", "quantity": 2}) == (None, first)  # the stored result, receipt and all
    assert lines(out / "executions.txt") == ["o-1"]  # executed once
    error, other = place({"orderId": "o-2", "quantity": 1})
    assert error is None and other["receipt"] != first["receipt"]
    assert lines(out / "executions.txt") == ["o-1", "o-2"]
    error, refused = place({"orderId": "o-3", "quantity": 0})  # the parser model refuses it
    assert error == "Unhandled" and refused["errorType"] == "ValidationError", refused
    records = client(emulator, "dynamodb").scan(TableName="idempotency-dev")["Items"]
    assert sorted(item["status"]["S"] for item in records) == ["COMPLETED", "COMPLETED"]
    found = log_lines(emulator, "/aws/lambda/place-order-dev", '"platform.report"', 4)
    assert_no_warnings([line for line in found if "ValidationError" not in line])
    placed = [json.loads(line) for line in found if '"order placed"' in line]
    assert [record["order_id"] for record in placed] == ["o-1", "o-2"]
    trace_roots = {record["xray_trace_id"] for record in placed}
    assert len(trace_roots) == 2 and all(root.startswith("1-") for root in trace_roots)
    assert any(json.loads(line).get("type") == "platform.report" for line in found if line.startswith("{"))


def test_batch_processors_with_parser_models_run_each_source_without_warnings(app: tuple[RunningEmulator, Path]) -> None:
    emulator, out = app
    sqs = client(emulator, "sqs")
    queue_url = sqs.get_queue_url(QueueName="orders-dev")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": "a", "MessageBody": json.dumps({"orderId": "q-1", "quantity": 1})},
        {"Id": "b", "MessageBody": json.dumps({"orderId": "q-2", "quantity": 3})},
    ])
    assert wait_until(lambda: sorted(lines(out / "fulfilled.txt")) == ["q-1", "q-2"], WAIT_S), lines(out / "fulfilled.txt")
    # At-least-once delivery: the same order again is seen, and idempotency skips its work.
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"orderId": "q-1", "quantity": 1}))
    assert wait_until(lambda: sorted(lines(out / "seen.txt")) == ["q-1", "q-1", "q-2"], WAIT_S), lines(out / "seen.txt")

    kinesis = client(emulator, "kinesis")
    for n in range(3):
        kinesis.put_record(StreamName="orders-dev", PartitionKey=f"customer-{n}",
                           Data=json.dumps({"orderId": f"k-{n}", "quantity": n + 1}).encode())
    assert wait_until(lambda: len(lines(out / "stream.txt")) == 3, WAIT_S), lines(out / "stream.txt")
    assert lines(out / "stream.txt") == [f"customer-{n} k-{n} {n + 1}" for n in range(3)]

    assert sorted(lines(out / "fulfilled.txt")) == ["q-1", "q-2"]  # the duplicate did no work
    for function in ("QueueConsumerFunction", "StreamConsumerFunction"):
        found = log_lines(emulator, f"/aws/lambda/{function}", "REPORT RequestId", 1)
        assert_no_warnings(found)
        received = [json.loads(line) for line in found if '"batch received"' in line]
        assert received and received[0]["cold_start"] is True, found  # Logger's context went in
    assert "Traceback" not in emulator.log
