"""The pollers' way in to the Lambda service (the `InvokePort` of sources/base.py).

A batch is invoked like any other synchronous invocation: the function is resolved by the
mapping's ARN (qualified by a version or alias, or not), then admitted and run by
`LambdaService.invoke`, so reserved and account concurrency, the scaling rate, throttles
and metrics are the same for a poller as for any caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.sources.base import BatchResult

if TYPE_CHECKING:
    from emulator.service.lambda_service import LambdaService


class LambdaInvokePort:
    def __init__(self, service: "LambdaService") -> None:
        self.service = service

    async def invoke(self, function_arn: str, payload: bytes) -> BatchResult:
        version, qualifier = self.service.registry.resolve_qualified(function_arn)
        result = await self.service.invoke(version, payload, qualifier=qualifier)
        return BatchResult(result.payload, result.function_error, result.executed_version)

    async def timeout_s(self, function_arn: str) -> float:
        return float(self.service.registry.resolve(function_arn).spec.timeout_s)
