"""The indexed SQS message store in virtual time (`now` in ms is passed in), with moto's Message."""

from __future__ import annotations

import gc
import itertools
import weakref
from typing import Any

import pytest
from moto.sqs.models import Message

from emulator.moto_child.sqs_store import (
    COMPACT_FACTOR, COMPACT_SLACK, DEDUPLICATION_INTERVAL_MS, DELAYED, DELETED_HANDLE_WINDOW_MS, GONE, IN_FLIGHT,
    MAX_DELETED_HANDLES, READY, InvalidReceiptHandle, MessageStore,
)

T0 = 1_700_000_000_000.0
RETENTION_S = 345_600  # moto's default, 4 days


def store(fifo: bool = False, **limits: Any) -> MessageStore:
    handles = (f"handle-{i}" for i in itertools.count())
    return MessageStore(fifo, lambda: next(handles), **limits)


def message(body: str, now: float = T0, *, group: str | None = None, delay_s: int = 0) -> Message:
    m = Message(f"id-{body}", body)
    m.sent_timestamp = int(now)
    m.group_id = group
    if delay_s:
        m.delayed_until = now + delay_s * 1000
    return m


def bodies(messages: list[Message]) -> list[str]:
    return [m.body for m in messages]


def test_receive_in_arrival_order_and_hide_for_the_visibility_timeout() -> None:
    s = store()
    for body in "abc":
        s.add(message(body), T0)
    got = s.receive(2, 30, T0, None).messages
    assert bodies(got) == ["a", "b"]
    assert [s.state(m) for m in got] == [IN_FLIGHT, IN_FLIGHT]
    assert (s.counts().visible, s.counts().not_visible) == (1, 2)
    assert bodies(s.receive(10, 30, T0, None).messages) == ["c"]
    assert s.receive(10, 30, T0 + 29_000, None).messages == []
    s.advance(T0 + 30_001, RETENTION_S)
    again = s.receive(10, 30, T0 + 30_001, None).messages
    assert bodies(again) == ["a", "b", "c"]  # back in arrival order
    assert [m.approximate_receive_count for m in again] == [2, 2, 2]


def test_receive_marks_like_moto() -> None:
    s = store()
    m = message("a")
    s.add(m, T0)
    s.receive(1, 0, T0 + 5, None)  # visibility timeout 0: visible again at once
    first_handle = m.receipt_handle
    s.receive(1, 0, T0 + 9, None)
    assert m.approximate_receive_count == 2
    assert m.approximate_first_receive_timestamp == int(T0 + 5)
    assert m.receipt_handle != first_handle and first_handle in m.all_receipt_handles
    assert s.state(m) is READY


def test_delete_accepts_every_handle_the_message_had_and_repeats() -> None:
    s = store()
    m = message("a")
    s.add(m, T0)
    s.receive(1, 0, T0, None)
    stale = m.receipt_handle
    s.receive(1, 30, T0, None)
    s.delete(stale, T0)  # moto deletes with an earlier handle too
    assert len(s) == 0 and s.state(m) is GONE
    s.delete(stale, T0)
    s.delete(m.receipt_handle, T0)  # already deleted: fine
    with pytest.raises(InvalidReceiptHandle):
        s.delete("never-given", T0)


def test_change_visibility() -> None:
    s = store()
    m = message("a")
    s.add(m, T0)
    s.receive(1, 30, T0, None)
    s.change_visibility(m, 0, T0 + 1)
    assert s.state(m) is READY and s.counts().visible == 1
    s.change_visibility(m, 10, T0 + 2)  # moto hides a visible message again
    assert s.state(m) is IN_FLIGHT
    s.advance(T0 + 10_003, RETENTION_S)
    assert s.state(m) is READY


def test_delays_count_as_delayed_until_they_pass() -> None:
    s = store()
    s.add(message("late", delay_s=5), T0)
    s.add(message("now"), T0)
    assert (s.counts().visible, s.counts().delayed) == (1, 1)
    assert bodies(s.receive(10, 30, T0, None).messages) == ["now"]
    s.advance(T0 + 5_001, RETENTION_S)
    assert s.counts().delayed == 0
    assert bodies(s.receive(10, 30, T0 + 5_001, None).messages) == ["late"]


