"""Writes a batch of orders to the table named in the event, one PutItem each.

Retries are off so that every throttled write is counted (with the SDK's default retries,
throttling shows up as slower writes and, past 10 attempts, as errors)."""

import os
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException"}
dynamodb = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))


def handler(event, context):
    written = throttled = 0
    for index in range(int(event.get("count", 10))):
        item = {"pk": {"S": str(uuid.uuid4())}, "amount": {"N": str(100 + index)}, "store": {"S": "store-1"}}
        try:
            dynamodb.put_item(TableName=event["table"], Item=item)
            written += 1
        except ClientError as error:
            if error.response["Error"]["Code"] not in THROTTLED:
                raise
            throttled += 1
    return {"written": written, "throttled": throttled, "pid": os.getpid()}
