"""The messages of one SQS queue, indexed so that every call costs O(log n), not O(n).

moto 5.2 keeps a queue as one list and rescans it on every call (shared/measurements.md):
each send recomputes the queue's counters over every message, each receive converts
every message's timestamps. This store keeps moto's `Message` objects (so moto's
responses serialise them unchanged) and indexes them by state:

- READY (visible, not delayed): a heap by arrival order (standard queues), or, for FIFO
  queues, one ordered dict per message group plus a heap of deliverable group heads;
- IN_FLIGHT (received, visibility timeout running) and DELAYED: one timer heap by the
  time the message becomes visible;
- every live message: a heap by sent time for the retention period, and a map of every
  receipt handle it was given.

Heap entries are invalidated lazily: each message carries a generation that changes with
every state change, and an entry whose generation is stale is skipped when popped.
Time is passed in (`now` in epoch milliseconds, as moto's `Message` fields are), and the
caller holds the queue's lock: the store itself does no I/O, no locking, no clock reads.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from typing import Any, Callable, Iterator

# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html:
# a message with the deduplication ID of one sent in the last 5 minutes is accepted but not delivered.
DEDUPLICATION_INTERVAL_MS = 300_000


class MessageState(Enum):
    READY = "ready"  # visible and not delayed: can be received
    IN_FLIGHT = "in flight"  # received, its visibility timeout running
    DELAYED = "delayed"  # sent with a delay that has not passed
    GONE = "gone"  # deleted, expired, purged or moved to the dead-letter queue


READY, IN_FLIGHT, DELAYED, GONE = MessageState.READY, MessageState.IN_FLIGHT, MessageState.DELAYED, MessageState.GONE


@dataclass(eq=False)
class _Group:
    """One FIFO message group: its live messages in order, and how many are in flight."""

    messages: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    in_flight: int = 0

    def head(self) -> Any | None:
        return next(iter(self.messages.values()), None)


@dataclass
class Counts:
    visible: int  # ApproximateNumberOfMessages
    not_visible: int  # ApproximateNumberOfMessagesNotVisible (in flight)
    delayed: int  # ApproximateNumberOfMessagesDelayed


@dataclass
class Received:
    messages: list[Any]  # in delivery order, already marked received
    to_dead_letter: list[Any]  # removed here, to be added to the dead-letter queue


class InvalidReceiptHandle(KeyError):
    """No live message was ever given this receipt handle."""


class MessageStore:
    def __init__(self, fifo: bool, new_receipt_handle: Callable[[], str]) -> None:
        self.fifo = fifo
        self._new_receipt_handle = new_receipt_handle
        self._seq = 0  # arrival order within this queue
        self._gen = 0  # generation stamp source (a message's `_fq_gen`)
        self._live: dict[int, Any] = {}
        self._ready: list[tuple[int, int, Any]] = []  # (seq, gen, message), standard queues
        self._groups: dict[str, _Group] = {}  # FIFO queues
        self._group_heads: list[tuple[int, str]] = []  # (seq of a deliverable head, group id)
        self._timers: list[tuple[float, int, int, Any]] = []  # (due ms, seq, gen, message)
        self._by_sent: list[tuple[float, int, Any]] = []  # (sent ms, seq, message)
        self._handles: dict[str, Any] = {}
        self._deleted_handles: set[int] = set()  # hash() of handles of deleted messages
        self._dedup: OrderedDict[str, float] = OrderedDict()  # deduplication id -> sent ms
        self._in_flight = 0
        self._delayed = 0

    # -- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Any]:
        """Live messages in arrival order (moto's `Queue._messages`)."""
        return iter(list(self._live.values()))

    def counts(self) -> Counts:
        return Counts(len(self._live) - self._in_flight - self._delayed, self._in_flight, self._delayed)

    def state(self, message: Any) -> MessageState:
        return message._fq_state if getattr(message, "_fq_store", None) is self else GONE

    def in_state(self, state: MessageState) -> list[Any]:
        return [m for m in self._live.values() if m._fq_state is state]

    def next_due(self, retention_s: int) -> float | None:
        """The earliest time (ms) a timer or the retention period may change the state.

        Stale entries (deleted or changed messages) are dropped from the heads first, so a
        long poll does not wake for a message that is gone."""
        timers, oldest = self._timers, self._by_sent
        while timers and (timers[0][3]._fq_gen != timers[0][2] or timers[0][3]._fq_store is not self):
            heapq.heappop(timers)
        while oldest and (oldest[0][2]._fq_store is not self or oldest[0][2]._fq_seq != oldest[0][1]):
            heapq.heappop(oldest)
        due = []
        if timers:
            due.append(timers[0][0])
        if oldest:
            due.append(oldest[0][0] + retention_s * 1000)
        return min(due) if due else None

    def groups_in_flight(self) -> set[str]:
        return {gid for gid, group in self._groups.items() if group.in_flight}

    # -- time passes ----------------------------------------------------------------------
    def advance(self, now: float, retention_s: int) -> list[Any]:
        """Apply what `now` changes: timers that ran out, messages past the retention period
        (deleted, as AWS deletes them). Returns the expired messages."""
        timers = self._timers
        while timers and timers[0][0] < now:
            _, _, gen, message = heapq.heappop(timers)
            if message._fq_gen == gen and message._fq_store is self:
                self._make_ready(message)
        expired = []
        oldest = self._by_sent
        limit = now - retention_s * 1000
        while oldest and oldest[0][0] <= limit:
            _, seq, message = heapq.heappop(oldest)
            if message._fq_store is self and message._fq_seq == seq:
                self._remove(message, remember_handles=True)
                expired.append(message)
        return expired

    # -- send -----------------------------------------------------------------------------
    def is_duplicate(self, deduplication_id: str, sent: float, now: float) -> bool:
        """FIFO deduplication; records the id when it is new."""
        dedup = self._dedup
        while dedup:
            first_id, first_sent = next(iter(dedup.items()))
            if now - first_sent < DEDUPLICATION_INTERVAL_MS:
                break
            del dedup[first_id]
        previous = dedup.get(deduplication_id)
        if previous is not None and sent - previous < DEDUPLICATION_INTERVAL_MS:
            return True
        dedup[deduplication_id] = sent
        return False

    def add(self, message: Any, now: float) -> None:
        self._seq += 1
        seq = message._fq_seq = self._seq
        message._fq_store = self
        self._live[seq] = message
        heapq.heappush(self._by_sent, (message.sent_timestamp or now, seq, message))
        for handle in message.all_receipt_handles:
            if handle:
                self._handles[handle] = message
        if self.fifo:
            self._groups.setdefault(message.group_id, _Group()).messages[seq] = message
        if not now > message.visible_at:
            self._set(message, IN_FLIGHT)
            self._start_timer(message, message.visible_at)
        elif now < message.delayed_until:
            self._set(message, DELAYED)
            self._start_timer(message, message.delayed_until)
        else:
            self._make_ready(message)

    # -- receive --------------------------------------------------------------------------
    def receive(self, count: int, visibility_timeout: int, now: float, max_receive_count: int | None) -> Received:
        """Up to `count` messages, marked received. A message already received
        `max_receive_count` times is moved out instead (moto's redrive: applied at receive)."""
        if self.fifo:
            return self._receive_fifo(count, visibility_timeout, now, max_receive_count)
        out = Received([], [])
        still_ready = []  # received with a visibility timeout of 0: visible again after this call
        ready = self._ready
        while ready and len(out.messages) < count:
            seq, gen, message = heapq.heappop(ready)
            if message._fq_gen != gen or message._fq_store is not self:
                continue
            if self._receive_or_redrive(message, visibility_timeout, now, max_receive_count, out) and message._fq_state is READY:
                still_ready.append(message)
        for message in still_ready:
            heapq.heappush(ready, (message._fq_seq, message._fq_gen, message))
        return out

    def _receive_fifo(self, count: int, visibility_timeout: int, now: float, max_receive_count: int | None) -> Received:
        # AWS returns as many messages of one group as it can before the next group
        # (SQS Developer Guide, "FIFO queue logic"); groups with a message in flight wait.
        out = Received([], [])
        visited: list[_Group] = []
        heads = self._group_heads
        while heads and len(out.messages) < count:
            seq, gid = heapq.heappop(heads)
            group = self._groups.get(gid)
            if group is None or group in visited or not self._deliverable(group, seq):
                continue
            visited.append(group)
            self._take_from_group(group, count, visibility_timeout, now, max_receive_count, out)
        for group in visited:
            self._group_changed(group)
        return out

    def _take_from_group(self, group: _Group, count: int, visibility_timeout: int, now: float,
                         max_receive_count: int | None, out: Received) -> None:
        taken = 0  # taken messages stay at the front of the group while in flight
        while len(out.messages) < count:
            window = list(islice(group.messages.values(), taken, taken + count - len(out.messages)))
            if not window:
                return
            for message in window:
                if message._fq_state is not READY:
                    return  # delayed: the group's order holds everything behind it
                if self._receive_or_redrive(message, visibility_timeout, now, max_receive_count, out):
                    taken += 1

    def _receive_or_redrive(self, message: Any, visibility_timeout: int, now: float, max_receive_count: int | None,
                            out: Received) -> bool:
        """Receive one message, or hand it to the DLQ once it has been received maxReceiveCount
        times (moto applies the redrive policy at receive, as here). True when received."""
        if max_receive_count is not None and message.approximate_receive_count >= max_receive_count:
            self._remove(message)
            out.to_dead_letter.append(message)
            return False
        self._mark_received(message, visibility_timeout, now)
        out.messages.append(message)
        return True

    def _deliverable(self, group: _Group, seq: int | None = None) -> bool:
        head = group.head()
        return (group.in_flight == 0 and head is not None and head._fq_state is READY
                and (seq is None or head._fq_seq == seq))

    def _group_changed(self, group: _Group) -> None:
        if self._deliverable(group):
            head = group.head()
            heapq.heappush(self._group_heads, (head._fq_seq, head.group_id))

    def _mark_received(self, message: Any, visibility_timeout: int, now: float) -> None:
        """What moto's `Message.mark_received` does, with `now` passed in."""
        if not message.approximate_first_receive_timestamp:
            message.approximate_first_receive_timestamp = int(now)
        message.approximate_receive_count += 1
        message._old_receipt_handles.append(message.receipt_handle)
        message.receipt_handle = self._new_receipt_handle()
        self._handles[message.receipt_handle] = message
        if visibility_timeout:
            message.visible_at = now + int(visibility_timeout) * 1000
            self._set(message, IN_FLIGHT)
            self._start_timer(message, message.visible_at)

    # -- delete and change visibility -------------------------------------------------------
    def find(self, receipt_handle: str) -> Any:
        """The live message that was ever given this handle (moto accepts stale handles)."""
        message = self._handles.get(receipt_handle)
        if message is None:
            raise InvalidReceiptHandle(receipt_handle)
        return message

    def was_deleted(self, receipt_handle: str) -> bool:
        return hash(receipt_handle) in self._deleted_handles

    def delete(self, receipt_handle: str) -> None:
        """moto's rules: a handle of a deleted message is fine; one never given raises."""
        if self.was_deleted(receipt_handle):
            return
        self._remove(self.find(receipt_handle), remember_handles=True)

    def change_visibility(self, message: Any, visibility_timeout: int, now: float) -> None:
        message.visible_at = now + int(visibility_timeout) * 1000
        if message._fq_state is DELAYED:
            return  # never received: moto's delay still holds it
        if visibility_timeout:
            self._set(message, IN_FLIGHT)
            self._start_timer(message, message.visible_at)
        elif message._fq_state is IN_FLIGHT:
            self._make_ready(message)

    # -- state changes ------------------------------------------------------------------
    def _set(self, message: Any, state: MessageState) -> None:
        previous = getattr(message, "_fq_state", None) if getattr(message, "_fq_store", None) is self else None
        if previous is IN_FLIGHT:
            self._in_flight -= 1
            if self.fifo:
                self._groups[message.group_id].in_flight -= 1
        elif previous is DELAYED:
            self._delayed -= 1
        if state is IN_FLIGHT:
            self._in_flight += 1
            if self.fifo:
                self._groups[message.group_id].in_flight += 1
        elif state is DELAYED:
            self._delayed += 1
        self._gen += 1
        message._fq_gen = self._gen
        message._fq_state = state

    def _start_timer(self, message: Any, due: float) -> None:
        heapq.heappush(self._timers, (due, message._fq_seq, message._fq_gen, message))

    def _make_ready(self, message: Any) -> None:
        self._set(message, READY)
        if self.fifo:
            self._group_changed(self._groups[message.group_id])
        else:
            heapq.heappush(self._ready, (message._fq_seq, message._fq_gen, message))

    def _remove(self, message: Any, remember_handles: bool = False) -> None:
        self._set(message, GONE)
        message._fq_store = None
        del self._live[message._fq_seq]
        for handle in message.all_receipt_handles:
            if handle:
                self._handles.pop(handle, None)
                if remember_handles:
                    self._deleted_handles.add(hash(handle))
        if self.fifo:
            group = self._groups[message.group_id]
            del group.messages[message._fq_seq]
            if group.messages:
                self._group_changed(group)
            else:
                del self._groups[message.group_id]