def test_redrive_at_receive_after_max_receive_count() -> None:
    s = store()
    m = message("a")
    s.add(m, T0)
    s.add(message("b"), T0)
    s.receive(1, 0, T0, None)
    s.receive(1, 0, T0, None)  # "a" received twice
    got = s.receive(10, 30, T0, 2)
    assert bodies(got.to_dead_letter) == ["a"] and bodies(got.messages) == ["b"]
    assert s.state(m) is GONE and len(s) == 1
    dlq = store()
    dlq.add(m, T0)
    assert dlq.state(m) is READY and m.approximate_receive_count == 2


def test_retention_deletes_old_messages() -> None:
    s = store()
    old = message("old", T0)
    s.add(old, T0)
    s.add(message("new", T0 + 60_000), T0 + 60_000)
    expired = s.advance(T0 + 100_000, 100)
    assert bodies(expired) == ["old"]
    assert len(s) == 1 and s.state(old) is GONE
    assert bodies(s.receive(10, 30, T0 + 100_000, None).messages) == ["new"]


def test_fifo_keeps_group_order_and_holds_a_group_while_in_flight() -> None:
    s = store(fifo=True)
    for body, group in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A")]:
        s.add(message(body, group=group), T0)
    first = s.receive(2, 30, T0, None).messages
    assert bodies(first) == ["a1", "a2"]  # as many of one group as it can (AWS)
    second = s.receive(10, 30, T0, None).messages
    assert bodies(second) == ["b1", "b2"]  # group A waits: a message of it is in flight
    assert s.receive(10, 30, T0, None).messages == []
    s.delete(first[0].receipt_handle, T0)
    assert s.receive(10, 30, T0, None).messages == []  # a2 is still in flight
    s.delete(first[1].receipt_handle, T0)
    assert bodies(s.receive(10, 30, T0, None).messages) == ["a3"]


def test_fifo_redelivers_in_order_after_the_visibility_timeout() -> None:
    s = store(fifo=True)
    for body in ["a1", "a2", "a3"]:
        s.add(message(body, group="A"), T0)
    s.receive(2, 10, T0, None)  # a1, a2 in flight
    s.advance(T0 + 10_001, RETENTION_S)
    assert bodies(s.receive(10, 10, T0 + 10_001, None).messages) == ["a1", "a2", "a3"]


def test_fifo_group_waits_for_its_last_message_in_flight() -> None:
    s = store(fifo=True)
    for body in ["a1", "a2", "a3"]:
        s.add(message(body, group="A"), T0)
    a1, a2 = s.receive(2, 10, T0, None).messages
    s.change_visibility(a2, 60, T0)  # a1 comes back first, a2 stays in flight
    s.advance(T0 + 10_001, RETENTION_S)
    assert s.receive(10, 10, T0 + 10_001, None).messages == []
    s.delete(a2.receipt_handle, T0 + 10_001)
    assert bodies(s.receive(10, 10, T0 + 10_001, None).messages) == ["a1", "a3"]


def test_fifo_deduplication_window() -> None:
    s = store(fifo=True)
    assert not s.is_duplicate("x", T0, T0)
    assert s.is_duplicate("x", T0 + 1_000, T0 + 1_000)
    assert not s.is_duplicate("y", T0 + 1_000, T0 + 1_000)
    later = T0 + DEDUPLICATION_INTERVAL_MS
    assert not s.is_duplicate("x", later, later)


def test_counts_follow_every_transition() -> None:
    s = store()
    for body in "abcd":
        s.add(message(body), T0)
    s.add(message("d2", delay_s=10), T0)
    a, b = s.receive(2, 30, T0, None).messages
    s.delete(a.receipt_handle, T0)
    c = s.counts()
    assert (c.visible, c.not_visible, c.delayed) == (2, 1, 1)
    assert len(s) == 4
    s.advance(T0 + 30_001, RETENTION_S)
    c = s.counts()
    assert (c.visible, c.not_visible, c.delayed) == (4, 0, 0) and s.state(b) is READY


