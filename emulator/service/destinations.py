"""Delivery of async invocation records and dead letters to their targets (aws-semantics §5).

SQS and SNS receive the record as the message body; a Lambda function receives it as its
(asynchronous) event; EventBridge receives it as `detail` with source "lambda" (S19).
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

# aws-semantics §5 (S19): EventBridge detail-type of a destination record.
EVENTBRIDGE_DETAIL_TYPES = {
    DestinationCondition.SUCCESS: "Lambda Function Invocation Result - Success",
    DestinationCondition.RETRIES_EXHAUSTED: "Lambda Function Invocation Result - Failure",
    DestinationCondition.EVENT_AGE_EXCEEDED: "Lambda Function Invocation Result - Failure",
}


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

    async def send_record(self, target: str, record: dict[str, Any], condition: DestinationCondition) -> bool:
        body = json.dumps(record)
        try:
            service = arn_parts(target)[0]
            if service == "lambda":
                self._submit_lambda(self._resolve_lambda(target), body.encode())
                return True
            if service == "events":
                resources = [record["requestContext"]["functionArn"], target]
                await self._backend().put_event(target, "lambda", EVENTBRIDGE_DETAIL_TYPES[condition], record, resources)
                return True
            return await self.send_raw(target, body, None)
        except Exception as exc:  # backend errors, unknown targets, an AWS error resolving a function
            log.warning("destination %s: %s", target, exc)
            return False

    async def send_raw(self, target: str, body: str, attributes: dict[str, tuple[str, str]] | None) -> bool:
        try:
            service, _, _, resource = arn_parts(target)
            if service == "sqs":
                if resource.endswith(".fifo"):
                    # aws-semantics §5 (S19): FIFO queues are not supported as destinations.
                    raise ValueError("FIFO queues are not supported as destinations")
                await self._backend().sqs_send(target, body, attributes)
            elif service == "sns":
                if resource.endswith(".fifo"):
                    raise ValueError("FIFO topics are not supported as destinations")
                await self._backend().sns_publish(target, body, attributes)
            else:
                raise ValueError(f"unsupported destination service {service!r}")
            return True
        except Exception as exc:  # delivery never takes the async queue down
            log.warning("destination %s: %s", target, exc)
            return False

    def _backend(self) -> BackendClient:
        if self.backend is None:
            raise ValueError("no AWS backend is running (start the emulator with moto, or pass --aws-endpoint)")
        return self.backend
