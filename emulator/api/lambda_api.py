"""HTTP handlers of the Lambda data plane and function catalogue (thin: parse, call, serialise)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import Any, Mapping

from aiohttp import web

from emulator.api.edge import MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD, payload_too_large
from emulator.errors import InvalidParameterValue, InvalidRequestContent
from emulator.api.routing import json_response, parse_json
from emulator.service.lambda_service import LambdaService, check_tenant
from emulator.api.shapes import function_configuration, get_function
from emulator.api.function_api import code_url

# ClientContext is up to 3,583 bytes of base64: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
MAX_CLIENT_CONTEXT = 3583
# Payloads above this are parsed off the event loop so big requests never stall small ones.
INLINE_JSON_LIMIT = 128 * 1024
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")
# The Invoke parameter TenantId (header X-Amz-Tenant-Id): shape TenantId in the Lambda API model
# (https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
_TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
# ListFunctions returns up to 50 functions per page unless MaxItems says otherwise:
# https://docs.aws.amazon.com/lambda/latest/api/API_ListFunctions.html
DEFAULT_LIST_MAX_ITEMS = 50


def _reject_constant(name: str) -> None:
    # Python accepts NaN and Infinity; JSON (and Lambda's parser) does not.
    raise ValueError(f"Unrecognized token '{name}'")


# One decoder for every payload: json.loads with keyword arguments builds a new one per
# call (2.2 us against 0.5 us, timeit). Invoke payloads are UTF-8 JSON.
_PAYLOAD_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(payload: bytes) -> None:
    parse_json(payload, _PAYLOAD_DECODER, what="Could not parse payload into json: ")


async def _check_json(payload: bytes) -> None:
    if len(payload) > INLINE_JSON_LIMIT:
        await asyncio.get_running_loop().run_in_executor(None, _parse_json, payload)
    else:
        _parse_json(payload)


def _check_size(invocation_type: str, size: int) -> None:
    limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
    if size > limit:
        raise payload_too_large(limit)


def _tenant_id(header: str | None) -> str | None:
    if header is None:
        return None
    if not _TENANT_ID.fullmatch(header):
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{header[:256]}' at 'tenantId' failed to satisfy constraint: Member "
            "must satisfy regular expression pattern: [a-zA-Z0-9\\._:\\/=+\\-@ ]+ and have length between 1 and 256")
    return header


def _client_context(header: str | None) -> dict[str, Any] | None:
    if not header:
        return None
    if len(header) > MAX_CLIENT_CONTEXT:
        raise InvalidRequestContent(f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes of base64.")
    try:
        value = json.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.") from None
    if not isinstance(value, dict):
        raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
    return value


class LambdaApi:
    def __init__(self, service: LambdaService) -> None:
        self.service = service

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/2015-03-31/functions/{name}/invocations", self.invoke),
            web.get("/2015-03-31/functions/", self.list_functions),
            web.get("/2015-03-31/functions", self.list_functions),
            web.get("/2015-03-31/functions/{name}", self.get_function),
            web.get("/2015-03-31/functions/{name}/configuration", self.get_function_configuration),
        ]

    async def invoke(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_SYNC_PAYLOAD:
            _check_size(request.headers.get("X-Amz-Invocation-Type", "RequestResponse"), request.content_length)
        status, headers, body = await self.invoke_parts(
            request.match_info["name"], request.query.get("Qualifier"), request.headers, await request.read()
        )
        return web.Response(status=status, body=body or None, headers=headers)

    async def invoke_parts(self, raw_name: str, qualifier: str | None, headers: Mapping[str, str], payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """Invoke from the parts of an HTTP request; shared by aiohttp and the fast path
        (emulator/api/fast_invoke.py). `headers` must be case-insensitive or lower-case keyed."""
        service = self.service
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )
        log_type = headers.get("x-amz-log-type", "None")
        if log_type not in LOG_TYPES:
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Tail, None]"
            )
        version, name_qualifier = service.registry.resolve_qualified(raw_name, qualifier)
        _check_size(invocation_type, len(payload))
        if not payload:
            payload = b"{}"  # boto3 without Payload: the handler receives an empty object
        else:
            await _check_json(payload)
        client_context = _client_context(headers.get("x-amz-client-context"))
        tenant_id = _tenant_id(headers.get("x-amz-tenant-id"))
        check_tenant(version, tenant_id)
        trace = headers.get("x-amzn-trace-id")
        if invocation_type == "DryRun":
            return 204, {}, b""
        if invocation_type == "Event":
            request_id = service.submit_async(version, payload, qualifier=name_qualifier, tenant_id=tenant_id, trace_header=trace)
            return 202, {"x-amzn-RequestId": request_id}, b""
        result = await service.invoke(
            version,
            payload,
            qualifier=name_qualifier,
            client_context=client_context,
            log_tail=log_type == "Tail",
            trace_header=trace,
            tenant_id=tenant_id,
        )
        out = {"Content-Type": "application/json", "X-Amz-Executed-Version": result.executed_version, "x-amzn-RequestId": result.request_id}
        if result.function_error:
            out["X-Amz-Function-Error"] = result.function_error
        if result.log_result is not None:
            out["X-Amz-Log-Result"] = result.log_result
        return 200, out, result.payload

    async def get_function(self, request: web.Request) -> web.Response:
        function, version = self._lookup(request)
        lifecycle = function.lifecycle if version is function.latest else None
        return json_response(get_function(version, self.service.ledger.reserved(version.name),
                                          code_url=code_url(request, version), tags=function.tags, lifecycle=lifecycle))

    async def get_function_configuration(self, request: web.Request) -> web.Response:
        function, version = self._lookup(request)
        return json_response(function_configuration(version, function.lifecycle if version is function.latest else None))

    def _lookup(self, request: web.Request) -> tuple[Any, Any]:
        registry = self.service.registry
        raw_name, qualifier = request.match_info["name"], request.query.get("Qualifier")
        version = registry.resolve(raw_name, qualifier)
        return registry.get(raw_name)[0], version

    async def list_functions(self, request: web.Request) -> web.Response:
        registry = self.service.registry
        names = sorted(registry.functions)
        marker = request.query.get("Marker")
        try:
            max_items = int(request.query.get("MaxItems", DEFAULT_LIST_MAX_ITEMS))
        except ValueError:
            raise InvalidParameterValue("MaxItems must be an integer between 1 and 10000.") from None
        if not 1 <= max_items <= 10_000:
            raise InvalidParameterValue("MaxItems must be an integer between 1 and 10000.")
        start = 0
        if marker:
            if marker not in registry.functions:
                raise InvalidParameterValue(f"Invalid marker: {marker}")
            start = names.index(marker)
        page = names[start : start + max_items]
        body: dict[str, Any] = {"Functions": [function_configuration(registry.functions[n].latest, registry.functions[n].lifecycle)
                                              for n in page]}
        if start + max_items < len(names):
            body["NextMarker"] = names[start + max_items]
        return json_response(body)

