"""What every short path through moto's server checks before it takes a request.

A short path (sqs_wire.py, kinesis_wire.py, sns_wire.py) serves a few actions without
moto's generic request machinery. It may take a request only when moto's normal path would
do nothing more than it does: a POST of one of its actions, a body framed by a
Content-Length, and neither moto's IAM checks nor its request recorder switched on.
"""

from __future__ import annotations

from typing import Any

from moto import settings
from moto.iam.models import mark_account_as_visited
from moto.moto_api import recorder
from moto.utilities.utils import get_partition

# Query-protocol calls (SNS, STS, IAM, ...) POST a form to "/".
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, framed by its Content-Length (the checks above made sure it is).
    A short path that passes the request on puts it back as `io.BytesIO(body)`."""
    length = int(environ["CONTENT_LENGTH"])
    return environ["wsgi.input"].read(length) if length > 0 else b""


def json_action(environ: dict[str, Any], target_prefix: str, content_type: str, actions: frozenset[str]) -> str | None:
    """The action named by the request's X-Amz-Target when a short path may serve it, else None."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith(target_prefix) or environ.get("REQUEST_METHOD") != "POST":
        return None
    action = target[len(target_prefix):]
    if action not in actions or not environ.get("CONTENT_TYPE", "").startswith(content_type):
        return None
    return action if _plain_request(environ) else None


def query_request(environ: dict[str, Any], service: str) -> bool:
    """Whether a short path may read this request as a query-protocol call to `service`
    (its action is in the body): a form POSTed to "/" without a query string, signed
    (SigV4) for `service`, which is how moto's server picks the service for it
    (moto_server/werkzeug_app.py, infer_service_region_host). Not a request moto would
    decompress (Content-Encoding) or answer with CORS headers of its own (Origin), nor
    with its responses pretty-printed."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/" or environ.get("QUERY_STRING"):
        return False
    if not environ.get("HTTP_HOST"):  # moto would build the request's URL from SERVER_NAME
        return False
    if not environ.get("CONTENT_TYPE", "").startswith(FORM_CONTENT_TYPE):
        return False
    if "HTTP_CONTENT_ENCODING" in environ or "HTTP_ORIGIN" in environ or "HTTP_X_AMZ_TARGET" in environ:
        return False
    if settings.PRETTIFY_RESPONSES or settings.DISABLE_GLOBAL_CORS:
        return False
    return signing_service(environ.get("HTTP_AUTHORIZATION", "")) == service and _plain_request(environ)


def signing_service(authorization: str) -> str | None:
    """The service of a SigV4 Authorization header's credential scope, lower-cased."""
    try:
        _, _, _, service, _ = authorization.split(",")[0].split()[1].split("/")
    except (IndexError, ValueError):
        return None
    return service.lower()


def _plain_request(environ: dict[str, Any]) -> bool:
    if not str(environ.get("CONTENT_LENGTH", "")).isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
        return False  # only bodies framed by a Content-Length
    # moto's IAM checks and its request recorder live in the normal path
    return settings.INITIAL_NO_AUTH_ACTION_COUNT == float("inf") and not recorder._user_enabled


def identify(response: Any, headers: Any, full_url: str) -> None:
    """What BaseResponse.setup_class sets last on a response object: the answer's server
    header, the Region (from the URL or the signature), the partition, the access key and the
    account, which moto marks as visited."""
    response.response_headers = {"server": "amazon.com"}
    response.region = response.get_region_from_url(_HeadersOnly(headers), full_url)
    response.partition = get_partition(response.region)
    response.access_key = response.get_access_key()
    response.current_account = response.get_current_account()
    mark_account_as_visited(response.current_account, response.access_key, response.service_name, response.region)


class _HeadersOnly:
    """What BaseResponse.get_region_from_url reads of a request."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers
