"""A small async client for the backing AWS services (moto, or any --aws-endpoint).

The control plane needs only a handful of calls (send to a queue, publish to a topic,
put an event), so it speaks the wire protocols directly with aiohttp instead of running
boto3 on the event loop. moto does not check signatures; a dummy SigV4-shaped header is
sent so that it routes each request to the right service.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

DUMMY_ACCESS_KEY = "AKIAEMULATORLOCAL000"


class BackendError(RuntimeError):
    def __init__(self, service: str, status: int, body: str) -> None:
        super().__init__(f"{service} answered {status}: {body[:300]}")
        self.service = service
        self.status = status
        self.body = body


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
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def json_call(self, service: str, target: str, body: dict[str, Any], content_type: str = "application/x-amz-json-1.0") -> dict[str, Any]:
        headers = {
            "X-Amz-Target": target,
            "Content-Type": content_type,
            "Authorization": _auth(service, self.region),
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        async with self._http().post(self.endpoint_url + "/", data=json.dumps(body), headers=headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise BackendError(service, response.status, text)
            return json.loads(text) if text else {}

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

    # -- SNS (query protocol) ----------------------------------------------------------
    async def sns_publish(self, topic_arn: str, message: str, attributes: dict[str, tuple[str, str]] | None = None) -> None:
        params = {"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic_arn, "Message": message}
        for index, (name, (data_type, value)) in enumerate((attributes or {}).items(), start=1):
            params[f"MessageAttributes.entry.{index}.Name"] = name
            params[f"MessageAttributes.entry.{index}.Value.DataType"] = data_type
            params[f"MessageAttributes.entry.{index}.Value.StringValue"] = value
        await self.query_call("sns", params)

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
