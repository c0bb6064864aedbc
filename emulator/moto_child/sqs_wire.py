"""A short path through moto's server for the SQS calls a busy queue makes most.

moto serves every request through Flask, a generic request set-up (form parsing, query
strings, `inspect.getmembers` on the response class) and a generic, model-driven
serializer that tries several spellings of every key; for SQS that is ~0.8 ms of a
~1.2 ms request, more than the queue work itself. For the JSON-protocol calls listed in
`SHORT_PATH_ACTIONS` this path still runs moto's own request parser, moto's
`SQSResponse` method and moto's backend; it only skips the Flask routing and the generic
set-up, and writes the result by walking the same botocore output shape moto's serializer
walks. Errors are written by moto's own serializer. Anything else (another service, the
query protocol, IAM authorization or request recording switched on, a body moto's parser
rejects) goes through moto's normal path unchanged. Imported only inside moto's process.
"""

from __future__ import annotations

import base64
import io
import json
import string
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

from moto.core.exceptions import ServiceException
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores, get_service_model
from moto.moto_api._internal import mock_random
from moto.sqs.responses import SQSResponse
from werkzeug.datastructures import EnvironHeaders, MultiDict

from emulator.moto_child.short_path import identify, json_action, read_body

SHORT_PATH_ACTIONS = frozenset({
    "SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
    "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "GetQueueUrl", "GetQueueAttributes",
})
_TARGET_PREFIX = "AmazonSQS."
_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_REQUEST_ID_LETTERS = string.ascii_letters + string.digits
REQUEST_ID_LENGTH = 52  # moto.utilities.aws_headers.gen_amzn_requestid_long


class _NotShort(Exception):
    """This request takes moto's normal path."""


class SqsShortPath:
    def __init__(self) -> None:
        service_model = get_service_model("sqs")
        self._parser_class = PROTOCOL_PARSERS["json"]
        self._operations = {name: service_model.operation_model(name) for name in SHORT_PATH_ACTIONS}
        self._methods = {name: camelcase_to_underscores(name) for name in SHORT_PATH_ACTIONS}

    def action(self, environ: dict[str, Any]) -> str | None:
        """The SQS action this path serves for the request, or None."""
        return json_action(environ, _TARGET_PREFIX, _JSON_CONTENT_TYPE, SHORT_PATH_ACTIONS)

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any], action: str) -> Iterable[bytes] | None:
        """The response, or None after putting the body back for moto's normal path."""
        body = read_body(environ)
        try:
            response = self._prepare(environ, body, action)
        except _NotShort:
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        headers: dict[str, Any] = {"server": "amazon.com"}
        try:
            result = getattr(response, self._methods[action])()
        except ServiceException as error:
            status, error_headers, payload = response.serialized(ActionResult(error))
            headers.update(error_headers)
            headers["status"] = str(status)  # moto's call_action leaves this header in
        else:
            try:
                status, payload = 200, json.dumps(self._encode(result.result, self._operations[action].output_shape))
                headers["Content-Type"] = _JSON_CONTENT_TYPE
            except (AttributeError, TypeError, ValueError):  # not plain dicts: moto's own serializer
                status, result_headers, payload = response.serialized(result)
                headers.update(result_headers)
        headers["x-amzn-requestid"] = "".join(mock_random.choices(_REQUEST_ID_LETTERS, k=REQUEST_ID_LENGTH))
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        headers["Content-Length"] = str(len(data))
        headers["Access-Control-Allow-Origin"] = "*"  # what moto's global CORS adds
        start_response(f"{status} {_REASONS.get(int(status), 'Unknown')}", list(headers.items()))
        return [data]

    def _prepare(self, environ: dict[str, Any], body: bytes, action: str) -> Any:
        """An SQSResponse set up as BaseResponse.setup_class would for this request."""
        response = SQSResponse()
        headers = EnvironHeaders(environ)
        path = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
        full_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{path}"
        try:
            parser = self._parser_class(self._operations[action], map_type=response.PROTOCOL_PARSER_MAP_TYPE)
            response.params = parser.parse({
                "method": "POST", "values": MultiDict(), "headers": headers, "body": body,
                "url_path": urlparse(path).path, "url_params": {},
            })
            text = body.decode("utf-8")
        except Exception:  # moto's normal path answers with its own error for this body
            raise _NotShort() from None
        response.is_werkzeug_request = True
        response.uri = full_url
        response.parsed_url = urlparse(full_url)
        response.path = response.parsed_url.path
        response.raw_path = path
        response.method = "POST"
        response.body = response.raw_body = text
        response.querystring = response.data = {}
        response.uri_match = {}
        response.headers = headers
        identify(response, headers, full_url)
        return response

    def _encode(self, value: Any, shape: Any) -> Any:
        """What moto's JSON serializer makes of `value` for `shape`, for plain dict results."""
        if shape is None:
            return {}  # an operation without output: moto writes "{}"
        kind = shape.type_name
        if kind == "structure":
            out = {}
            if value is None:
                return out
            for key, member in shape.members.items():
                item = value.get(key)
                if item is not None:
                    out[member.serialization.get("name", key)] = self._encode(item, member)
            return out
        if kind == "list":
            return [self._encode(item, shape.member) for item in value]
        if kind == "map":
            return {key: self._encode(item, shape.value) for key, item in value.items()}
        if kind == "string":
            return str(value) if value not in (None, {}, []) else value
        if kind == "blob":
            return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).strip().decode()
        if kind in ("integer", "long"):
            return int(value)
        return value


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


def dispatcher_call(normal_call: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves the short path first."""
    short_path = SqsShortPath()

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        action = short_path.action(environ)
        if action is not None:
            served = short_path.serve(environ, start_response, action)
            if served is not None:
                return served
        return normal_call(self, environ, start_response)

    return __call__
