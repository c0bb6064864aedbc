"""A short path through moto's server for the Kinesis calls a busy stream makes most.

moto serves every request through Flask, a generic request set-up and a generic,
model-driven serializer that walks the output shape member by member: for a PutRecords of
500 records that is more than half of a ~25 ms request (docs/backend.md, "Kinesis").
For PutRecords, PutRecord, GetShardIterator and GetRecords in the JSON protocol, this path
reads the body with `json.loads` (moto's KinesisResponse reads it the same way), finds the
backend as moto does (region and account from the request), calls the same stream
operations moto's path calls here (emulator/moto_child/kinesis_stream.py), and writes the
result with `json.dumps` in the keys and order moto's serializer writes.

A request these operations reject (an unknown stream, a bad iterator, too many records,
...) is handed, untouched, to moto's normal path, which runs the same checks (they raise
before anything is stored) and writes moto's own error response. So does anything else:
another service or protocol, a body that is not a JSON object, IAM authorization or
request recording switched on. Imported only inside moto's process.
"""

from __future__ import annotations

import binascii
import io
import json
import json.encoder
import string
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

from moto.core.exceptions import JsonRESTError
from moto.kinesis.models import kinesis_backends
from moto.kinesis.responses import KinesisResponse
from moto.moto_api._internal import mock_random
from werkzeug.datastructures import EnvironHeaders

from emulator.moto_child import kinesis_stream
from emulator.moto_child.kinesis_store import SEQUENCE_NUMBER_BASE, Page
from emulator.moto_child.short_path import identify, json_action, read_body

SHORT_PATH_ACTIONS = frozenset({"PutRecords", "PutRecord", "GetShardIterator", "GetRecords"})
_TARGET_PREFIX = "Kinesis_20131202."
_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_REQUEST_ID_LETTERS = string.ascii_letters + string.digits
REQUEST_ID_LENGTH = 52  # moto.utilities.aws_headers.gen_amzn_requestid_long


class _NotShort(Exception):
    """This request takes moto's normal path."""


def _stream(backend: Any, request: dict[str, Any]) -> Any:
    name, arn = request.get("StreamName"), request.get("StreamARN")
    if not isinstance(name, (str, type(None))) or not isinstance(arn, (str, type(None))):
        raise _NotShort()
    return backend.describe_stream(stream_arn=arn, stream_name=name)


def put_records(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    stream = _stream(backend, request)
    prepared = kinesis_stream.prepare_records(stream, request.get("Records"))
    return {"FailedRecordCount": 0, "Records": kinesis_stream.store_records(backend, stream, prepared)}


def put_record(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    stream = _stream(backend, request)
    entry = {key: request.get(key) for key in ("PartitionKey", "Data", "ExplicitHashKey")}
    [result] = kinesis_stream.store_records(backend, stream, kinesis_stream.prepare_records(stream, [entry]))
    return {"ShardId": result["ShardId"], "SequenceNumber": result["SequenceNumber"]}


def get_shard_iterator(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    stream = _stream(backend, request)
    shard_id = request.get("ShardId")
    if not isinstance(shard_id, str):
        raise _NotShort()
    iterator = kinesis_stream.new_shard_iterator(
        stream, shard_id, request.get("ShardIteratorType"), request.get("StartingSequenceNumber"), request.get("Timestamp"),
    )
    return {"ShardIterator": iterator}


def get_records(backend: Any, request: dict[str, Any]) -> bytes:
    arn = request.get("StreamARN")
    if not isinstance(arn, (str, type(None))):
        raise _NotShort()
    following, page = kinesis_stream.read_records(backend, arn, request.get("ShardIterator"), request.get("Limit"))
    return get_records_body(page, following)


def get_records_body(page: Page, following: str | None) -> bytes:
    """GetRecords' JSON as `json.dumps` writes moto's result, written record by record: a
    page holds up to 10,000 records and the generic encoder (a float repr per record) cost
    more than reading them. Records put together share their arrival stamp's text."""
    base, encode, quote = SEQUENCE_NUMBER_BASE, binascii.b2a_base64, json.encoder.encode_basestring_ascii
    parts = []
    last_arrival, stamp = None, ""
    for sequence, arrival, key, blob in zip(page.sequences, page.arrivals, page.keys, page.data):
        if arrival != last_arrival:
            last_arrival, stamp = arrival, repr(arrival / 1000)
        parts.append(f'{{"SequenceNumber": "{base + sequence}", "ApproximateArrivalTimestamp": {stamp}, '
                     f'"Data": "{encode(blob, newline=False).decode("ascii")}", "PartitionKey": {quote(key)}}}')
    following_text = f', "NextShardIterator": {quote(following)}' if following is not None else ""
    return f'{{"Records": [{", ".join(parts)}]{following_text}, "MillisBehindLatest": {page.millis_behind_latest}}}'.encode("ascii")


HANDLERS: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any] | bytes]] = {
    "PutRecords": put_records, "PutRecord": put_record, "GetShardIterator": get_shard_iterator, "GetRecords": get_records,
}


class KinesisShortPath:
    def action(self, environ: dict[str, Any]) -> str | None:
        """The Kinesis action this path serves for the request, or None."""
        return json_action(environ, _TARGET_PREFIX, _JSON_CONTENT_TYPE, SHORT_PATH_ACTIONS)

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any], action: str) -> Iterable[bytes] | None:
        """The response, or None after putting the body back for moto's normal path."""
        body = read_body(environ)
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            request = None
        try:
            if not isinstance(request, dict):
                raise _NotShort()
            result = HANDLERS[action](_backend(environ), request)
        except (_NotShort, JsonRESTError):
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        data = result if isinstance(result, bytes) else json.dumps(result).encode("utf-8")
        start_response("200 OK", [
            ("Content-Type", _JSON_CONTENT_TYPE), ("server", "amazon.com"),
            ("x-amzn-requestid", "".join(mock_random.choices(_REQUEST_ID_LETTERS, k=REQUEST_ID_LENGTH))),
            ("Content-Length", str(len(data))),
            ("Access-Control-Allow-Origin", "*"),  # what moto's global CORS adds
        ])
        return [data]


def _backend(environ: dict[str, Any]) -> Any:
    """The Kinesis backend of the request's account and region, found as BaseResponse.setup_class
    finds them (and the account marked as visited, as moto's IAM bookkeeping expects)."""
    response = KinesisResponse()
    headers = EnvironHeaders(environ)
    path = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    full_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{path}"
    response.headers = headers
    response.querystring = {}
    response.uri = full_url
    response.parsed_url = urlparse(full_url)
    identify(response, headers, full_url)
    return kinesis_backends[response.current_account][response.region]


def dispatcher_call(normal_call: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves the short path first."""
    short_path = KinesisShortPath()

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        action = short_path.action(environ)
        if action is not None:
            served = short_path.serve(environ, start_response, action)
            if served is not None:
                return served
        return normal_call(self, environ, start_response)

    return __call__
