"""emulator.sources.kinesis_batching: cadence, batching, lanes and checkpoints."""

from __future__ import annotations

import collections

from emulator.sources.kinesis_batching import (
    MAX_BATCH_PAYLOAD_BYTES,
    PAYLOAD_ENVELOPE_BYTES,
    POLL_INTERVAL_S,
    ShardPosition,
    TakeBatch,
    WaitForBatch,
    fitting_prefix,
    lane_of,
    next_poll_at,
    read_ahead_limit,
    shard_checkpoint,
    take_batch,
)


# -- cadence -------------------------------------------------------------------------------
def test_polls_once_per_second_when_caught_up() -> None:
    assert POLL_INTERVAL_S == 1.0
    assert next_poll_at(10.0, fetched=0, requested=100, millis_behind_latest=0) == 11.0
    assert next_poll_at(10.0, fetched=3, requested=100, millis_behind_latest=0) == 11.0


def test_polls_again_at_once_while_catching_up() -> None:
    assert next_poll_at(10.0, fetched=100, requested=100, millis_behind_latest=0) == 10.0
    assert next_poll_at(10.0, fetched=3, requested=100, millis_behind_latest=250) == 10.0


def test_read_ahead_is_two_batches_per_lane_and_at_least_a_thousand_records() -> None:
    assert read_ahead_limit(1000, 1) == 2000
    assert read_ahead_limit(500, 4) == 4000
    assert read_ahead_limit(10, 4) == 1000


# -- batching --------------------------------------------------------------------------------
def test_without_a_window_any_buffered_record_is_a_batch() -> None:
    assert take_batch([10, 10, 10], batch_size=100, window_s=0, window_started_at=0.0, now=0.0) == TakeBatch(3)
    assert take_batch([], batch_size=100, window_s=0, window_started_at=0.0, now=0.0) == WaitForBatch(None)


def test_batch_size_caps_a_batch() -> None:
    assert take_batch([10] * 250, batch_size=100, window_s=0, window_started_at=0.0, now=0.0) == TakeBatch(100)


def test_a_window_waits_until_it_ends_or_the_batch_is_full() -> None:
    assert take_batch([10] * 5, batch_size=100, window_s=5, window_started_at=20.0, now=21.0) == WaitForBatch(25.0)
    assert take_batch([10] * 5, batch_size=100, window_s=5, window_started_at=20.0, now=25.0) == TakeBatch(5)
    assert take_batch([10] * 100, batch_size=100, window_s=5, window_started_at=20.0, now=21.0) == TakeBatch(100)


def test_six_mb_caps_a_batch_exactly() -> None:
    size = 1024 * 1024
    # five 1 MiB records plus envelope and commas fit; the sixth does not
    assert fitting_prefix([size] * 7, batch_size=100) == 5
    decision = take_batch([size] * 7, batch_size=100, window_s=300, window_started_at=0.0, now=1.0)
    assert decision == TakeBatch(5)  # the payload is full: no need to wait for the window
    exact = MAX_BATCH_PAYLOAD_BYTES - PAYLOAD_ENVELOPE_BYTES - 1
    assert fitting_prefix([exact // 2, exact - exact // 2, 1], batch_size=10) == 2


def test_an_oversized_record_still_goes_alone() -> None:
    assert fitting_prefix([MAX_BATCH_PAYLOAD_BYTES * 2, 5], batch_size=10) == 1


# -- lanes and checkpoints ---------------------------------------------------------------------
def test_a_partition_key_always_maps_to_the_same_lane() -> None:
    assert {lane_of("user-42", 4) for _ in range(10)} == {lane_of("user-42", 4)}
    assert lane_of("anything", 1) == 0


def test_lanes_spread_keys() -> None:
    counts = collections.Counter(lane_of(f"key-{i}", 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 800


def test_checkpoint_is_the_lowest_unfinished_record_of_any_lane() -> None:
    assert shard_checkpoint(["17", None, "9"], last_read="40") == ShardPosition("AT_SEQUENCE_NUMBER", "9")
    # sequence numbers compare as numbers, not strings
    assert shard_checkpoint(["100", "99"], last_read="200") == ShardPosition("AT_SEQUENCE_NUMBER", "99")


def test_checkpoint_after_the_last_read_record_when_all_lanes_are_idle() -> None:
    assert shard_checkpoint([None, None], last_read="40") == ShardPosition("AFTER_SEQUENCE_NUMBER", "40")
    assert shard_checkpoint([None], last_read=None) is None
