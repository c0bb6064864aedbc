"""A short path through moto's server for DynamoDB and DynamoDB Streams calls.

moto serves every request through Flask, a generic request set-up (form parsing, an
`inspect.getmembers` of the handler class per call) and only then its DynamoDB handler: for
a PutItem that is ~1.2 ms of ~1.8 ms (docs/benchmarks.md, "DynamoDB"), so a table took
~630 writes/s. For DynamoDB's JSON calls this path builds moto's own `DynamoHandler` with
what its set-up would give it (headers, Region, account, the parameters parsed by moto's
model-driven parser) and calls moto's own `call_action`, so validation, the operation,
errors and the serialised answer are moto's; the capacity layer
(emulator/moto_child/ddb_capacity_layer.py) wraps the handler's methods on both paths.

For DynamoDB Streams, GetShardIterator and GetRecords are answered from the stream store
(emulator/moto_child/ddb_streams.py): GetRecords joins the records' ready-made JSON. A call
the store refuses (an expired or unknown iterator, a stream that is not enabled, ...) is
handed, untouched, to moto's normal path, which runs the same checks and writes moto's
error. So is anything else: another service or protocol, a body that is not JSON framed by
a Content-Length, IAM authorization or request recording switched on. Imported only inside
moto's process.
"""

from __future__ import annotations

import http
import io
import json
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

from moto import settings
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.responses import DynamoHandler
from moto.iam.models import mark_account_as_visited
from moto.moto_api import recorder
from moto.utilities.utils import get_partition
from werkzeug.datastructures import EnvironHeaders

from emulator.moto_child import ddb_streams
from emulator.moto_child.short_path import read_body

DYNAMODB_PREFIX = "DynamoDB_20120810."
STREAMS_PREFIX = "DynamoDBStreams_20120810."
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
# DynamoDB calls this path serves: the data plane (moto's handler methods run unchanged).
SHORT_PATH_ACTIONS = frozenset({
    "PutItem", "GetItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "BatchGetItem", "Query", "Scan",
    "TransactWriteItems", "TransactGetItems", "DescribeTable",
})
STREAM_ACTIONS = frozenset({"GetShardIterator", "GetRecords"})


class _NotShort(Exception):
    """This request takes moto's normal path."""


class _RequestView:
    """What moto's parameter parser and region lookup read of a request."""

    def __init__(self, headers: EnvironHeaders, body: bytes, content_type: str) -> None:
        self.method = "POST"
        self.values: dict[str, Any] = {}
        self.headers = headers
        self.data = body
        self.path = "/"
        self.content_type = content_type


def _full_url(environ: dict[str, Any]) -> str:
    path = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{path}"


def dynamodb_handler(environ: dict[str, Any], body: bytes) -> DynamoHandler:
    """A DynamoHandler set up as BaseResponse.setup_class would set it up for this request."""
    handler = DynamoHandler()
    headers = EnvironHeaders(environ)
    full_url = _full_url(environ)
    request = _RequestView(headers, body, environ.get("CONTENT_TYPE", JSON_CONTENT_TYPE))
    handler.is_werkzeug_request = True
    handler.normalized_request = request  # type: ignore[assignment]
    handler.parsed_url = urlparse(full_url)
    handler.uri = full_url
    handler.path = handler.parsed_url.path
    handler.raw_path = handler.path
    handler.raw_body = body
    handler.body = body.decode("utf-8")
    handler.querystring = {}
    handler.data = {}
    handler.method = "POST"
    handler.headers = headers
    handler.region = handler.get_region_from_url(request, full_url)
    handler.partition = get_partition(handler.region)
    handler.uri_match = {}
    handler.response_headers = {"server": "amazon.com"}
    handler.parse_parameters(request)  # type: ignore[arg-type]
    handler.access_key = handler.get_access_key()
    handler.current_account = handler.get_current_account()
    mark_account_as_visited(account_id=handler.current_account, access_key=handler.access_key,
                            service=handler.service_name, region=handler.region)
    return handler


def serve_dynamodb(environ: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any], bytes]:
    try:
        handler = dynamodb_handler(environ, body)
    except Exception:  # a body moto's parser refuses: its normal path answers it, as it would
        raise _NotShort() from None
    status, headers, payload = handler.call_action()
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    return int(status), dict(headers), data


def serve_streams(environ: dict[str, Any], action: str, body: bytes) -> bytes:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise _NotShort() from None
    if not isinstance(request, dict):
        raise _NotShort()
    headers = EnvironHeaders(environ)
    backend = dynamodb_backends[_account(headers)][_region(environ, headers)]
    if action == "GetShardIterator":
        sequence = request.get("SequenceNumber")
        token = ddb_streams.new_iterator(backend, request.get("StreamArn"), request.get("ShardId"),
                                         request.get("ShardIteratorType"), None if sequence is None else str(sequence))
        return json.dumps({"ShardIterator": token}).encode()
    records, following = ddb_streams.read(backend, request.get("ShardIterator"), request.get("Limit"))
    return ('{"Records":[' + ",".join(records) + '],"NextShardIterator":' + json.dumps(following) + "}").encode()


def _account(headers: EnvironHeaders) -> str:
    handler = DynamoHandler()
    handler.headers = headers
    handler.querystring = {}
    return handler.get_current_account()


def _region(environ: dict[str, Any], headers: EnvironHeaders) -> str:
    handler = DynamoHandler()
    return handler.get_region_from_url(_RequestView(headers, b"", JSON_CONTENT_TYPE), _full_url(environ))


class DynamoDBShortPath:
    def route(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """("dynamodb" | "streams", action) when this path serves the request, else None."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(DYNAMODB_PREFIX):
            kind, action = "dynamodb", target[len(DYNAMODB_PREFIX):]
            if action not in SHORT_PATH_ACTIONS:
                return None
        elif target.startswith(STREAMS_PREFIX):
            kind, action = "streams", target[len(STREAMS_PREFIX):]
            if action not in STREAM_ACTIONS:
                return None
        else:
            return None
        if environ.get("REQUEST_METHOD") != "POST" or not environ.get("CONTENT_TYPE", "").startswith(JSON_CONTENT_TYPE):
            return None
        if not str(environ.get("CONTENT_LENGTH", "")).isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        if environ.get("HTTP_CONTENT_ENCODING"):
            return None  # gzip bodies: moto's path decompresses them
        if settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf") or recorder._user_enabled:
            return None
        return kind, action

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any], kind: str,
              action: str) -> Iterable[bytes] | None:
        body = read_body(environ)
        try:
            if kind == "dynamodb":
                status, headers, data = serve_dynamodb(environ, body)
            else:
                status, headers, data = 200, {"Content-Type": JSON_CONTENT_TYPE, "server": "amazon.com"}, \
                    serve_streams(environ, action, body)
        except (_NotShort, JsonRESTError):
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        headers.pop("status", None)
        headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
        out = [(str(name), str(value)) for name, value in headers.items() if name.lower() != "content-length"]
        out += [("Content-Length", str(len(data))), ("Access-Control-Allow-Origin", "*")]  # what moto's CORS adds
        start_response(f"{status} {http.HTTPStatus(status).phrase}", out)
        return [data]


def dispatcher_call(normal_call: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves the short path first."""
    short_path = DynamoDBShortPath()

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        route = short_path.route(environ)
        if route is not None:
            served = short_path.serve(environ, start_response, *route)
            if served is not None:
                return served
        return normal_call(self, environ, start_response)

    return __call__
