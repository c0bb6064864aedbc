"""The table-level calls of the DynamoDB capacity layer, and what the control plane reads
(imported only inside moto's process).

A part of `CapacityLayer` (emulator/moto_child/ddb_capacity_layer.py), kept apart because it
concerns tables, not items:

- CreateTable starts the table's buckets (empty, for a provisioned table) and keeps its
  `OnDemandThroughput`, which moto ignores; Describe/Create/UpdateTable show it;
- UpdateTable follows DynamoDB's limit on decreases of provisioned throughput (four at any
  time in a UTC day, then one per hour without a decrease:
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#decrease-in-provisioned-throughput),
  answering LimitExceededException with AWS's wording, and keeps `NumberOfDecreasesToday`;
- DeleteTable forgets the table's capacity;
- `snapshot` is what `GET /_emulator/dynamodb-capacity` answers: every table's settings and
  cumulative counters under CloudWatch's metric names
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX

from emulator.moto_child.ddb_capacity import READ, WRITE
from emulator.moto_child.ddb_streams import DYNAMODB_LOCK
from emulator.moto_child.ddb_throughput import CapacityLedger, decrease_allowed

if TYPE_CHECKING:
    from emulator.moto_child.ddb_capacity_layer import TableView

PAY_PER_REQUEST = "PAY_PER_REQUEST"


class DecreaseLimitError(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "LimitExceededException", message)


class TableCalls:
    """CreateTable, DescribeTable, UpdateTable, DeleteTable and the snapshot, on the state of
    the CapacityLayer they are part of."""

    clock: Any
    ledger: CapacityLedger
    _owners: dict[str, int]
    on_demand_maximums: dict[tuple[str, str], dict[str, int]]
    decreases: dict[tuple[str, str], list[float]]
    _view: Callable[..., "TableView | None"]
    _limits: Callable[..., Any]

    def _create_table(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        result = original(handler)
        view = self._view(handler, handler.body.get("TableName"))
        if view is not None:
            # The table's buckets start now (empty, for a provisioned table: README, "DynamoDB capacity").
            now = self.clock.now()
            for index in ["", *(i.name for i in view.table.global_indexes)]:
                for kind in (READ, WRITE):
                    self.ledger.resource((view.arn, index, kind), self._limits((view.arn, index, kind)), now)
            self._keep_on_demand_maximums(view, handler.body.get("OnDemandThroughput"),
                                          [(i.get("IndexName"), i.get("OnDemandThroughput"))
                                           for i in handler.body.get("GlobalSecondaryIndexes") or [] if isinstance(i, dict)])
            self._show_on_demand_maximums(view, result, "TableDescription")
        return result

    def _describe_table(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        result = original(handler)
        view = self._view(handler, handler.body.get("TableName"))
        if view is not None:
            self._show_on_demand_maximums(view, result, "Table")
        return result

    def _update_table(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        if view is None:
            return original(handler)
        decreased = self._decreases(view, handler.body)
        wall = self.clock.wall()
        for key in decreased:
            allowed, today = decrease_allowed(self.decreases.get(key, []), wall)
            if not allowed:
                raise DecreaseLimitError(
                    "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. "
                    f"After the first 4 decreases, each subsequent decrease in the same UTC day can be performed at most "
                    f"once every 3600 seconds. Number of decreases today: {today}.")
        result = original(handler)
        for key in decreased:
            self.decreases.setdefault(key, []).append(wall)
        table = view.table
        for index, throughput in [("", table.throughput), *((i.name, getattr(i, "throughput", None))
                                                             for i in table.global_indexes)]:
            if isinstance(throughput, dict) and table.billing_mode != PAY_PER_REQUEST:
                throughput["NumberOfDecreasesToday"] = decrease_allowed(self.decreases.get((view.arn, index), []), wall)[1]
        self._keep_on_demand_maximums(view, handler.body.get("OnDemandThroughput"),
                                      [(u["Update"].get("IndexName"), u["Update"].get("OnDemandThroughput"))
                                       for u in handler.body.get("GlobalSecondaryIndexUpdates") or []
                                       if isinstance(u, dict) and isinstance(u.get("Update"), dict)])
        view = self._view(handler, handler.body.get("TableName")) or view
        self._show_on_demand_maximums(view, result, "TableDescription")
        return result

    def _delete_table(self, handler: Any, original: Callable[[Any], Any]) -> Any:
        view = self._view(handler, handler.body.get("TableName"))
        result = original(handler)
        if view is not None:
            self.ledger.forget_table(view.arn)
            self._owners.pop(view.arn, None)
            for store in (self.on_demand_maximums, self.decreases):
                for key in [key for key in store if key[0] == view.arn]:
                    del store[key]
        return result

    @staticmethod
    def _decreases(view: TableView, body: dict[str, Any]) -> list[tuple[str, str]]:
        """(table ARN, index) of each provisioned throughput the UpdateTable lowers."""
        def lower(current: Any, wanted: Any) -> bool:
            if not isinstance(current, dict) or not isinstance(wanted, dict):
                return False
            return any(isinstance(wanted.get(k), int) and isinstance(current.get(k), int) and wanted[k] < current[k]
                       for k in ("ReadCapacityUnits", "WriteCapacityUnits"))

        found = []
        if lower(view.table.throughput, body.get("ProvisionedThroughput")):
            found.append((view.arn, ""))
        for update in body.get("GlobalSecondaryIndexUpdates") or []:
            change = update.get("Update") if isinstance(update, dict) else None
            if isinstance(change, dict):
                index = next((i for i in view.table.global_indexes if i.name == change.get("IndexName")), None)
                if index is not None and lower(index.throughput, change.get("ProvisionedThroughput")):
                    found.append((view.arn, index.name))
        return found

    def _keep_on_demand_maximums(self, view: TableView, table_value: Any, indexes: list[tuple[Any, Any]]) -> None:
        for index, value in [("", table_value), *indexes]:
            if isinstance(value, dict) and isinstance(index, str):
                kept = self.on_demand_maximums.setdefault((view.arn, index), {})
                kept.update({k: int(v) for k, v in value.items() if k in ("MaxReadRequestUnits", "MaxWriteRequestUnits")})

    def _show_on_demand_maximums(self, view: TableView, result: Any, key: str) -> None:
        body = getattr(result, "result", None)
        description = body.get(key) if isinstance(body, dict) else None
        if not isinstance(description, dict) or view.table.billing_mode != PAY_PER_REQUEST:
            return
        table_max = self.on_demand_maximums.get((view.arn, ""))
        description["OnDemandThroughput"] = {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1, **(table_max or {})}
        for index in description.get("GlobalSecondaryIndexes") or []:
            kept = self.on_demand_maximums.get((view.arn, index.get("IndexName")))
            index["OnDemandThroughput"] = {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1, **(kept or {})}

    def snapshot(self, backends: Any) -> list[dict[str, Any]]:
        """Every table's capacity settings and cumulative counters (CloudWatch's metric names:
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html)."""
        tables = []
        with DYNAMODB_LOCK:
            for account, region, backend in list(backends.iter_backends()):
                for table in list(backend.tables.values()):
                    arn = table.table_arn
                    if self._owners.get(arn) not in (None, id(table)):
                        continue
                    entry = {"TableName": table.name, "Account": account, "Region": region, "TableArn": arn,
                             "BillingMode": table.billing_mode or "PROVISIONED",
                             **self._counters(arn, "", table.throughput, table.billing_mode),
                             "ThrottledRequests": self.ledger.throttled_requests.get(arn, 0),
                             "GlobalSecondaryIndexes": {
                                 index.name: self._counters(arn, index.name, getattr(index, "throughput", None) or {},
                                                            table.billing_mode)
                                 for index in table.global_indexes}}
                    tables.append(entry)
        return tables

    def _counters(self, arn: str, index: str, throughput: dict[str, Any], billing_mode: Any) -> dict[str, Any]:
        reads = self.ledger.resources.get((arn, index, READ))
        writes = self.ledger.resources.get((arn, index, WRITE))
        on_demand = billing_mode == PAY_PER_REQUEST
        return {
            "ProvisionedReadCapacityUnits": 0 if on_demand else throughput.get("ReadCapacityUnits", 0),
            "ProvisionedWriteCapacityUnits": 0 if on_demand else throughput.get("WriteCapacityUnits", 0),
            "ConsumedReadCapacityUnits": reads.consumed if reads else 0.0,
            "ConsumedWriteCapacityUnits": writes.consumed if writes else 0.0,
            "ReadThrottleEvents": reads.throttle_events if reads else 0,
            "WriteThrottleEvents": writes.throttle_events if writes else 0,
        }
