"""The SQS store's figures for the timeline (emulator/moto_child/sqs_store.py): totals and the
live messages by receive count, kept as messages move, in virtual time."""

from __future__ import annotations

import itertools

from moto.sqs.models import Message

from emulator.moto_child.sqs_store import MessageStore

T0 = 1_700_000_000_000.0
RETENTION_S = 345_600


def store() -> MessageStore:
    handles = (f"handle-{i}" for i in itertools.count())
    return MessageStore(False, lambda: next(handles))


def message(body: str, now: float = T0) -> Message:
    m = Message(f"id-{body}", body)
    m.sent_timestamp = int(now)
    return m


def test_receive_counts_and_totals_follow_the_messages() -> None:
    s = store()
    for body in "abcd":
        s.add(message(body), T0)
    assert s.receive_counts == {0: 4} and s.added_total == 4
    got = s.receive(2, 1, T0, None).messages
    assert s.receive_counts == {0: 2, 1: 2} and s.received_total == 2
    s.delete(got[0].receipt_handle, T0 + 10)
    assert s.receive_counts == {0: 2, 1: 1} and s.deleted_total == 1
    s.advance(T0 + 1_001, RETENTION_S)  # b's visibility timeout ran out
    s.receive(10, 1, T0 + 1_001, None)  # b a second time, c and d a first
    assert s.receive_counts == {1: 2, 2: 1} and s.received_total == 5
    assert s.oldest_sent() == T0


def test_a_redrive_counts_out_of_the_source_and_keeps_the_receive_count() -> None:
    source, dlq = store(), store()
    source.add(message("a"), T0)
    source.receive(1, 0, T0, 1)  # received once, visible again at once
    moved = source.receive(1, 0, T0 + 1, 1).to_dead_letter  # maxReceiveCount 1: moved out
    assert [m.body for m in moved] == ["a"] and source.dead_lettered_total == 1 and source.receive_counts == {}
    assert source.oldest_sent() is None
    for m in moved:
        dlq.add(m, T0 + 1)
    assert dlq.receive_counts == {1: 1} and dlq.added_total == 1
