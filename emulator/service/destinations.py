"""Delivery of async invocation records and dead letters to their targets.

SQS and SNS receive the record as the message body; a Lambda function receives it as its
(asynchronous) event; EventBridge receives it as `detail` with source "lambda"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
One attempt per call: callers retry failed deliveries on the schedule of
emulator/policy/delivery_retry.py (the async queue on its timers, a Kinesis mapping through
emulator/service/delivery_retries.py).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from emulator.policy.async_retry import DestinationCondition
from emulator.backend.client import BackendClient, arn_parts

if TYPE_CHECKING:
    from emulator.functions.registry import FunctionVersion

log = logging.getLogger("emulator.service.destinations")

# EventBridge detail-type of an invocation record
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
EVENTBRIDGE_DETAIL_TYPES = {
    DestinationCondition.SUCCESS: "Lambda Function Invocation Result - Success",
    DestinationCondition.RETRIES_EXHAUSTED: "Lambda Function Invocation Result - Failure",
    DestinationCondition.EVENT_AGE_EXCEEDED: "Lambda Function Invocation Result - Failure",
}


class DeliveryFailed(Exception):
    """One delivery attempt failed; the message says why (for the log)."""


class Destinations:
    def __init__(
        self,
        backend: BackendClient | None,
        submit_lambda: Callable[["FunctionVersion", bytes], Any],
        resolve_lambda: Callable[[str], "FunctionVersion"],
    ) -> None:
        self.backend = backend
        self._submit_lambda = submit_lambda
        self._resolve_lambda = resolve_lambda

    async def deliver_record(self, target: str, record: dict[str, Any], condition: DestinationCondition) -> None:
        """Send an invocation record to an on-success / on-failure destination, once."""
        body = json.dumps(record)
        try:
            service = arn_parts(target)[0]
            if service == "lambda":
                self._submit_lambda(self._resolve_lambda(target), body.encode())
                return
            if service == "events":
                resources = [record["requestContext"]["functionArn"], target]
                await self._backend().put_event(target, "lambda", EVENTBRIDGE_DETAIL_TYPES[condition], record, resources)
                return
        except Exception as exc:  # backend errors, unknown targets, an AWS error resolving a function
            raise DeliveryFailed(f"destination {target}: {exc}") from exc
        await self.deliver_raw(target, body, None)

    async def deliver_raw(self, target: str, body: str, attributes: dict[str, tuple[str, str]] | None) -> None:
        """Send `body` to an SQS queue or SNS topic, once; raises DeliveryFailed."""
        try:
            service, _, _, resource = arn_parts(target)
            if service == "sqs":
                if resource.endswith(".fifo"):
                    # FIFO queues and topics are not supported as destinations
                    # (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
                    raise ValueError("FIFO queues are not supported as destinations")
                await self._backend().sqs_send(target, body, attributes)
            elif service == "sns":
                if resource.endswith(".fifo"):
                    raise ValueError("FIFO topics are not supported as destinations")
                await self._backend().sns_publish(target, body, attributes)
            else:
                raise ValueError(f"unsupported destination service {service!r}")
        except Exception as exc:  # delivery never takes the caller down
            raise DeliveryFailed(f"destination {target}: {exc}") from exc

    def _backend(self) -> BackendClient:
        if self.backend is None:
            raise ValueError("no AWS backend is running (start the emulator with moto, or pass --aws-endpoint)")
        return self.backend
