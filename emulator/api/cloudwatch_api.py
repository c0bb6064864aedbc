"""CloudWatch's read calls, answered from the timeline on the emulator's one endpoint.

Requests signed for the `monitoring` service reach the fallback route (they match none of
the Lambda routes); GetMetricData, GetMetricStatistics and ListMetrics are answered here
(emulator/telemetry/cloudwatch.py), every other CloudWatch call goes on to the backend as
before. Each of CloudWatch's three wire protocols is spoken, as botocore sends them
(its service model lists smithy-rpc-v2-cbor, json and query:
https://github.com/boto/botocore/blob/develop/botocore/data/cloudwatch/2010-08-01/service-2.json):

* Smithy RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/<Op>`,
  `smithy-protocol: rpc-v2-cbor`, CBOR bodies, timestamps as CBOR tag 1 (what boto3 sends);
* AWS JSON 1.0: `X-Amz-Target: GraniteServiceVersion20100801.<Op>`, epoch-second timestamps;
* query: form `Action=<Op>&Version=2010-08-01&...` with `member.N` lists, XML answers and
  ISO 8601 timestamps (what older SDKs and the AWS CLI v1 send).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import cbor2
from aiohttp import web

from emulator.backend.proxy import signed_service
from emulator.errors import AwsError
from emulator.telemetry.cloudwatch import OPERATIONS, CloudWatchError, InvalidParameterValue
from emulator.telemetry.timeline import Timeline

SERVICE = "monitoring"
TARGET_PREFIX = "GraniteServiceVersion20100801"
CBOR_PATH_PREFIX = f"/service/{TARGET_PREFIX}/operation/"
XML_NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"
# Fields holding timestamps, in requests and answers of the three operations.
_REQUEST_TIMES = ("StartTime", "EndTime")
_INT_FIELDS = {"Period", "MaxDatapoints"}
_BOOL_FIELDS = {"ReturnData"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CloudWatchApi:
    def __init__(self, timeline: Timeline | None) -> None:
        self.timeline = timeline

    def wrap(self, fallback: Handler) -> Handler:
        """The fallback route: CloudWatch reads are answered here, everything else by `fallback`."""

        async def route(request: web.Request) -> web.StreamResponse:
            if self.timeline is None or signed_service(request) != SERVICE:
                return await fallback(request)
            call = await _decode(request)
            if call is None or call[1] not in OPERATIONS:
                return await fallback(request)
            protocol, operation, params = call
            bad = invalid_request(params)
            if bad is not None:
                return _error(protocol, bad)
            try:
                answer = OPERATIONS[operation](self.timeline, params)
            except CloudWatchError as error:
                return _error(protocol, error)
            return _answer(protocol, operation, answer)

        return route


# -- requests -------------------------------------------------------------------------------
async def _decode(request: web.Request) -> tuple[str, str, dict[str, Any]] | None:
    """(protocol, operation, parameters with epoch-second timestamps), or None if this is not
    a call in one of the three protocols."""
    if request.method != "POST":
        return None
    path = request.path
    if path.startswith(CBOR_PATH_PREFIX):
        operation = path[len(CBOR_PATH_PREFIX):]
        raw = await request.read()
        try:
            params = cbor2.loads(raw) if raw else {}
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError):  # bad input: answered 400
            return "cbor", operation, {"__invalid__": "The request body is not valid CBOR."}
        return "cbor", operation, _epochs(params) if isinstance(params, dict) else {}
    target = request.headers.get("X-Amz-Target", "")
    if target.startswith(TARGET_PREFIX + "."):
        raw = await request.read()
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            return "json", target.partition(".")[2], {"__invalid__": "The request body is not valid JSON."}
        return "json", target.partition(".")[2], params if isinstance(params, dict) else {}
    if request.content_type == "application/x-www-form-urlencoded":
        raw = await request.read()
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        operation = form.pop("Action", "")
        form.pop("Version", None)
        try:
            return "query", operation, _query_params(form)
        except ValueError as exc:
            return "query", operation, {"__invalid__": str(exc)}
    return None


def _epochs(value: Any) -> Any:
    """CBOR timestamps (datetimes) as epoch seconds, everywhere in a decoded body."""
    if isinstance(value, dt.datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=dt.timezone.utc).timestamp()
    if isinstance(value, dict):
        return {k: _epochs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epochs(v) for v in value]
    return value


def _query_params(form: Mapping[str, str]) -> dict[str, Any]:
    """`A.member.1.B=x` -> {"A": [{"B": "x"}]}, with the operations' numbers, booleans and times typed."""
    root: dict[str, Any] = {}
    for flat, value in form.items():
        parts = flat.split(".")
        node: Any = root
        i = 0
        while i < len(parts):
            part = parts[i]
            last = i == len(parts) - 1
            if i + 1 < len(parts) and parts[i + 1] == "member":
                if i + 2 >= len(parts) or not parts[i + 2].isdigit():
                    raise ValueError(f"malformed list parameter {flat!r}")
                items = node.setdefault(part, {})
                index = int(parts[i + 2])
                if i + 3 >= len(parts):
                    items[index] = _typed(part, value)
                    break
                node = items.setdefault(index, {})
                i += 3
                continue
            if last:
                node[part] = _typed(part, value)
            else:
                node = node.setdefault(part, {})
            i += 1
    return _lists(root)


