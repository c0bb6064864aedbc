"""The indexed Kinesis shard store, sequence numbers, routing and iterators, in virtual time
(`now_ms` is passed in)."""

from __future__ import annotations

import hashlib
import sys

import pytest

from emulator.moto_child.kinesis_store import (
    HASH_KEY_LIMIT,
    MAX_BYTES_PER_GET,
    MS_PER_HOUR,
    SHARD_ITERATOR_LIFETIME_MS,
    HashRanges,
    SequenceCounter,
    ShardIterator,
    ShardStore,
    decode_shard_iterator,
    format_sequence_number,
    parse_hash_key,
    parse_sequence_number,
    partition_hash,
    record_size,
)

T0 = 1_700_000_000_000
DAY_HOURS = 24


def filled(count: int, *, start: int = 100, now: int = T0, step_ms: int = 0, data: bytes = b"x") -> ShardStore:
    store = ShardStore(starting_sequence=start)
    for i in range(count):
        store.append(start + 1 + i, f"key-{i}", data, now + i * step_ms)
    return store


def keys(store_records: list) -> list[str]:
    return [r.partition_key for r in store_records]


# -- sequence numbers ------------------------------------------------------------------------------
def test_sequence_numbers_are_56_digits_and_sort_the_same_as_strings_and_numbers() -> None:
    counter = SequenceCounter()
    numbers = [format_sequence_number(counter.take()) for _ in range(12)]
    assert all(len(n) == 56 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers) == sorted(numbers, key=int)  # moto's "10" < "9" cannot happen
    assert [parse_sequence_number(n) for n in numbers] == list(range(1, 13))


def test_a_counter_hands_out_consecutive_blocks() -> None:
    counter = SequenceCounter()
    assert counter.take(500) == 1
    assert counter.take() == 501
    assert counter.take(3) == 502 and counter.last == 504


@pytest.mark.parametrize("text", ["", "01", "-1", "1.5", "12a", "9" * 130, None, 12])
def test_malformed_sequence_numbers_are_refused(text: object) -> None:
    assert parse_sequence_number(text) is None


def test_small_sequence_numbers_sort_before_every_record() -> None:
    assert parse_sequence_number("0") < parse_sequence_number("1") < 0  # type: ignore[operator]


# -- routing ------------------------------------------------------------------------------------------
def test_partition_keys_hash_with_md5_as_a_128_bit_integer() -> None:
    assert partition_hash("key") == int(hashlib.md5(b"key").hexdigest(), 16)
    assert partition_hash("ключ") == int(hashlib.md5("ключ".encode()).hexdigest(), 16)


def test_hash_ranges_include_both_ends_and_skip_gaps() -> None:
    half = HASH_KEY_LIMIT // 2
    ranges = HashRanges([(half, HASH_KEY_LIMIT - 1, "second"), (0, half - 1, "first")])
    assert ranges.shard_for(0) == "first"
    assert ranges.shard_for(half - 1) == "first"
    assert ranges.shard_for(half) == "second"
    assert ranges.shard_for(HASH_KEY_LIMIT - 1) == "second"  # moto: no shard (its end is exclusive)
    gappy = HashRanges([(10, 19, "a"), (30, 39, "b")])
    assert [gappy.shard_for(k) for k in (9, 10, 19, 20, 30, 40)] == [None, "a", "a", None, "b", None]


@pytest.mark.parametrize("text, value", [("0", 0), ("42", 42), (str(HASH_KEY_LIMIT - 1), HASH_KEY_LIMIT - 1),
                                         (str(HASH_KEY_LIMIT), None), ("x", None), ("042", None), ("", None), (7, None)])
def test_explicit_hash_keys(text: object, value: int | None) -> None:
    assert parse_hash_key(text) == value


# -- iterators ---------------------------------------------------------------------------------------------
def test_iterators_round_trip_and_expire_after_five_minutes() -> None:
    iterator = ShardIterator("my-stream.v2", "shardId-000000000003", 1234, T0)
    token = iterator.encode()
    assert decode_shard_iterator(token) == iterator
    assert not iterator.expired(T0 + SHARD_ITERATOR_LIFETIME_MS)
    assert iterator.expired(T0 + SHARD_ITERATOR_LIFETIME_MS + 1)
    assert SHARD_ITERATOR_LIFETIME_MS == 300_000


@pytest.mark.parametrize("token", ["garbage", "", "Zm9v", "YTpiOmM6ZA==", None, 5, "czpzaGFyZElkLTAwMDAwMDAwMDAwMDow\n"])
def test_tokens_we_did_not_issue_are_refused(token: object) -> None:
    assert decode_shard_iterator(token) is None


# -- writing and reading --------------------------------------------------------------------------------
def test_pages_in_order_from_a_position() -> None:
    store = filled(25)
    first = store.read(store.starting_sequence, 10, T0)
    assert keys(first.records) == [f"key-{i}" for i in range(10)]
    assert first.after == first.records[-1].sequence and not first.at_end
    second = store.read(first.after, 10, T0)
    assert keys(second.records) == [f"key-{i}" for i in range(10, 20)]
    third = store.read(second.after, 10, T0)
    assert keys(third.records) == [f"key-{i}" for i in range(20, 25)] and third.at_end
    empty = store.read(third.after, 10, T0)
    assert empty.records == [] and empty.after == third.after and empty.at_end


