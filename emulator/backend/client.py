"""A small async client for the backing AWS services (moto, or any --aws-endpoint).

The control plane needs only a handful of calls (send to a queue, publish to a topic,
put an event), so it speaks the wire protocols directly with aiohttp instead of running
boto3 on the event loop. moto does not check signatures; a dummy SigV4-shaped header is
sent so that it routes each request to the right service.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

DUMMY_ACCESS_KEY = "AKIAEMULATORLOCAL000"
_XML_CODE_RE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE_RE = re.compile(r"<Message>([^<]*)</Message>")
# Event-source pollers hold one long poll each (up to 1,000 per SQS mapping:
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html), so the pool must
# not be the bottleneck; aiohttp's default is 100.
MAX_CONNECTIONS = 2000
# What a call raises when the backend cannot be reached or drops the connection (stopped,
# restarting, killed mid-request: aiohttp's ServerDisconnectedError is a ClientError but not
# an OSError), as opposed to BackendError, an answer. Callers that retry catch both.
UNREACHABLE: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class BackendError(RuntimeError):
    def __init__(self, service: str, status: int, body: str) -> None:
        super().__init__(f"{service} answered {status}: {body[:300]}")
        self.service = service
        self.status = status
        self.body = body

    @property
    def code(self) -> str:
        """The AWS error code: `__type` of a JSON error, `<Code>` of an XML one ("" if none)."""
        try:
            value = json.loads(self.body)
        except ValueError:
            match = _XML_CODE_RE.search(self.body)
            return match.group(1) if match else ""
        raw = str(value.get("__type") or value.get("code") or "") if isinstance(value, dict) else ""
        return raw.rsplit("#", 1)[-1]

    @property
    def message(self) -> str:
        try:
            value = json.loads(self.body)
        except ValueError:
            match = _XML_MESSAGE_RE.search(self.body)
            return match.group(1) if match else self.body[:300]
        if isinstance(value, dict):
            return str(value.get("message") or value.get("Message") or self.body[:300])
        return self.body[:300]


def _auth(service: str, region: str) -> str:
    day = time.strftime("%Y%m%d", time.gmtime())
    return (
        f"AWS4-HMAC-SHA256 Credential={DUMMY_ACCESS_KEY}/{day}/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0"
    )


def arn_parts(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[2], parts[3], parts[4], parts[5]


class BackendClient:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS), timeout=aiohttp.ClientTimeout(total=30)
            )
        return self._session

    async def json_call(self, service: str, target: str, body: dict[str, Any] | bytes, content_type: str = "application/x-amz-json-1.0") -> dict[str, Any]:
        """`body` is the request object, or its JSON already encoded."""
        headers = {
            "X-Amz-Target": target,
            "Content-Type": content_type,
            "Authorization": _auth(service, self.region),
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        data = body if isinstance(body, bytes) else json.dumps(body)
        async with self._http().post(self.endpoint_url + "/", data=data, headers=headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise BackendError(service, response.status, text)
            return json.loads(text) if text else {}

    async def get_json(self, path: str) -> Any:
        """GET one of the moto child's own endpoints (e.g. /_emulator/dynamodb-capacity)."""
        async with self._http().get(self.endpoint_url + path) as response:
            text = await response.text()
            if response.status >= 300:
                raise BackendError("emulator", response.status, text)
            return json.loads(text)

    async def query_call(self, service: str, params: dict[str, str]) -> str:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": _auth(service, self.region),
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        async with self._http().post(self.endpoint_url + "/", data=urlencode(params), headers=headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise BackendError(service, response.status, text)
            return text

    async def timeline_metrics(self) -> dict[str, Any] | None:
        """The moto child's queue and stream figures for the timeline
        (emulator/moto_child/queue_metrics.py); None from a backend without them."""
        async with self._http().get(self.endpoint_url + "/_emulator/backend-metrics") as response:
            if response.status != 200:
                return None
            body = await response.read()
        value = json.loads(body)
        return value if isinstance(value, dict) else None

    # -- SQS (JSON protocol) -----------------------------------------------------------
    async def sqs(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json_call("sqs", f"AmazonSQS.{action}", body)

    async def queue_url(self, queue_arn: str) -> str:
        _, _, account, name = arn_parts(queue_arn)
        result = await self.sqs("GetQueueUrl", {"QueueName": name, "QueueOwnerAWSAccountId": account})
        return result["QueueUrl"]

    async def sqs_send(self, queue_arn: str, body: str, attributes: dict[str, tuple[str, str]] | None = None) -> None:
        request: dict[str, Any] = {"QueueUrl": await self.queue_url(queue_arn), "MessageBody": body}
        if attributes:
            request["MessageAttributes"] = {k: {"DataType": t, "StringValue": v} for k, (t, v) in attributes.items()}
        await self.sqs("SendMessage", request)

    async def sqs_queue_attributes(self, queue_url: str, names: list[str] | None = None) -> dict[str, str]:
        result = await self.sqs("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names or ["All"]})
        return result.get("Attributes", {})

    async def sqs_receive(self, queue_url: str, max_messages: int, wait_s: int, visibility_timeout: int | None = None) -> list[dict[str, Any]]:
        """ReceiveMessage with every system and message attribute (what Lambda's event carries)."""
        request: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_s,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            request["VisibilityTimeout"] = visibility_timeout
        return (await self.sqs("ReceiveMessage", request)).get("Messages", [])

    async def sqs_delete_batch(self, queue_url: str, receipt_handles: list[str]) -> dict[str, str]:
        """Delete by receipt handle, 10 per call (the SQS batch limit); returns the handles that
        failed, each with its error code (e.g. ReceiptHandleIsInvalid: the message was received
        again since, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html)."""
        failed: dict[str, str] = {}
        for start in range(0, len(receipt_handles), 10):
            by_id = {str(i): h for i, h in enumerate(receipt_handles[start : start + 10])}
            entries = [{"Id": i, "ReceiptHandle": h} for i, h in by_id.items()]
            result = await self.sqs("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
            for entry in result.get("Failed", []):
                handle = by_id.get(entry.get("Id"))
                if handle is not None:
                    failed[handle] = str(entry.get("Code", ""))
        return failed

    # -- SNS (query protocol) ----------------------------------------------------------
    async def sns(self, action: str, params: dict[str, str]) -> str:
        return await self.query_call("sns", {"Action": action, "Version": "2010-03-31", **params})

    async def sns_publish(self, topic_arn: str, message: str, attributes: dict[str, tuple[str, str]] | None = None) -> None:
        params = {"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic_arn, "Message": message}
        for index, (name, (data_type, value)) in enumerate((attributes or {}).items(), start=1):
            params[f"MessageAttributes.entry.{index}.Name"] = name
            params[f"MessageAttributes.entry.{index}.Value.DataType"] = data_type
            params[f"MessageAttributes.entry.{index}.Value.StringValue"] = value
        await self.query_call("sns", params)

    # -- Kinesis (JSON 1.1 protocol) -------------------------------------------------------
    async def kinesis(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json_call("kinesis", f"Kinesis_20131202.{action}", body, "application/x-amz-json-1.1")

    async def kinesis_list_shards(self, stream_arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamARN": stream_arn}
        while True:
            result = await self.kinesis("ListShards", request)
            shards.extend(result.get("Shards", []))
            token = result.get("NextToken")
            if not token:
                return shards
            request = {"NextToken": token}

    async def kinesis_shard_iterator(
        self, stream_arn: str, shard_id: str, iterator_type: str, *, sequence_number: str | None = None, timestamp: float | None = None
    ) -> str:
        request: dict[str, Any] = {"StreamARN": stream_arn, "ShardId": shard_id, "ShardIteratorType": iterator_type}
        if sequence_number is not None:
            request["StartingSequenceNumber"] = sequence_number
        if timestamp is not None:
            request["Timestamp"] = timestamp
        return (await self.kinesis("GetShardIterator", request))["ShardIterator"]

    async def kinesis_get_records(self, stream_arn: str, shard_iterator: str, limit: int) -> dict[str, Any]:
        """Records (Data base64 as on the wire), NextShardIterator, MillisBehindLatest."""
        return await self.kinesis("GetRecords", {"StreamARN": stream_arn, "ShardIterator": shard_iterator, "Limit": limit})

    # -- DynamoDB (JSON 1.0) and S3 (REST) ---------------------------------------------------
    async def dynamodb(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json_call("dynamodb", f"DynamoDB_20120810.{action}", body)

    async def dynamodb_streams(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """DynamoDB Streams (JSON 1.0; signed for "dynamodb", as the SDKs sign it)."""
        return await self.json_call("dynamodb", f"DynamoDBStreams_20120810.{action}", body)

    async def s3_create_bucket(self, bucket: str) -> None:
        """CreateBucket, path style; a LocationConstraint outside us-east-1 (S3 API rule)."""
        body = b""
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        headers = {
            "Authorization": _auth("s3", self.region),
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
        }
        async with self._http().put(f"{self.endpoint_url}/{bucket}", data=body, headers=headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise BackendError("s3", response.status, text)

    async def s3_get_object(self, bucket: str, key: str, version: str | None = None, limit: int | None = None) -> bytes:
        """GetObject, path style; BackendError for an answer that is not 200 (its XML code:
        NoSuchBucket, NoSuchKey, ...), ValueError for an object over `limit` bytes."""
        headers = {"Authorization": _auth("s3", self.region), "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                   "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
        params = {"versionId": version} if version else None
        url = f"{self.endpoint_url}/{quote(bucket, safe='')}/{quote(key, safe='/')}"
        async with self._http().get(url, headers=headers, params=params) as response:
            if response.status != 200:
                raise BackendError("s3", response.status, await response.text())
            if limit is not None and (response.content_length or 0) > limit:
                raise ValueError(f"the object is {response.content_length} bytes")
            return await response.read()

    # -- EventBridge -------------------------------------------------------------------
    async def put_event(self, bus_arn: str, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus_arn, "Resources": resources}
        result = await self.json_call("events", "AWSEvents.PutEvents", {"Entries": [entry]}, "application/x-amz-json-1.1")
        if result.get("FailedEntryCount"):
            raise BackendError("events", 400, json.dumps(result))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