def _lists(node: Any) -> Any:
    """The `member.N` dicts (keyed by position) as lists in order."""
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists(node[k]) for k in sorted(node)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def _typed(field: str, value: str) -> Any:
    if field in _REQUEST_TIMES:
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{field} is not an ISO 8601 timestamp: {value!r}") from None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()
    if field in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{field} is not a number: {value!r}") from None
    if field in _BOOL_FIELDS:
        return value.lower() == "true"
    return value


# -- answers --------------------------------------------------------------------------------
def _headers(protocol: str) -> dict[str, str]:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if protocol == "cbor":
        headers["smithy-protocol"] = "rpc-v2-cbor"
    return headers


def _answer(protocol: str, operation: str, answer: dict[str, Any]) -> web.Response:
    headers = _headers(protocol)
    if protocol == "cbor":
        body = cbor2.dumps(_datetimes(answer), datetime_as_timestamp=True, timezone=dt.timezone.utc)
        return web.Response(body=body, headers=headers, content_type="application/cbor")
    if protocol == "json":
        return web.Response(body=json.dumps(answer).encode(), headers=headers, content_type="application/x-amz-json-1.0")
    xml = (f'<{operation}Response xmlns="{XML_NAMESPACE}"><{operation}Result>{_xml(answer)}</{operation}Result>'
           f"<ResponseMetadata><RequestId>{headers['x-amzn-RequestId']}</RequestId></ResponseMetadata></{operation}Response>")
    return web.Response(body=xml.encode(), headers=headers, content_type="text/xml")


def _datetimes(value: Any, key: str = "") -> Any:
    """Answer timestamps (epoch seconds) as datetimes, which CBOR writes as tag 1."""
    if key in ("Timestamp", "Timestamps"):
        if isinstance(value, list):
            return [dt.datetime.fromtimestamp(v, dt.timezone.utc) for v in value]
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dict):
        return {k: _datetimes(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_datetimes(v) for v in value]
    return value


def _xml(value: Any, key: str = "") -> str:
    if isinstance(value, dict):
        if key == "ExtendedStatistics":  # a map: <entry><key/><value/></entry>
            return "".join(f"<entry><key>{escape(k)}</key><value>{_xml(v)}</value></entry>" for k, v in value.items())
        return "".join(f"<{k}>{_xml(v, k)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<member>{_xml(_iso(v) if key in ('Timestamps',) else v)}</member>" for v in value)
    if key == "Timestamp":
        return _iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _iso(epoch: Any) -> str:
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(protocol: str, error: AwsError) -> web.Response:
    headers = _headers(protocol)
    # The query-compatible error code botocore reads for CloudWatch (awsQueryCompatible).
    headers["x-amzn-query-error"] = f"{error.code};Sender"
    if protocol == "cbor":
        body = cbor2.dumps({"__type": error.code, "message": error.message})
        return web.Response(status=error.status, body=body, headers=headers, content_type="application/cbor")
    if protocol == "json":
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        return web.Response(status=error.status, body=body, headers=headers, content_type="application/x-amz-json-1.0")
    xml = (f'<ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>Sender</Type><Code>{escape(error.code)}</Code>'
           f"<Message>{escape(error.message)}</Message></Error><RequestId>{headers['x-amzn-RequestId']}</RequestId></ErrorResponse>")
    return web.Response(status=error.status, body=xml.encode(), headers=headers, content_type="text/xml")


def invalid_request(params: Mapping[str, Any]) -> InvalidParameterValue | None:
    reason = params.get("__invalid__")
    return InvalidParameterValue(str(reason)) if reason else None
