"""One asynchronous event as the queue keeps it, and what is sent about it: the invocation
record of a destination and the message of a dead-letter queue
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from emulator.functions.registry import FunctionVersion
from emulator.policy.async_retry import DestinationCondition, EventState, Outcome

# A dead letter's ErrorMessage attribute carries the first 1 KB of the error message
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
DLQ_ERROR_MESSAGE_BYTES = 1024


@dataclass
class AsyncEvent:
    request_id: str
    version: FunctionVersion
    qualifier: str | None
    payload: bytes
    state: EventState
    # What the last attempt returned, for the destination record.
    status_code: int = 0
    function_error: str | None = None
    response: bytes | None = None
    error_message: str = ""
    last_outcome: Outcome | None = None  # None until an attempt ends (why it failed: DropReason)
    # What the Invoke request named, for every attempt (None: not given).
    tenant_id: str | None = None
    trace_header: str | None = None

    @property
    def function(self) -> str:
        return self.version.name


def invocation_record(event: AsyncEvent, condition: DestinationCondition, wall: float) -> dict[str, Any]:
    """The record an on-success / on-failure destination receives; `wall` is its timestamp."""
    version = event.version
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}Z",
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{version.function_arn}:{event.qualifier or version.version}",
            "condition": str(condition),
            "approximateInvokeCount": event.state.function_attempts,
        },
        "requestPayload": json_or_text(event.payload),
        "responseContext": {"statusCode": event.status_code, "executedVersion": version.version},
    }
    if event.function_error:
        record["responseContext"]["functionError"] = event.function_error
    if event.response is not None:
        record["responsePayload"] = json_or_text(event.response)
    return record


def dead_letter_body(event: AsyncEvent) -> str:
    """A DLQ receives only the event itself."""
    return event.payload.decode("utf-8", "replace")


def dead_letter_attributes(event: AsyncEvent) -> dict[str, tuple[str, str]]:
    message = event.error_message.encode()[:DLQ_ERROR_MESSAGE_BYTES].decode("utf-8", "ignore")
    return {
        "RequestID": ("String", event.request_id),
        "ErrorCode": ("Number", str(event.status_code or 200)),
        "ErrorMessage": ("String", message or "Unknown"),
    }


def json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def error_message(payload: bytes) -> str:
    value = json_or_text(payload)
    if isinstance(value, dict):
        return str(value.get("errorMessage", ""))
    return str(value)
