"""Capacity units per DynamoDB request, as AWS counts them (pure arithmetic).

Rules (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):

- reads are counted in 4 KB steps of the item size, rounded up: a strongly consistent read
  costs 1 unit per step, an eventually consistent one half of that, a transactional one 2;
  a read of an item that does not exist still costs the minimum;
- writes are counted in 1 KB steps: 1 unit per step, 2 in a transaction; PutItem and
  UpdateItem count the larger of the item before and after, DeleteItem the deleted item;
- BatchGetItem and BatchWriteItem count each item as its own GetItem / PutItem /
  DeleteItem; Query and Scan count the total size of the items read, rounded up once
  (a filter expression does not lower it: it applies after the read).

Secondary indexes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes):
a write to the table writes every index whose entry it creates, changes or removes:

- an item that enters the index (it now has all the index's key attributes): one write of
  the new entry;
- an item that leaves it: one write (the delete) of the old entry;
- an index key that changes: two writes, the delete of the old entry and the put of the new;
- only projected attributes change: one write of the new entry;
- nothing the index holds changes, or the item is in the index neither before nor after:
  nothing.

An index entry holds the table's key attributes, the index's key attributes and its
projected attributes (KEYS_ONLY, INCLUDE NonKeyAttributes, or ALL); its size is theirs.
Global indexes have capacity of their own; local ones consume the table's
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/LSI.html#LSI.ThroughputConsiderations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.moto_child.ddb_items import item_size, projected_size

READ_STEP_BYTES = 4 * 1024
WRITE_STEP_BYTES = 1024
EVENTUALLY_CONSISTENT_FACTOR = 0.5
TRANSACTIONAL_FACTOR = 2.0

READ, WRITE = "read", "write"


def read_units(size_bytes: int, *, consistent: bool = False, transactional: bool = False) -> float:
    """Read units for `size_bytes` read in one operation (at least one step)."""
    steps = max(1, math.ceil(size_bytes / READ_STEP_BYTES))
    if transactional:
        return steps * TRANSACTIONAL_FACTOR
    return float(steps) if consistent else steps * EVENTUALLY_CONSISTENT_FACTOR


def write_units(size_bytes: int, *, transactional: bool = False) -> float:
    """Write units for writing an item of `size_bytes` (at least one step)."""
    steps = max(1, math.ceil(size_bytes / WRITE_STEP_BYTES))
    return steps * (TRANSACTIONAL_FACTOR if transactional else 1.0)


@dataclass(frozen=True)
class IndexShape:
    """What a secondary index holds of an item."""

    name: str
    key_attributes: tuple[str, ...]  # the index's own hash (and range) key
    projection: str = "ALL"  # KEYS_ONLY | INCLUDE | ALL
    non_key_attributes: tuple[str, ...] = ()
    is_global: bool = True


@dataclass(frozen=True)
class TableShape:
    name: str
    key_attributes: tuple[str, ...]
    indexes: tuple[IndexShape, ...] = ()

    def index(self, name: str) -> IndexShape | None:
        return next((index for index in self.indexes if index.name == name), None)


def in_index(item: Mapping[str, Any] | None, index: IndexShape) -> bool:
    """An item appears in an index only when it has every key attribute of the index
    (sparse indexes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html)."""
    return item is not None and all(name in item for name in index.key_attributes)


def entry_names(table: TableShape, index: IndexShape) -> tuple[str, ...] | None:
    """Attribute names of an index entry; None: every attribute (ALL)."""
    if index.projection == "ALL":
        return None
    names = dict.fromkeys((*table.key_attributes, *index.key_attributes))
    if index.projection == "INCLUDE":
        names.update(dict.fromkeys(index.non_key_attributes))
    return tuple(names)


def entry_size(item: Mapping[str, Any], table: TableShape, index: IndexShape) -> int:
    return projected_size(item, entry_names(table, index))


def _entry(item: Mapping[str, Any], table: TableShape, index: IndexShape) -> dict[str, Any]:
    names = entry_names(table, index)
    if names is None:
        return dict(item)
    return {name: item[name] for name in names if name in item}


def index_write_units(table: TableShape, index: IndexShape, old: Mapping[str, Any] | None,
                      new: Mapping[str, Any] | None, *, transactional: bool = False) -> float:
    """Write units a table write costs one secondary index (the rules in the module text)."""
    was, now = in_index(old, index), in_index(new, index)
    if not was and not now:
        return 0.0
    if was and not now:
        return write_units(entry_size(old, table, index), transactional=transactional)  # type: ignore[arg-type]
    if now and not was:
        return write_units(entry_size(new, table, index), transactional=transactional)  # type: ignore[arg-type]
    assert old is not None and new is not None
    old_keys = [_plain(old[name]) for name in index.key_attributes]
    new_keys = [_plain(new[name]) for name in index.key_attributes]
    if old_keys != new_keys:
        return (write_units(entry_size(old, table, index), transactional=transactional)
                + write_units(entry_size(new, table, index), transactional=transactional))
    if plain_item(_entry(old, table, index)) == plain_item(_entry(new, table, index)):
        return 0.0
    return write_units(entry_size(new, table, index), transactional=transactional)


def _plain(value: Any) -> Any:
    """A comparable form of an attribute value in either form (dict or moto DynamoType)."""
    if isinstance(value, Mapping):
        kind, inner = next(iter(value.items()))
    else:
        kind, inner = value.type, value.value
    if kind == "M":
        return kind, plain_item(inner)
    if kind == "L":
        return kind, tuple(_plain(member) for member in inner)
    if kind in ("SS", "NS", "BS"):
        return kind, frozenset(_scalar(member) for member in inner)
    return kind, _scalar(inner)


def _scalar(value: Any) -> Any:
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in item.items()}


@dataclass(frozen=True)
class Charge:
    """Units one operation consumes on one table's resource: the table itself (index "")
    or one of its indexes."""

    table: str
    index: str  # "" for the table
    kind: str  # READ or WRITE
    units: float
    is_global: bool = False  # a global secondary index: capacity of its own

    @property
    def bucket_key(self) -> tuple[str, str, str]:
        """Whose capacity pays: a local index's units come out of the table's."""
        return (self.table, self.index if self.is_global else "", self.kind)


def write_charges(table: TableShape, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *,
                  transactional: bool = False) -> list[Charge]:
    """What writing `new` over `old` (either may be None: a put of a new item, a delete)
    costs the table and each of its indexes."""
    size = max(item_size(old), item_size(new))
    charges = [Charge(table.name, "", WRITE, write_units(size, transactional=transactional))]
    for index in table.indexes:
        units = index_write_units(table, index, old, new, transactional=transactional)
        if units:
            charges.append(Charge(table.name, index.name, WRITE, units, index.is_global))
    return charges


def read_charge(table: TableShape, index_name: str | None, size_bytes: int, *, consistent: bool,
                transactional: bool = False) -> Charge:
    index = table.index(index_name) if index_name else None
    units = read_units(size_bytes, consistent=consistent, transactional=transactional)
    if index is None:
        return Charge(table.name, "", READ, units)
    return Charge(table.name, index.name, READ, units, index.is_global)


def consumed_capacity(table_name: str, charges: list[Charge], mode: str, *,
                      split_read_write: bool = False) -> dict[str, Any] | None:
    """The `ConsumedCapacity` of one table for ReturnConsumedCapacity `mode` (TOTAL or
    INDEXES; None for NONE), in the API's shape
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ConsumedCapacity.html).
    `split_read_write` adds ReadCapacityUnits / WriteCapacityUnits (transactions)."""
    if mode not in ("TOTAL", "INDEXES"):
        return None
    mine = [charge for charge in charges if charge.table == table_name]
    total = sum(charge.units for charge in mine)
    body: dict[str, Any] = {"TableName": table_name, "CapacityUnits": total}
    if split_read_write:
        _split(body, mine)
    if mode == "INDEXES":
        table_part: dict[str, Any] = {"CapacityUnits": sum(c.units for c in mine if not c.index)}
        if split_read_write:
            _split(table_part, [c for c in mine if not c.index])
        body["Table"] = table_part
        for key, is_global in (("GlobalSecondaryIndexes", True), ("LocalSecondaryIndexes", False)):
            indexes: dict[str, dict[str, Any]] = {}
            for charge in mine:
                if charge.index and charge.is_global == is_global:
                    entry = indexes.setdefault(charge.index, {"CapacityUnits": 0.0})
                    entry["CapacityUnits"] += charge.units
            if indexes:
                body[key] = indexes
    return body


def _split(body: dict[str, Any], charges: list[Charge]) -> None:
    reads = sum(c.units for c in charges if c.kind == READ)
    writes = sum(c.units for c in charges if c.kind == WRITE)
    if reads:
        body["ReadCapacityUnits"] = reads
    if writes:
        body["WriteCapacityUnits"] = writes
