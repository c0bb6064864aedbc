"""The DynamoDB stream store and its iterators, in virtual time (`now_ms` is passed in)."""

from __future__ import annotations

from emulator.moto_child.ddb_stream_store import (
    MAX_BYTES_PER_GET,
    RETENTION_MS,
    SHARD_ITERATOR_LIFETIME_MS,
    StreamIterator,
    StreamStore,
    decode_iterator,
    format_sequence_number,
    parse_sequence_number,
)

T0 = 1_700_000_000_000
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"


def filled(count: int, *, start: int = 10, step_ms: int = 0, text: str = "{}") -> StreamStore:
    store = StreamStore(start)
    for i in range(count):
        store.append(start + 1 + i, T0 + i * step_ms, text.replace("}", f'"i":{i}}}') if text == "{}" else text)
    return store


def test_sequence_numbers_are_26_digits_and_round_trip() -> None:
    text = format_sequence_number(42)
    assert len(text) == 26 and parse_sequence_number(text) == 42
    assert parse_sequence_number("12x") is None and parse_sequence_number(None) is None


def test_pages_follow_the_position_and_the_limit() -> None:
    store = filled(5)
    page = store.read(10, limit=2)
    assert page.records == ['{"i":0}', '{"i":1}'] and page.after == 12 and not page.trimmed
    assert store.read(page.after, limit=10).records == ['{"i":2}', '{"i":3}', '{"i":4}']
    empty = store.read(15, limit=10)
    assert empty.records == [] and empty.after == 15


def test_a_page_holds_at_most_one_megabyte_but_always_one_record() -> None:
    big = "x" * (MAX_BYTES_PER_GET // 2 + 1)
    store = filled(3, text=big)
    assert len(store.read(10, limit=1000).records) == 1
    store = filled(1, text="y" * (MAX_BYTES_PER_GET + 5))
    assert len(store.read(10, limit=1000).records) == 1


def test_records_older_than_24_hours_are_trimmed_and_reading_them_is_refused() -> None:
    store = filled(4, step_ms=1_000)
    assert store.trim(T0 + RETENTION_MS + 1_500) == 2
    assert len(store) == 2 and store.trimmed_through == 12
    assert store.read(10, limit=10).trimmed, "the position is older than the trim horizon"
    page = store.read(12, limit=10)
    assert not page.trimmed and page.records == ['{"i":2}', '{"i":3}']


def test_trimming_a_large_head_compacts_the_store() -> None:
    store = filled(3_000, step_ms=1)
    store.trim(T0 + RETENTION_MS + 2_000)
    assert len(store) == 1_000 and store.capacity == 1_000, "the 2,000 trimmed slots are gone"
    assert store.read(store.trimmed_through, limit=1).records == ['{"i":2000}']


def test_a_failed_transaction_truncates_what_it_appended() -> None:
    store = filled(3)
    length = len(store)
    store.append(99, T0, '{"late":1}')
    store.truncate(length)
    assert len(store) == 3 and store.newest_sequence == 13


def test_iterators_are_tokens_that_expire_after_15_minutes() -> None:
    iterator = StreamIterator(ARN, "shardId-1", 12, T0)
    token = iterator.encode()
    assert token.startswith(ARN + "|1|")
    assert decode_iterator(token) == iterator
    assert decode_iterator("not a token") is None and decode_iterator(ARN + "|1|!!!") is None
    assert not iterator.expired(T0 + SHARD_ITERATOR_LIFETIME_MS)
    assert iterator.expired(T0 + SHARD_ITERATOR_LIFETIME_MS + 1)
