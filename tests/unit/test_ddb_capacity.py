"""DynamoDB item sizes and capacity units, exactly as AWS's pages count them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emulator.moto_child.ddb_capacity import (
    READ,
    WRITE,
    Charge,
    IndexShape,
    TableShape,
    consumed_capacity,
    index_write_units,
    read_charge,
    read_units,
    write_charges,
    write_units,
)
from emulator.moto_child.ddb_items import item_size, number_size, value_size


# -- item sizes (CapacityUnitCalculations.html) ------------------------------------------------------
def test_the_example_records_of_the_lambda_page_have_the_sizes_aws_reports() -> None:
    keys = {"Id": {"N": "101"}}
    inserted = {"Message": {"S": "New item!"}, "Id": {"N": "101"}}
    changed = {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}}
    assert item_size(keys) + item_size(inserted) == 26
    assert item_size(keys) + item_size(changed) + item_size(inserted) == 59
    assert item_size(keys) + item_size(changed) == 38


@pytest.mark.parametrize("text, size", [
    ("0", 1), ("1", 2), ("12", 2), ("123", 3), ("101", 3), ("100", 2), ("1000000", 2), ("0.001", 2),
    ("-12.5", 3), ("1234567890", 6), ("1E+5", 2), ("-0.0", 1), ("00012.3400", 3), ("1.5e-3", 2),
])
def test_a_number_takes_one_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_every_type_is_sized_by_its_rule() -> None:
    assert value_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert value_size({"B": "AAEC"}) == 3 == value_size({"B": b"\x00\x01\x02"})  # raw bytes, not base64
    assert value_size({"BOOL": True}) == 1 == value_size({"NULL": True})
    assert value_size({"SS": ["ab", "c"]}) == 3
    assert value_size({"NS": ["1", "22"]}) == 4
    assert value_size({"L": []}) == 3 == value_size({"M": {}})
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (2 + 1) + (2 + 1)
    assert value_size({"M": {"k": {"S": "ab"}}}) == 3 + 1 + 2 + 1


def test_moto_values_are_sized_like_wire_values() -> None:
    def moto(kind: str, value: object) -> SimpleNamespace:
        return SimpleNamespace(type=kind, value=value)

    nested = moto("M", {"k": moto("L", [moto("S", "ab"), moto("N", "12")])})
    assert value_size(nested) == value_size({"M": {"k": {"L": [{"S": "ab"}, {"N": "12"}]}}}) == 3 + 1 + (3 + 3 + 3) + 1


# -- units (read-write-operations.html) --------------------------------------------------------------
@pytest.mark.parametrize("size, consistent, transactional, units", [
    (0, False, False, 0.5), (3_500, False, False, 0.5), (3_500, True, False, 1.0), (4_096, True, False, 1.0),
    (4_097, True, False, 2.0), (8 * 1024, False, False, 1.0), (8 * 1024, True, False, 2.0),
    (8 * 1024, True, True, 4.0), (10 * 1024, True, False, 3.0),
])
def test_reads_count_4_kb_steps_halved_when_eventually_consistent_doubled_in_transactions(
        size: int, consistent: bool, transactional: bool, units: float) -> None:
    assert read_units(size, consistent=consistent, transactional=transactional) == units


@pytest.mark.parametrize("size, transactional, units", [
    (0, False, 1.0), (500, False, 1.0), (1024, False, 1.0), (1025, False, 2.0), (3_500, False, 4.0), (3_500, True, 8.0),
])
def test_writes_count_1_kb_steps_doubled_in_transactions(size: int, transactional: bool, units: float) -> None:
    assert write_units(size, transactional=transactional) == units


TABLE = TableShape("t", ("pk",), (
    IndexShape("by-owner", ("owner",), "KEYS_ONLY"),
    IndexShape("by-state", ("state", "at"), "INCLUDE", ("note",)),
    IndexShape("local", ("at",), "ALL", is_global=False),
))


def item(**attributes: str) -> dict[str, dict[str, str]]:
    return {name: {"S": value} for name, value in attributes.items()}


def test_a_put_is_charged_the_larger_of_the_old_and_new_item() -> None:
    big = item(pk="a", blob="x" * 2_000)
    [charge] = write_charges(TableShape("t", ("pk",)), big, item(pk="a"))
    assert charge == Charge("t", "", WRITE, 2.0)
    [charge] = write_charges(TableShape("t", ("pk",)), None, None)  # deleting nothing costs the minimum
    assert charge.units == 1.0


def test_an_index_costs_a_write_only_when_its_entry_changes() -> None:
    owner = TABLE.index("by-owner")
    assert owner is not None
    assert index_write_units(TABLE, owner, None, item(pk="a", x="1")) == 0  # not in the (sparse) index
    assert index_write_units(TABLE, owner, None, item(pk="a", owner="o")) == 1  # enters
    assert index_write_units(TABLE, owner, item(pk="a", owner="o"), item(pk="a")) == 1  # leaves
    assert index_write_units(TABLE, owner, item(pk="a", owner="o"), item(pk="a", owner="p")) == 2  # key changes
    assert index_write_units(TABLE, owner, item(pk="a", owner="o", x="1"), item(pk="a", owner="o", x="2")) == 0
    state = TABLE.index("by-state")
    assert state is not None
    before = item(pk="a", state="s", at="1", note="n", other="o")
    assert index_write_units(TABLE, state, before, {**before, "other": {"S": "p"}}) == 0  # not projected
    assert index_write_units(TABLE, state, before, {**before, "note": {"S": "m"}}) == 1  # projected attribute


def test_an_index_entry_is_sized_by_what_it_projects() -> None:
    owner = TABLE.index("by-owner")
    assert owner is not None
    huge = item(pk="a", owner="o", blob="x" * 5_000)
    assert index_write_units(TABLE, owner, None, huge) == 1  # KEYS_ONLY: pk and owner
    [table, by_owner, local] = write_charges(TABLE, None, {**huge, "at": {"S": "1"}})
    assert table.units == 5.0 and by_owner == Charge("t", "by-owner", WRITE, 1.0, True)
    assert local == Charge("t", "local", WRITE, 5.0, False)  # ALL projects the whole item
    assert local.bucket_key == ("t", "", WRITE), "a local index consumes the table's capacity"


def test_consumed_capacity_has_the_api_shape_for_total_and_indexes() -> None:
    charges = [Charge("t", "", WRITE, 2.0), Charge("t", "by-owner", WRITE, 1.0, True), Charge("t", "local", WRITE, 2.0),
               Charge("u", "", WRITE, 1.0)]
    assert consumed_capacity("t", charges, "NONE") is None
    assert consumed_capacity("t", charges, "TOTAL") == {"TableName": "t", "CapacityUnits": 5.0}
    assert consumed_capacity("t", charges, "INDEXES") == {
        "TableName": "t", "CapacityUnits": 5.0, "Table": {"CapacityUnits": 2.0},
        "GlobalSecondaryIndexes": {"by-owner": {"CapacityUnits": 1.0}},
        "LocalSecondaryIndexes": {"local": {"CapacityUnits": 2.0}},
    }
    reads = [read_charge(TABLE, None, 100, consistent=True, transactional=True)]
    assert consumed_capacity("t", reads, "TOTAL", split_read_write=True) == {
        "TableName": "t", "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}
    assert read_charge(TABLE, "by-owner", 5_000, consistent=False) == Charge("t", "by-owner", READ, 1.0, True)
