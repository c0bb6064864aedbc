"""DynamoDB capacity in front of moto's tables: accounting, throttling, ConsumedCapacity
(imported only inside moto's process).

Every DynamoDB data-plane call of moto's `DynamoHandler` runs through `CapacityLayer.run`,
under `DYNAMODB_LOCK` (moto's DynamoDB has no locks of its own): the layer finds what the
call will consume from the items as they are stored (emulator/moto_child/ddb_capacity.py),
asks the ledger whether the table and its global indexes can serve it
(emulator/moto_child/ddb_throughput.py), answers the throttling error exactly as AWS writes
it when not, otherwise runs moto's own handler, charges what was consumed and writes
`ConsumedCapacity` as `ReturnConsumedCapacity` asked. It sits in the moto child, not the
control plane, because what a call consumes depends on the stored items (the larger of the
old and new item for a write, the full item for a read whatever the projection, every item
read before a filter for a query), which only moto holds; here it costs one dictionary
lookup per item instead of a second parse of every request and response.

Per call (AWS's rules, cited in the modules above; choices in README "DynamoDB capacity"):

- PutItem, DeleteItem, GetItem: the whole cost is known before; a failed condition still
  consumes the existing item's write units ("If a ConditionExpression evaluates to false,
  DynamoDB still consumes write capacity",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate);
- UpdateItem, Query, Scan: admitted on what is known before (the old item; one step of
  reads), charged exactly after;
- BatchGetItem, BatchWriteItem: each item on its own; items the capacity cannot serve are
  returned in UnprocessedKeys / UnprocessedItems, and only when none can be served is the
  call throttled ("If none of the items can be processed due to insufficient provisioned
  throughput ... DynamoDB returns a ProvisionedThroughputExceededException",
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html);
- TransactWriteItems, TransactGetItems: all or nothing at twice the units; a throttled
  transaction is cancelled with a `ProvisionedThroughputExceeded` (or, on-demand,
  `ThrottlingError`) reason for the items that hit the limit
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).

The error on the wire (HTTP 400, `__type`, message and reasons): provisioned tables and
indexes answer `ProvisionedThroughputExceededException` with AWS's message for a table or
for a global index and `ThrottlingReasons`; on-demand ones `ThrottlingException` with
`throttlingReasons` (the member names of the botocore model); each reason is
`<Table|Index><Read|Write><LimitType>` with the table's or index's ARN
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-diagnosing-workflow.html).
The SDKs retry both as they do against AWS (botocore's retry rules for
ProvisionedThroughputExceededException and ThrottlingException).

The table-level calls (CreateTable, UpdateTable's daily limit on decreases,
`OnDemandThroughput`, DeleteTable) and the counters `GET /_emulator/dynamodb-capacity` shows
(which the control plane turns into CloudWatch-style metrics and auto scaling) are in
emulator/moto_child/ddb_table_calls.py.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, ConditionalCheckFailed, TransactionCanceledException
from moto.dynamodb.models.dynamo_type import DynamoType

from emulator.moto_child.ddb_capacity import (
    READ,
    WRITE,
    Charge,
    IndexShape,
    TableShape,
    consumed_capacity,
    read_charge,
    write_charges,
    write_units,
)
from emulator.moto_child.ddb_items import item_size
from emulator.moto_child.ddb_streams import DYNAMODB_LOCK
from emulator.moto_child.ddb_table_calls import PAY_PER_REQUEST, TableCalls
from emulator.moto_child.ddb_throughput import (
    ON_DEMAND_INITIAL_READ_UNITS,
    ON_DEMAND_INITIAL_WRITE_UNITS,
    PROVISIONED_EXCEEDED,
    CapacityLedger,
    Refusal,
    ResourceKey,
    ResourceLimits,
)

# AWS's messages (the TransactWriteItems reference's CancellationReasons, which quotes the
# messages of the errors: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
TABLE_PROVISIONED_MESSAGE = ("The level of configured provisioned throughput for the table was exceeded. Consider "
                             "increasing your provisioning level with the UpdateTable API.")
INDEX_PROVISIONED_MESSAGE = ("The level of configured provisioned throughput for one or more global secondary indexes "
                             "of the table was exceeded. Consider increasing your provisioning level for the "
                             "under-provisioned global secondary indexes with the UpdateTable API")
TABLE_ON_DEMAND_MESSAGE = ("Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
                           "scaling your table or index so please try again shortly. If exceptions persist, check if "
                           "you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                           "bp-partition-key-design.html")
INDEX_ON_DEMAND_MESSAGE = ("Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB "
                           "is automatically scaling your index so please try again shortly.")
# AWS gives no message for these two in its docs (README, "DynamoDB capacity").
MAX_ON_DEMAND_MESSAGE = "Throughput exceeds the maximum OnDemandThroughput configured on the table or index."
ACCOUNT_LIMIT_MESSAGE = ("Throughput exceeds the current throughput limit for your account. Please contact AWS Support "
                         "at https://aws.amazon.com/support to request a limit increase")
_CAPTURE = threading.local()  # sizes of the items a Query or Scan read, before its filter


class ThrottledError(JsonRESTError):
    """ProvisionedThroughputExceededException or ThrottlingException, exactly as AWS writes them."""

    def __init__(self, *, on_demand: bool, message: str, reasons: list[dict[str, str]]) -> None:
        name = "ThrottlingException" if on_demand else "ProvisionedThroughputExceededException"
        super().__init__(ERROR_TYPE_PREFIX + name, message)
        # The model's member names: ThrottlingReasons (ProvisionedThroughputExceededException),
        # throttlingReasons (ThrottlingException).
        member = "throttlingReasons" if on_demand else "ThrottlingReasons"
        self.description = json.dumps({"__type": self.error_type, "message": message, member: reasons})


@dataclass
class TableView:
    """One table as this call sees it."""

    table: Any  # moto's Table
    arn: str
    shape: TableShape

    def index_arn(self, index: str) -> str:
        return f"{self.arn}/index/{index}" if index else self.arn


def _shape(table: Any) -> TableShape:
    indexes = []
    for index, is_global in [(i, False) for i in table.indexes] + [(i, True) for i in table.global_indexes]:
        projection = index.projection or {}
        indexes.append(IndexShape(
            name=index.name,
            key_attributes=tuple(key["AttributeName"] for key in index.schema),
            projection=str(projection.get("ProjectionType", "ALL")),
            non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            is_global=is_global,
        ))
    return TableShape(table.name, tuple(table.table_key_attrs), tuple(indexes))


def _attrs(item: Any) -> dict[str, Any] | None:
    return None if item is None else item.attrs


class CapacityLayer(TableCalls):
    def __init__(self, clock: Any, *, enabled: bool = True) -> None:
        self.clock = clock
        # Off (--dynamodb-capacity off): moto's own handling, only under the lock.
        self.enabled = enabled
        self.ledger = CapacityLedger()
        self._owners: dict[str, int] = {}  # table ARN -> id() of the moto Table it names now
        self._views: dict[str, TableView] = {}  # table ARN -> the view of this call
        self.on_demand_maximums: dict[tuple[str, str], dict[str, int]] = {}  # (table ARN, index) -> OnDemandThroughput
        self.decreases: dict[tuple[str, str], list[float]] = {}  # (table ARN, index) -> wall times

    # -- entry ------------------------------------------------------------------------------------
    def run(self, action: str, handler: Any, original: Callable[[Any], Any]) -> Any:
        step = getattr(self, "_" + action, None) if self.enabled else None
        with DYNAMODB_LOCK:
            self._views = {}
            if step is None:
                return original(handler)
            return step(handler, original)

    # -- tables and limits ------------------------------------------------------------------------
    def _view(self, handler: Any, name: Any) -> TableView | None:
        if not isinstance(name, str):
            return None
        try:
            table = handler.dynamodb_backend.get_table(name)
        except JsonRESTError:
            return None
        arn = table.table_arn
        if self._owners.get(arn) != id(table):  # a new table of that name: a fresh start
            self.ledger.forget_table(arn)
            self._owners[arn] = id(table)
        view = TableView(table, arn, _shape(table))
        self._views[table.name] = view
        return view

    def _limits(self, key: ResourceKey) -> ResourceLimits:
        arn, index, kind = key
        view = next(v for v in self._views.values() if v.arn == arn)
        table = view.table
        initial = ON_DEMAND_INITIAL_READ_UNITS if kind == READ else ON_DEMAND_INITIAL_WRITE_UNITS
        if table.billing_mode == PAY_PER_REQUEST:
            maximum = self.on_demand_maximums.get((arn, index), {}).get(
                "MaxReadRequestUnits" if kind == READ else "MaxWriteRequestUnits")
            return ResourceLimits(True, maximum=float(maximum) if maximum and maximum > 0 else None, initial=initial)
        throughput = table.throughput
        if index:
            found = next((i for i in table.global_indexes if i.name == index), None)
            throughput = getattr(found, "throughput", None) or {}
        units = throughput.get("ReadCapacityUnits" if kind == READ else "WriteCapacityUnits") or 0
        return ResourceLimits(False, provisioned=float(units), initial=initial)

    def _key(self, charge: Charge) -> ResourceKey:
        view = self._views[charge.table]
        return view.arn, charge.index if charge.is_global else "", charge.kind

    def _needs(self, charges: list[Charge]) -> list[tuple[ResourceKey, float]]:
        return [(self._key(charge), charge.units) for charge in charges]

    def _refusal(self, charges: list[Charge], *, count: bool = True) -> Refusal | None:
        return self.ledger.admit(self._needs(charges), self._limits, self.clock.now(), count=count)

    def _admit(self, charges: list[Charge]) -> None:
        refusal = self._refusal(charges)
        if refusal is not None:
            self.ledger.count_throttled_request(refusal.key[0])
            raise self._error(refusal)

    def _charge(self, charges: list[Charge]) -> None:
        self.ledger.charge(self._needs(charges), self._limits, self.clock.now())

    def _error(self, refusal: Refusal) -> ThrottledError:
        arn, index, kind = refusal.key
        on_demand = refusal.limit_type != PROVISIONED_EXCEEDED
        reason = f"{'Index' if index else 'Table'}{'Read' if kind == READ else 'Write'}{refusal.limit_type}"
        if not on_demand:
            message = INDEX_PROVISIONED_MESSAGE if index else TABLE_PROVISIONED_MESSAGE
        elif refusal.limit_type == "MaxOnDemandThroughputExceeded":
            message = MAX_ON_DEMAND_MESSAGE
        elif refusal.limit_type == "AccountLimitExceeded":
            message = ACCOUNT_LIMIT_MESSAGE
        else:
            message = INDEX_ON_DEMAND_MESSAGE if index else TABLE_ON_DEMAND_MESSAGE
        resource = f"{arn}/index/{index}" if index else arn
        return ThrottledError(on_demand=on_demand, message=message, reasons=[{"reason": reason, "resource": resource}])

    # -- items --------------------------------------------------------------------------------------
    @staticmethod
    def _stored(view: TableView, attributes: Any) -> Any:
        """The stored item with the key of `attributes` (an item or a key, wire form), or None."""
        table = view.table
        if not isinstance(attributes, dict) or table.hash_key_attr not in attributes:
            return None
        try:
            hash_value = DynamoType(attributes[table.hash_key_attr])
            range_value = None
            if table.range_key_attr:
                if table.range_key_attr not in attributes:
                    return None
                range_value = DynamoType(attributes[table.range_key_attr])
            return table.get_item(hash_value, range_value)
        except (JsonRESTError, TypeError, AttributeError, KeyError, ValueError):
            return None

    @staticmethod
    def _report(handler: Any, result: Any, charges: list[Charge], tables: list[str], *, listed: bool,
                split: bool = False) -> None:
        body = getattr(result, "result", None)
        if not isinstance(body, dict):
            return
        mode = handler.body.get("ReturnConsumedCapacity", "NONE")
        parts = [part for name in tables if (part := consumed_capacity(name, charges, mode, split_read_write=split))]
        if not parts:
            body.pop("ConsumedCapacity", None)
        else:
            body["ConsumedCapacity"] = parts if listed else parts[0]

    # -- single-item writes ------------------------------------------------------------------------
    def _put_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        new = handler.body.get("Item")
        if view is None or not isinstance(new, dict):
            return original(handler)
        old = _attrs(self._stored(view, new))
        charges = write_charges(view.shape, old, new)
        return self._write(handler, original, view, charges, old)

    def _delete_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        if view is None:
            return original(handler)
        old = _attrs(self._stored(view, handler.body.get("Key")))
        return self._write(handler, original, view, write_charges(view.shape, old, None), old)

    def _write(self, handler: Any, original: Callable[[Any], Any], view: TableView, charges: list[Charge],
               old: dict[str, Any] | None) -> Any:
        self._admit(charges)
        try:
            result = original(handler)
        except ConditionalCheckFailed:
            self._charge([Charge(view.shape.name, "", WRITE, write_units(item_size(old)))])
            raise
        self._charge(charges)
        self._report(handler, result, charges, [view.shape.name], listed=False)
        return result

    def _update_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        key = handler.body.get("Key")
        if view is None:
            return original(handler)
        before = self._stored(view, key)
        old_size = item_size(_attrs(before))
        # moto updates the stored item in place: what the indexes compare needs a copy.
        old = copy.deepcopy(before.attrs) if before is not None and view.shape.indexes else None
        name = view.shape.name
        known = [Charge(name, "", WRITE, write_units(old_size))]
        known += [Charge(name, index.name, WRITE, 0.0, True) for index in view.shape.indexes if index.is_global]
        self._admit(known)
        try:
            result = original(handler)
        except ConditionalCheckFailed:
            self._charge(known[:1])
            raise
        after = _attrs(self._stored(view, key))
        if view.shape.indexes:
            charges = write_charges(view.shape, old, after)
        else:
            charges = [Charge(name, "", WRITE, write_units(max(old_size, item_size(after))))]
        self._charge(charges)
        self._report(handler, result, charges, [name], listed=False)
        return result

    # -- single-item and query reads -----------------------------------------------------------------
    def _get_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        if view is None:
            return original(handler)
        size = item_size(_attrs(self._stored(view, handler.body.get("Key"))))
        charges = [read_charge(view.shape, None, size, consistent=handler.body.get("ConsistentRead") is True)]
        self._admit(charges)
        result = original(handler)
        self._charge(charges)
        self._report(handler, result, charges, [view.shape.name], listed=False)
        return result

    def _query(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        if view is None:
            return original(handler)
        index = handler.body.get("IndexName")
        index = index if isinstance(index, str) and view.shape.index(index) else None
        consistent = handler.body.get("ConsistentRead") is True
        self._admit([read_charge(view.shape, index, 0, consistent=consistent)])
        _CAPTURE.sizes = []
        try:
            result = original(handler)
            read = sum(_CAPTURE.sizes)
        finally:
            _CAPTURE.sizes = None
        charges = [read_charge(view.shape, index, read, consistent=consistent)]
        self._charge(charges)
        self._report(handler, result, charges, [view.shape.name], listed=False)
        return result

    _scan = _query

    # -- batches ------------------------------------------------------------------------------------
    def _batch_get_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        requests = handler.body.get("RequestItems")
        if not isinstance(requests, dict):
            return original(handler)
        accepted: dict[str, dict[str, Any]] = {}
        unprocessed: dict[str, dict[str, Any]] = {}
        taken: list[Charge] = []
        refusals: list[Refusal] = []
        for name, request in requests.items():
            view = self._view(handler, name)
            keys = request.get("Keys") if isinstance(request, dict) else None
            if view is None or not isinstance(keys, list):
                return original(handler)
            consistent = request.get("ConsistentRead") is True
            for key in keys:
                charge = read_charge(view.shape, None, item_size(_attrs(self._stored(view, key))), consistent=consistent)
                refusal = self._refusal(taken + [charge], count=False)
                target = accepted if refusal is None else unprocessed
                target.setdefault(name, {**request, "Keys": []})["Keys"].append(key)
                if refusal is None:
                    taken.append(charge)
                else:
                    refusals.append(refusal)
        result = self._batch(handler, original, "RequestItems", accepted, refusals, taken)
        if unprocessed and isinstance(getattr(result, "result", None), dict):
            merged = result.result.setdefault("UnprocessedKeys", {})
            for name, request in unprocessed.items():
                merged.setdefault(name, {**request, "Keys": []})["Keys"].extend(request["Keys"])
        self._report(handler, result, taken, list(requests), listed=True)
        return result

    def _batch_write_item(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        requests = handler.body.get("RequestItems")
        if not isinstance(requests, dict):
            return original(handler)
        accepted: dict[str, list[Any]] = {}
        unprocessed: dict[str, list[Any]] = {}
        taken: list[Charge] = []
        refusals: list[Refusal] = []
        for name, entries in requests.items():
            view = self._view(handler, name)
            if view is None or not isinstance(entries, list):
                return original(handler)
            for entry in entries:
                put = entry.get("PutRequest") if isinstance(entry, dict) else None
                delete = entry.get("DeleteRequest") if isinstance(entry, dict) else None
                if isinstance(put, dict):
                    new = put.get("Item")
                    charges = write_charges(view.shape, _attrs(self._stored(view, new)), new if isinstance(new, dict) else None)
                elif isinstance(delete, dict):
                    charges = write_charges(view.shape, _attrs(self._stored(view, delete.get("Key"))), None)
                else:
                    return original(handler)
                refusal = self._refusal(taken + charges, count=False)
                (accepted if refusal is None else unprocessed).setdefault(name, []).append(entry)
                if refusal is None:
                    taken += charges
                else:
                    refusals.append(refusal)
        result = self._batch(handler, original, "RequestItems", accepted, refusals, taken)
        if unprocessed and isinstance(getattr(result, "result", None), dict):
            merged = result.result.setdefault("UnprocessedItems", {})
            for name, entries in unprocessed.items():
                merged.setdefault(name, []).extend(entries)
        self._report(handler, result, taken, list(requests), listed=True)
        return result

    def _batch(self, handler: Any, original: Callable[[Any], Any], field: str, accepted: dict[str, Any],
               refusals: list[Refusal], taken: list[Charge]) -> Any:
        """Run a batch with the items the capacity admits; count each refused item as a
        throttle event and the call as one throttled request; throttle it when none is
        admitted (the BatchWriteItem / BatchGetItem references)."""
        for refusal in refusals:
            self.ledger.count_throttle_event(refusal.key)
        if refusals:
            self.ledger.count_throttled_request(refusals[0].key[0])
        if not accepted and refusals:
            raise self._error(refusals[0])
        handler.body[field] = accepted
        result = original(handler)
        self._charge(taken)
        return result

    # -- transactions ---------------------------------------------------------------------------------
    def _transact_write_items(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        entries = handler.body.get("TransactItems")
        if not isinstance(entries, list):
            return original(handler)
        per_item: list[list[Charge]] = []
        updates: dict[int, tuple[TableView, Any, dict[str, Any] | None]] = {}
        for entry in entries:
            kind, operation = next(iter(entry.items()), (None, None)) if isinstance(entry, dict) else (None, None)
            view = self._view(handler, operation.get("TableName")) if isinstance(operation, dict) else None
            if view is None:
                return original(handler)
            if kind == "Put":
                new = operation.get("Item")
                old = _attrs(self._stored(view, new))
                charges = write_charges(view.shape, old, new if isinstance(new, dict) else None, transactional=True)
            elif kind == "Delete":
                old = _attrs(self._stored(view, operation.get("Key")))
                charges = write_charges(view.shape, old, None, transactional=True)
            else:
                # Update and ConditionCheck: what is known before is the stored item (README,
                # "DynamoDB capacity": a ConditionCheck costs as a write of that item).
                before = self._stored(view, operation.get("Key"))
                old = copy.deepcopy(before.attrs) if before is not None else None
                charges = [Charge(view.shape.name, "", WRITE, write_units(item_size(old), transactional=True))]
                if kind == "Update":
                    updates[len(per_item)] = (view, operation.get("Key"), old)
            per_item.append(charges)
        self._admit_transaction(per_item)
        result = original(handler)
        for position, (view, key, old) in updates.items():
            per_item[position] = write_charges(view.shape, old, _attrs(self._stored(view, key)), transactional=True)
        charges = [charge for charges in per_item for charge in charges]
        self._charge(charges)
        self._report(handler, result, charges, list(dict.fromkeys(c.table for c in charges)), listed=True, split=True)
        return result

    def _transact_get_items(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        entries = handler.body.get("TransactItems")
        if not isinstance(entries, list):
            return original(handler)
        per_item: list[list[Charge]] = []
        for entry in entries:
            operation = entry.get("Get") if isinstance(entry, dict) else None
            view = self._view(handler, operation.get("TableName")) if isinstance(operation, dict) else None
            if view is None:
                return original(handler)
            size = item_size(_attrs(self._stored(view, operation.get("Key"))))
            per_item.append([read_charge(view.shape, None, size, consistent=True, transactional=True)])
        self._admit_transaction(per_item)
        result = original(handler)
        charges = [charge for charges in per_item for charge in charges]
        self._charge(charges)
        self._report(handler, result, charges, list(dict.fromkeys(c.table for c in charges)), listed=True, split=True)
        return result

    def _admit_transaction(self, per_item: list[list[Charge]]) -> None:
        refusal = self._refusal([charge for charges in per_item for charge in charges])
        if refusal is None:
            return
        self.ledger.count_throttled_request(refusal.key[0])
        error = self._error(refusal)
        code = "ThrottlingError" if refusal.limit_type != PROVISIONED_EXCEEDED else "ProvisionedThroughputExceeded"
        reasons = [(code, error.message, None) if any(self._key(c) == refusal.key for c in charges) else (None, None, None)
                   for charges in per_item]
        raise TransactionCanceledException(reasons)


# -- Query and Scan: what they read before their filter ------------------------------------------------
def read_capturing(original: Callable[..., Any], filter_parameter: str, projection_parameter: str) -> Callable[..., Any]:
    """A Table.query / Table.scan that records the size of every item it read before the
    filter expression (what a query consumes) for the capacity layer, then filters and
    projects as moto does."""
    import inspect

    signature = inspect.signature(original)

    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        sizes = getattr(_CAPTURE, "sizes", None)
        if sizes is None:
            return original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        condition = arguments.get(filter_parameter)
        projection = arguments.get(projection_parameter)
        arguments[filter_parameter] = None
        arguments[projection_parameter] = None
        results, scanned, last_key = original(*bound.args, **bound.kwargs)
        sizes.extend(item_size(item.attrs) for item in results)
        if condition is not None:
            results = [item for item in results if condition.expr(item)]
        if projection:
            results = [item.project(projection) for item in results]
        return results, scanned, last_key

    return read


def handler_methods(layer: CapacityLayer, handler_class: Any) -> dict[str, Any]:
    """Replacements of DynamoHandler's methods that route them through the layer; the other
    calls that touch items only take the lock."""
    wrapped = ("put_item", "update_item", "delete_item", "get_item", "batch_get_item", "batch_write_item", "query",
               "scan", "transact_write_items", "transact_get_items", "create_table", "update_table",
               "delete_table", "describe_table", "execute_statement", "batch_execute_statement",
               "execute_transaction", "update_time_to_live")
    methods = {}
    for action in wrapped:
        original = getattr(handler_class, action, None)
        if original is None:
            continue

        def method(self: Any, _action: str = action, _original: Callable[[Any], Any] = original) -> Any:
            return layer.run(_action, self, _original)

        methods[action] = functools.wraps(original)(method)
    return methods
