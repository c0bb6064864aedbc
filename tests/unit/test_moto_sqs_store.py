"""The indexed SQS message store in virtual time (`now` in ms is passed in), with moto's Message."""

from __future__ import annotations

import itertools

import pytest
from moto.sqs.models import Message

from emulator.moto_child.sqs_store import (
    DEDUPLICATION_INTERVAL_MS, DELAYED, GONE, IN_FLIGHT, READY, InvalidReceiptHandle, MessageStore,
)

T0 = 1_700_000_000_000.0
RETENTION_S = 345_600  # moto's default, 4 days


def store(fifo: bool = False) -> MessageStore:
    handles = (f"handle-{i}" for i in itertools.count())
    return MessageStore(fifo, lambda: next(handles))


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
    s.delete(stale)  # moto deletes with an earlier handle too
    assert len(s) == 0 and s.state(m) is GONE
    s.delete(stale)
    s.delete(m.receipt_handle)  # already deleted: fine
    with pytest.raises(InvalidReceiptHandle):
        s.delete("never-given")


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
    s.delete(first[0].receipt_handle)
    assert s.receive(10, 30, T0, None).messages == []  # a2 is still in flight
    s.delete(first[1].receipt_handle)
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
    s.delete(a2.receipt_handle)
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
    s.delete(a.receipt_handle)
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
    s.delete(a.receipt_handle)
    assert s.next_due(RETENTION_S) == T0 + 60_000  # not a's timer at T0 + 30 s
