"""What every short path through moto's server checks before it takes a request.

A short path (sqs_wire.py, kinesis_wire.py) serves a few JSON-protocol actions without
moto's generic request machinery. It may take a request only when moto's normal path would
do nothing more than it does: a POST of one of its actions, a JSON body framed by a
Content-Length, and neither moto's IAM checks nor its request recorder switched on.
"""

from __future__ import annotations

from typing import Any

from moto import settings
from moto.moto_api import recorder


def json_action(environ: dict[str, Any], target_prefix: str, content_type: str, actions: frozenset[str]) -> str | None:
    """The action named by the request's X-Amz-Target when a short path may serve it, else None."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith(target_prefix) or environ.get("REQUEST_METHOD") != "POST":
        return None
    action = target[len(target_prefix):]
    if action not in actions or not environ.get("CONTENT_TYPE", "").startswith(content_type):
        return None
    if not str(environ.get("CONTENT_LENGTH", "")).isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
        return None  # only bodies framed by a Content-Length
    if settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf") or recorder._user_enabled:
        return None  # moto's IAM checks and its request recorder live in the normal path
    return action
