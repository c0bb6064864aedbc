"""A short path through moto's server for SNS's Publish and PublishBatch.

Every SNS publisher's request is a query-protocol form, and moto spends most of its CPU
for one on the way in and out rather than on the publish (py-spy, benchmark 15 in
docs/benchmarks.md): Flask, `setup_class` (the form parsed twice, the query string, the
headers), the model-driven query parser, and the serializer that builds the XML through
xmltodict. This path reads the form itself (emulator/moto_child/sns_query.py, which
answers None for anything moto might read otherwise) and then runs what moto runs:
SNSResponse's own `publish` / `publish_batch` on a response object set up as
`setup_class` would set it up (region, account, the same header mapping), so the checks,
the error texts and the delivery (fast_sns.py: filter policies, SQS subscriptions, the
Lambda outbox) are moto's and ours unchanged. The result is written as moto's serializer
writes it (sns_query.py); an error raised by those methods is written by moto's own
serializer and headers code, as `call_action` writes it. Anything else, including a
request `query_request` (short_path.py) does not let through, takes moto's normal path
untouched. Imported only inside moto's process.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Iterable

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.sns.responses import SNSResponse
from moto.utilities.aws_headers import gen_amzn_requestid_long
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES

from emulator.moto_child import sns_query
from emulator.moto_child.short_path import identify, query_request, read_body

_WRITERS = {"Publish": sns_query.publish_body, "PublishBatch": sns_query.publish_batch_body}
_METHODS = {"Publish": "publish", "PublishBatch": "publish_batch"}
# What moto's Flask app adds to every response (flask_cors, origins "*", no Origin header).
_CORS_HEADER = ("Access-Control-Allow-Origin", "*")


def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """The response to a Publish or PublishBatch, or None after putting the body back for
    moto's normal path."""
    if not query_request(environ, "sns"):
        return None
    body = read_body(environ)
    parsed = sns_query.parse(body)
    if parsed is None:
        environ["wsgi.input"] = io.BytesIO(body)
        return None
    action, params = parsed
    response = _prepared(environ, action, params)
    try:
        result = getattr(response, _METHODS[action])()
    except ServiceException as error:
        status, headers, payload = _moto_error(response, error)
    else:
        status, headers = 200, {"Content-Type": "text/xml", **response.response_headers}
        request_id = gen_amzn_requestid_long(headers)
        payload = _WRITERS[action](result.result, request_id)
        if payload is None:  # a result the writer does not know: moto's serializer
            status, headers, text = response.serialized(result)
            headers, payload = response._enrich_response(headers, text)
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    listed = [(name, str(value)) for name, value in headers.items()]
    listed += [_CORS_HEADER, ("Content-Length", str(len(data)))]
    start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown').upper()}", listed)
    return [data]


def _prepared(environ: dict[str, Any], action: str, params: dict[str, Any]) -> SNSResponse:
    """An SNSResponse as BaseResponse.setup_class leaves it for this request."""
    response = SNSResponse()
    request_headers = EnvironHeaders(environ)
    full_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}/"
    response.is_werkzeug_request = True
    response.uri = full_url
    response.path = response.raw_path = "/"
    response.method = "POST"
    # moto's Flask view hands setup_class the headers as a plain dict (core/utils.py,
    # convert_to_flask_response), so lookups in it are case-sensitive there too.
    response.headers = dict(request_headers)
    response.querystring = response.data = {"Action": [action]}
    response.uri_match = {}
    response.params = params
    identify(response, request_headers, full_url)
    return response


def _moto_error(response: SNSResponse, error: ServiceException) -> tuple[int, dict[str, Any], Any]:
    """What BaseResponse.call_action answers for a ServiceException."""
    status, headers, body = response.serialized(ActionResult(error))
    headers["status"] = status
    status, headers, body = response._transform_response(response.response_headers, (body, headers))
    headers, body = response._enrich_response(headers, body)
    return status, headers, body


def dispatcher_call(normal_call: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves the short path first."""

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        served = serve(environ, start_response)
        return served if served is not None else normal_call(self, environ, start_response)

    __call__.__wrapped__ = normal_call  # type: ignore[attr-defined]
    return __call__
