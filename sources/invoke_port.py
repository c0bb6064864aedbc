"""The pollers' way in to the Lambda service (the `InvokePort` of sources/base.py).

A batch is invoked like any other synchronous invocation: the function is resolved by the
mapping's ARN (qualified by a version or alias, or not), then admitted and run by
`LambdaService.invoke`, so reserved and account concurrency, the scaling rate, throttles
and metrics are the same for a poller as for any caller.

The pollers run in the poller process, so the port has two halves joined by the channel
(sources/channel.py): `ChannelInvokePort` in the poller process asks, `serve_invoke_port`
answers in the control plane with the `LambdaInvokePort`. An answer is plain data (what
ran, or why nothing did), and the asking half turns it back into the result or the typed
AWS error the poller handles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from emulator.errors import AwsError, TooManyRequests
from emulator.sources.base import BatchResult, InvokePort

if TYPE_CHECKING:
    from emulator.service.lambda_service import LambdaService
    from emulator.sources.channel import Channel

# Answer kinds on the channel.
RAN, THROTTLED, REFUSED = "ran", "throttled", "refused"


class LambdaInvokePort:
    def __init__(self, service: "LambdaService") -> None:
        self.service = service

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        version, qualifier = self.service.registry.resolve_qualified(function_arn)
        result = await self.service.invoke(version, payload, qualifier=qualifier)
        return BatchResult(result.payload, result.function_error, result.executed_version)

    async def timeout_s(self, function_arn: str) -> float:
        return float(self.service.registry.resolve(function_arn).spec.timeout_s)


def serve_invoke_port(port: InvokePort) -> dict[str, Callable[..., Awaitable[Any]]]:
    """The control plane's channel handlers for the poller process's InvokePort calls."""

    async def invoke(function_arn: str, payload: bytes) -> tuple[Any, ...]:
        try:
            result = await port.invoke(function_arn, payload)
        except TooManyRequests as exc:
            return (THROTTLED, exc.reason)
        except AwsError as exc:
            return (REFUSED, exc.code, exc.status, exc.message)
        return (RAN, result.payload, result.function_error, result.executed_version)

    async def timeout_s(function_arn: str) -> tuple[Any, ...]:
        try:
            return (RAN, await port.timeout_s(function_arn))
        except AwsError as exc:
            return (REFUSED, exc.code, exc.status, exc.message)

    return {"invoke": invoke, "timeout_s": timeout_s}


class ChannelInvokePort:
    """The InvokePort in the poller process: every call is answered by the control plane."""

    def __init__(self, channel: "Channel") -> None:
        self.channel = channel

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        answer = await self.channel.call("invoke", function_arn, payload)
        if answer[0] == RAN:
            return BatchResult(*answer[1:])
        raise _error(answer)

    async def timeout_s(self, function_arn: str) -> float:
        answer = await self.channel.call("timeout_s", function_arn)
        if answer[0] == RAN:
            return float(answer[1])
        raise _error(answer)


def _error(answer: tuple[Any, ...]) -> AwsError:
    if answer[0] == THROTTLED:
        return TooManyRequests(answer[1])
    _, code, status, message = answer
    error = AwsError(message)
    error.code, error.status = code, status  # the class's code and status, as data
    return error
