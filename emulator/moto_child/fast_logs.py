"""CloudWatch Logs in the moto child, fit for every function's log lines: bounded, and
a short path for PutLogEvents.

The emulator sends every function's log lines to moto's CloudWatch Logs
(emulator/service/log_shipper.py), so two things of moto's matter under load:

1. memory: moto keeps every event forever, so a load test would grow the moto process by
   its whole log volume. AWS keeps events as long as the group's retention says (forever
   by default); here each log group keeps its newest `MAX_EVENTS_PER_GROUP` events and
   drops the oldest first, whichever of its streams they are in (README, "Logs");
2. CPU: moto parses a request by walking the service model, several microseconds per log
   event, in a process that shares the machine with the invocations. PutLogEvents with a
   known group and stream is parsed with json.loads and handed to moto's backend method
   directly; any other request, and any failure, takes moto's normal path.

Applied on the moto versions the patches were verified with
(emulator/moto_child/versions.py); on any other, moto runs as it is.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections import deque
from typing import Any, Callable, Iterable

from emulator.moto_child.versions import is_verified

log = logging.getLogger("emulator.moto.logs")

# Not an AWS figure: ~100 MB of moto's Python objects at ~1 KB per event, at most.
MAX_EVENTS_PER_GROUP = 100_000


def apply(max_events: int = MAX_EVENTS_PER_GROUP) -> bool:
    import moto
    from moto.logs import models

    if not is_verified(moto.__version__):
        log.warning("moto %s is not a verified version: CloudWatch Logs events are kept without a limit", moto.__version__)
        return False
    if getattr(models, "_emulator_logs_bounded", False):
        return True
    put = models.LogStream.put_log_events

    def put_log_events(self: Any, log_events: list[dict[str, Any]]) -> str:
        before = len(self.events)
        token = put(self, log_events)
        group = self.log_group
        batches = group.__dict__.setdefault("_emulator_batches", deque())  # (stream, events), oldest first
        added = len(self.events) - before
        if added:
            batches.append([self, added])
            group.__dict__["_emulator_events"] = group.__dict__.get("_emulator_events", 0) + added
        while group.__dict__.get("_emulator_events", 0) > max_events and batches:
            stream, count = batches[0]
            excess = group.__dict__["_emulator_events"] - max_events
            drop = min(count, excess)
            del stream.events[:drop]  # a stream's oldest events are at its front
            group.__dict__["_emulator_events"] -= drop
            if drop == count:
                batches.popleft()
            else:
                batches[0][1] = count - drop
        return token

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatch = dispatcher_call(DomainDispatcherApplication.__call__)
    models.LogStream.put_log_events = put_log_events
    DomainDispatcherApplication.__call__ = dispatch
    models._emulator_logs_bounded = True
    return True


_PUT_TARGET = "Logs_20140328.PutLogEvents"
_CREDENTIAL = re.compile(r"Credential=([^/,]+)/[^/]+/([^/]+)/")


def dispatcher_call(normal_call: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves PutLogEvents first."""
    from moto.iam.models import get_account_id_from
    from moto.logs.models import logs_backends

    def serve(environ: dict[str, Any], start_response: Callable[..., Any], body: bytes) -> Iterable[bytes] | None:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match is None:
            return None
        request = json.loads(body)
        backend = logs_backends[get_account_id_from(match.group(1))][match.group(2)]
        group = backend.groups.get(request["logGroupName"])
        if group is None or request["logStreamName"] not in group.streams:
            return None  # moto's own path answers ResourceNotFoundException
        token, rejected = backend.put_log_events(request["logGroupName"], request["logStreamName"], request["logEvents"])
        answer: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            answer["rejectedLogEventsInfo"] = rejected
        data = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))])
        return [data]

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = str(environ.get("CONTENT_LENGTH", ""))
        if environ.get("HTTP_X_AMZ_TARGET") == _PUT_TARGET and length.isdigit():
            body = environ["wsgi.input"].read(int(length))
            try:
                served = serve(environ, start_response, body)
            except Exception:  # anything unexpected: moto's path answers (and errors) as it would
                served = None
            if served is not None:
                return served
            environ["wsgi.input"] = io.BytesIO(body)
        return normal_call(self, environ, start_response)

    return __call__