def test_a_position_between_records_starts_at_the_next_one() -> None:
    store = ShardStore(starting_sequence=0)
    for sequence in (10, 20, 30):
        store.append(sequence, f"k{sequence}", b"d", T0)
    assert keys(store.read(9, 10, T0).records) == ["k10", "k20", "k30"]  # AT_SEQUENCE_NUMBER 10
    assert keys(store.read(10, 10, T0).records) == ["k20", "k30"]  # AFTER_SEQUENCE_NUMBER 10
    assert keys(store.read(25, 10, T0).records) == ["k30"]
    assert store.read(30, 10, T0).records == []  # LATEST


def test_a_page_holds_at_most_10_mib_but_always_one_record() -> None:
    store = ShardStore(0)
    blob = b"z" * (4 * 1024 * 1024)
    for sequence in range(1, 5):
        store.append(sequence, "k", blob, T0)
    page = store.read(0, 10_000, T0)
    assert len(page.records) == 2 and sum(record_size(r.partition_key, r.data) for r in page.records) <= MAX_BYTES_PER_GET
    huge = ShardStore(0)
    huge.append(1, "k", b"z" * (MAX_BYTES_PER_GET + 1), T0)
    assert len(huge.read(0, 10, T0).records) == 1


def test_millis_behind_latest_is_the_age_of_the_first_record_left_unread() -> None:
    store = filled(5, now=T0, step_ms=100)  # arrivals T0, T0+100, ..., T0+400
    page = store.read(store.starting_sequence, 2, T0 + 1_000)
    assert page.millis_behind_latest == 1_000 - 200  # the third record arrived at T0+200
    assert store.read(page.after, 10, T0 + 1_000).millis_behind_latest == 0  # caught up
    same_ms = filled(3, now=T0)
    assert same_ms.read(same_ms.starting_sequence, 1, T0).millis_behind_latest == 1  # records left: never 0


def test_arrivals_never_decrease_within_a_shard() -> None:
    store = ShardStore(0)
    assert store.append(1, "a", b"", T0) == T0
    assert store.append(2, "b", b"", T0 - 50) == T0  # the clock stepped back
    assert store.append(3, "c", b"", T0 + 5) == T0 + 5


def test_at_timestamp_starts_at_the_first_record_at_or_after_it() -> None:
    store = filled(5, now=T0, step_ms=100)
    assert keys(store.read(store.after_time(T0 + 200), 10, T0).records) == ["key-2", "key-3", "key-4"]
    assert keys(store.read(store.after_time(T0 + 150), 10, T0).records) == ["key-2", "key-3", "key-4"]
    assert len(store.read(store.after_time(T0 - 10_000), 10, T0).records) == 5  # older than everything: TRIM_HORIZON
    assert store.read(store.after_time(T0 + 10_000), 10, T0).records == []  # the future: the tip


def test_explicit_hash_keys_are_kept_with_their_records() -> None:
    store = ShardStore(0)
    store.append(1, "a", b"", T0, explicit_hash_key="123")
    store.append(2, "b", b"", T0)
    assert [r.explicit_hash_key for r in store] == ["123", None]


# -- retention -------------------------------------------------------------------------------------------------
def test_records_older_than_the_retention_period_are_trimmed() -> None:
    store = filled(10, now=T0, step_ms=MS_PER_HOUR)  # one record an hour
    now = T0 + (DAY_HOURS + 3) * MS_PER_HOUR + 1
    assert store.trim(now, DAY_HOURS) == 4  # arrived more than 24 h before now: hours 0-3
    assert len(store) == 6 and store.oldest_sequence == store.starting_sequence + 5
    assert keys(store.read(store.starting_sequence, 100, now).records)[0] == "key-4"  # TRIM_HORIZON
    assert keys(store.read(store.starting_sequence + 2, 100, now).records)[0] == "key-4"  # a trimmed position
    assert store.trim(now, DAY_HOURS) == 0
    assert store.newest_sequence == store.starting_sequence + 10


def test_trimmed_records_are_freed() -> None:
    store = filled(5_000, now=T0, data=b"payload")
    store.append(store.newest_sequence + 1, "late", b"kept", T0 + 2 * MS_PER_HOUR)
    store.trim(T0 + DAY_HOURS * MS_PER_HOUR + 1, DAY_HOURS)
    assert [r.partition_key for r in store] == ["late"]
    assert store.capacity == 1  # the trimmed slots are gone, not only skipped
    few = ShardStore(0)
    blob = bytes(bytearray(b"only reference is ours and the store's"))
    unshared = sys.getrefcount(blob)
    few.append(1, "k", blob, T0)
    assert sys.getrefcount(blob) == unshared + 1
    few.trim(T0 + DAY_HOURS * MS_PER_HOUR + 1, DAY_HOURS)
    assert len(few) == 0 and few.capacity == 1  # too few to compact yet ...
    assert sys.getrefcount(blob) == unshared  # ... but the record's data is released


def test_a_steady_flow_holds_a_bounded_store() -> None:
    store = ShardStore(0)
    retention_hours = 1
    capacities = []
    for second in range(4 * 3600):  # four hours at 10 records/s, trimmed as puts arrive
        now = T0 + second * 1000
        store.trim(now, retention_hours)
        for i in range(10):
            store.append(second * 10 + i + 1, "k", b"d", now)
        capacities.append(store.capacity)
    assert len(store) == 36_010
    assert max(capacities[3600:]) <= 2 * 36_010  # compacted: at most twice what is kept
