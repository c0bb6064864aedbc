"""emulator.sources.kinesis_limits: shard read limits, exact numbers in virtual time."""

from __future__ import annotations

import pytest

from emulator.sources.kinesis_limits import (
    MAX_BYTES_PER_GET_RECORDS,
    MAX_READ_CALLS_PER_SECOND,
    READ_BYTES_PER_SECOND,
    ShardReadLimits,
    ShardReadState,
    acquire_read,
    cap_response,
    charge_read,
    record_bytes,
)

MIB = 1024 * 1024


def test_the_documented_limits() -> None:
    assert MAX_READ_CALLS_PER_SECOND == 5
    assert READ_BYTES_PER_SECOND == 2 * MIB
    assert MAX_BYTES_PER_GET_RECORDS == 10 * MIB


def test_five_calls_per_second_then_refused_until_the_first_leaves_the_window() -> None:
    state = ShardReadState()
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        decision = acquire_read(state, t)
        assert decision.granted
        state = decision.state
    refused = acquire_read(state, 0.5)
    assert not refused.granted
    assert refused.retry_at == pytest.approx(1.0)
    assert acquire_read(refused.state, 1.0).granted is True


def test_a_refused_call_is_not_counted() -> None:
    state = ShardReadState(recent_calls=(0.0, 0.0, 0.0, 0.0, 0.0))
    for _ in range(3):
        decision = acquire_read(state, 0.5)
        assert not decision.granted
        state = decision.state
    assert len(state.recent_calls) == 5


def test_after_a_10_mb_response_the_shard_is_unreadable_for_5_seconds() -> None:
    decision = acquire_read(ShardReadState(), 0.0)
    state = charge_read(decision.state, 0.0, 10 * MIB)
    for t in (0.5, 2.0, 4.99):
        refused = acquire_read(state, t)
        assert not refused.granted and refused.retry_at == pytest.approx(5.0)
    assert acquire_read(state, 5.0).granted


def test_two_mb_per_second_on_average() -> None:
    """Five calls a second of 400 KiB each is exactly the budget; 800 KiB is twice it."""
    state, now = ShardReadState(), 0.0
    for _ in range(5):
        decision = acquire_read(state, now)
        assert decision.granted
        state = charge_read(decision.state, now, 2 * MIB // 5)
        now += 0.2
    state, now, granted = ShardReadState(), 0.0, 0
    while now < 1.0:
        decision = acquire_read(state, now)
        if decision.granted:
            granted += 1
            state = charge_read(decision.state, now, 2 * MIB * 2 // 5)
        now = round(now + 0.2, 6)
    assert granted == 3  # at 0.0, 0.4 and 0.8


def test_the_debt_accumulates_from_when_it_is_already_owed() -> None:
    state = charge_read(ShardReadState(), 0.0, 2 * MIB)
    state = charge_read(state, 0.5, 2 * MIB)
    assert state.bytes_free_at == pytest.approx(2.0)
    assert charge_read(state, 0.5, 0) is state


def test_limits_are_shared_by_every_consumer_of_a_shard() -> None:
    limits = ShardReadLimits()
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
    for _ in range(3):
        assert limits.acquire(arn, "shardId-000000000000", 0.0).granted
        assert limits.acquire(arn, "shardId-000000000001", 0.0).granted
    # a second mapping on the same stream now has two calls left on shard 0
    assert limits.acquire(arn, "shardId-000000000000", 0.1).granted
    assert limits.acquire(arn, "shardId-000000000000", 0.1).granted
    assert not limits.acquire(arn, "shardId-000000000000", 0.1).granted
    assert limits.throttled_calls == {(arn, "shardId-000000000000"): 1}


def test_record_bytes_counts_data_and_partition_key() -> None:
    assert record_bytes("aGVsbG8=", "k1") == 5 + 2  # "hello"
    assert record_bytes("aGVsbG8h", "") == 6  # "hello!"
    assert record_bytes("aGk=", "") == 2


def test_cap_response_keeps_at_most_10_mb_but_always_one_record() -> None:
    assert cap_response([4 * MIB, 4 * MIB, 4 * MIB]) == 2
    assert cap_response([11 * MIB, 1]) == 1
    assert cap_response([1, 2, 3]) == 3
    assert cap_response([]) == 0