def test_next_due_is_the_earliest_timer_or_expiry() -> None:
    s = store()
    assert s.next_due(RETENTION_S) is None
    s.add(message("a", delay_s=3), T0)
    assert s.next_due(RETENTION_S) == T0 + 3_000
    assert s.next_due(2) == T0 + 2_000  # the oldest message expires first
    s.advance(T0 + 1, RETENTION_S)
    assert s.state(next(iter(s))) is DELAYED


def test_next_due_skips_timers_of_deleted_messages() -> None:
    s = store()
    for body in "ab":
        s.add(message(body), T0)
    a, b = s.receive(2, 30, T0, None).messages
    s.change_visibility(b, 60, T0)
    s.delete(a.receipt_handle, T0)
    assert s.next_due(RETENTION_S) == T0 + 60_000  # not a's timer at T0 + 30 s


# -- memory follows the live messages, not the traffic ---------------------------------------
CYCLES = 5_000  # more than COMPACT_SLACK: the heaps must have been compacted


@pytest.fixture
def untracked_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's BaseModel records every Message it creates (the moto child stops that:
    # tests/component/test_moto_sqs_fast.py); here the store alone is under test.
    monkeypatch.setattr(Message, "instances_tracked", [])


@pytest.mark.parametrize("fifo", [False, True])
def test_deleted_messages_are_freed_behind_an_old_in_flight_message(fifo: bool, untracked_messages: None) -> None:
    s = store(fifo)
    old = message("old", group="old")
    s.add(old, T0)
    assert s.receive(1, 43_200, T0, None).messages == [old]  # in flight for 12 hours, sent first
    alive: weakref.WeakSet[Message] = weakref.WeakSet()
    now = T0
    for i in range(CYCLES):
        now += 1
        sent = message(f"m{i}", now, group=f"g{i % 7}")
        alive.add(sent)
        s.add(sent, now)
        [got] = s.receive(1, 30, now, None).messages
        s.delete(got.receipt_handle, now)
        del sent, got
    Message.instances_tracked.clear()
    gc.collect()
    assert len(alive) == 0  # every index let go of the deleted messages
    sizes = s.footprint()
    assert sizes["live"] == 1 and sizes["handles"] == 1
    heaps = {name: sizes[name] for name in ("ready", "group_heads", "timers", "by_sent")}
    assert max(heaps.values()) <= COMPACT_FACTOR * 1 + COMPACT_SLACK, heaps
    assert s.counts().not_visible == 1 and s.state(old) is IN_FLIGHT


def test_stale_timers_are_compacted_but_live_ones_kept(untracked_messages: None) -> None:
    s = store()
    for body in range(3 * COMPACT_SLACK):
        s.add(message(str(body)), T0)
    received = s.receive(3 * COMPACT_SLACK, 30, T0, None).messages
    for m in received[:-2]:
        s.delete(m.receipt_handle, T0)
    assert s.footprint()["timers"] <= COMPACT_FACTOR * 2 + COMPACT_SLACK
    s.advance(T0 + 30_001, 345_600)
    assert bodies(s.receive(10, 30, T0 + 30_001, None).messages) == bodies(received[-2:])


def test_a_deleted_message_deletes_again_for_the_window_only() -> None:
    s = store()
    m = message("a")
    s.add(m, T0)
    s.receive(1, 30, T0, None)
    handle = m.receipt_handle
    s.delete(handle, T0)
    s.delete(handle, T0 + DELETED_HANDLE_WINDOW_MS - 1)  # idempotent, as SQS answers
    assert s.footprint()["deleted_handles"] == 1
    with pytest.raises(InvalidReceiptHandle):
        s.delete(handle, T0 + DELETED_HANDLE_WINDOW_MS)
    assert s.footprint()["deleted_handles"] == 0


def test_deleted_handles_are_remembered_up_to_a_count() -> None:
    assert MAX_DELETED_HANDLES >= 1_000
    s = store(max_deleted_handles=3)
    handles = []
    for body in "abcde":
        m = message(body)
        s.add(m, T0)
        s.receive(1, 30, T0, None)
        handles.append(m.receipt_handle)
        s.delete(m.receipt_handle, T0)
    assert s.footprint()["deleted_handles"] == 3
    for handle in handles[2:]:
        s.delete(handle, T0)  # the last three are remembered
    with pytest.raises(InvalidReceiptHandle):
        s.delete(handles[0], T0)
