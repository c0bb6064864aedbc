"""DynamoDB in the moto child: capacity and throttling, fast streams, a short path.

`apply()` runs in the moto child (emulator/moto_child/__main__.py) before moto serves. It
keeps moto as the store and the API and changes four things:

1. capacity (emulator/moto_child/ddb_capacity_layer.py): moto's `DynamoHandler` data-plane
   methods run through a layer that accounts capacity units as AWS does, throttles
   provisioned and on-demand tables and their global indexes as AWS does, and answers
   `ReturnConsumedCapacity` exactly (moto answers fixed values and never throttles); the
   layer's clock is the emulator's (`--time-scale`), so burst windows, on-demand peaks and
   the daily decrease limit run at the emulated pace;
2. streams (emulator/moto_child/ddb_streams.py): moto's `StreamShard` becomes an indexed
   store of ready-made JSON records, with AWS's record shape, retention and iterator expiry;
3. a short path for DynamoDB's data-plane calls and DynamoDB Streams' GetShardIterator and
   GetRecords (emulator/moto_child/ddb_wire.py), and moto's per-call `inspect.getmembers`
   of the handler class cached (a class's methods do not change while the server runs);
4. `GET /_emulator/dynamodb-capacity` on the child's URL: every table's capacity counters
   (the control plane's metrics and auto scaling read them: emulator/backend/dynamodb_capacity.py;
   the timeline reads the same through `capacity_tables()`: queue_metrics.py);
5. moto's dashboard no longer keeps every `Item` moto ever made (each write makes one, and
   copies): a table written over and over held every version of every item
   (emulator/moto_child/instance_tracking.py).

moto's internals change between releases, so `apply()` patches only the versions in
VERIFIED_MOTO_VERSIONS; on any other it leaves moto alone with a warning.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, is_verified

log = logging.getLogger("emulator.moto.dynamodb")

CAPACITY_PATH = "/_emulator/dynamodb-capacity"
# The capacity layer apply() installed: the timeline's figures (queue_metrics.py) read it too.
_LAYER: Any = None


def apply(time_scale: float = 1.0, capacity: bool = True) -> bool:
    """Patch moto's DynamoDB in this process; False, with a warning, on an unverified version."""
    import moto

    if not is_verified(moto.__version__):
        log.warning("moto %s is not a version the DynamoDB model was verified with (%s): running moto's own DynamoDB "
                    "(no capacity, no throttling)", moto.__version__, ", ".join(VERIFIED_MOTO_VERSIONS))
        return False
    from moto.core import responses as core_responses
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import dynamo_type, table as table_models
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from emulator.clock import ScaledClock
    from emulator.moto_child import ddb_capacity_layer, ddb_streams, ddb_wire, instance_tracking

    if getattr(dynamodb_models, "_emulator_fast_dynamodb", False):
        return True
    # Build everything first, then assign: a failure leaves moto untouched.
    layer = ddb_capacity_layer.CapacityLayer(ScaledClock(time_scale), enabled=capacity)
    handler_methods = ddb_capacity_layer.handler_methods(layer, DynamoHandler)
    table_class = table_models.Table
    query = ddb_capacity_layer.read_capturing(table_class.query, "filter_expression", "projection_expressions")
    scan = ddb_capacity_layer.read_capturing(table_class.scan, "filter_expression", "projection_expression")
    streams_methods = ddb_streams.streams_backend_methods()
    backend_methods = ddb_streams.backend_methods(dynamodb_models.DynamoDBBackend.update_item,
                                                  dynamodb_models.DynamoDBBackend.transact_write_items)
    dispatch = capacity_dispatcher_call(ddb_wire.dispatcher_call(DomainDispatcherApplication.__call__), layer)
    method_names = functools.cache(core_responses.method_names_from_class)

    ddb_streams.install_shard_class()
    for name, method in handler_methods.items():
        setattr(DynamoHandler, name, method)
    table_class.query, table_class.scan = query, scan
    for name, method in streams_methods.items():
        setattr(DynamoDBStreamsBackend, name, method)
    for name, method in backend_methods.items():
        setattr(dynamodb_models.DynamoDBBackend, name, method)
    core_responses.method_names_from_class = method_names
    instance_tracking.stop_tracking(dynamo_type.Item)
    DomainDispatcherApplication.__call__ = dispatch
    dynamodb_models._emulator_fast_dynamodb = True
    global _LAYER
    _LAYER = layer
    return True


def capacity_tables() -> list[dict[str, Any]] | None:
    """Every table's capacity settings and cumulative counters, as CAPACITY_PATH shows them;
    None when the capacity layer is not installed or is off (`--dynamodb-capacity false`)."""
    if _LAYER is None or not _LAYER.enabled:
        return None
    from moto.dynamodb.models import dynamodb_backends

    return _LAYER.snapshot(dynamodb_backends)


def capacity_dispatcher_call(inner: Callable[..., Any], layer: Any) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that answers CAPACITY_PATH, else calls `inner`."""
    from moto.dynamodb.models import dynamodb_backends

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == CAPACITY_PATH and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps({"enabled": layer.enabled, "time_scale": layer.clock.scale,
                               "tables": layer.snapshot(dynamodb_backends)}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return inner(self, environ, start_response)

    return __call__
