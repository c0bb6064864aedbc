"""The messages of one SQS queue, indexed so that every call costs O(log n), not O(n).

moto 5.2 keeps a queue as one list and rescans it on every call (docs/measurements.md):
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
every state change, and an entry whose generation is stale is skipped when popped. Entries
name a message by its arrival number, never hold it, so a deleted message is freed at
once; and a heap is rebuilt from its valid entries once stale ones outnumber the live
messages (`_compact`), so one old message at a heap's head (a 12-hour visibility timeout,
a 4-day retention period) cannot make it keep every entry behind it. The handles of
deleted messages are remembered for a bounded window (`DELETED_HANDLE_WINDOW_MS`,
`MAX_DELETED_HANDLES`). Memory therefore follows the live messages, not the traffic.
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
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html:
# a DeleteMessage with an old receipt handle "succeeds"; how long a handle of a message
# already deleted stays valid is not documented. Our choice (README, "Choices where AWS is
# ambiguous"): such a delete succeeds for 5 minutes after the message was deleted (longer
# than an SDK's retries of a call whose answer was lost), for at most the last 10,000
# handles per queue (~2 MB; a second of a full-speed drain); later it answers
# ReceiptHandleIsInvalid, as for a handle never given.
DELETED_HANDLE_WINDOW_MS = 300_000
MAX_DELETED_HANDLES = 10_000
# A heap is rebuilt when its entries exceed COMPACT_FACTOR x the live messages plus this
# many: the rebuild is O(heap) and happens at most once per that many stale entries.
COMPACT_FACTOR = 2
COMPACT_SLACK = 1_024


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
    def __init__(self, fifo: bool, new_receipt_handle: Callable[[], str], *,
                 deleted_handle_window_ms: float = DELETED_HANDLE_WINDOW_MS,
                 max_deleted_handles: int = MAX_DELETED_HANDLES) -> None:
        self.fifo = fifo
        self._new_receipt_handle = new_receipt_handle
        self._deleted_window_ms = deleted_handle_window_ms
        self._max_deleted = max_deleted_handles
        self._seq = 0  # arrival order within this queue
        self._gen = 0  # generation stamp source (a message's `_fq_gen`)
        self._live: dict[int, Any] = {}
        self._ready: list[tuple[int, int]] = []  # (seq, gen), standard queues
        self._groups: dict[str, _Group] = {}  # FIFO queues
        self._group_heads: list[tuple[int, str]] = []  # (seq of a deliverable head, group id)
        self._timers: list[tuple[float, int, int]] = []  # (due ms, seq, gen)
        self._by_sent: list[tuple[float, int]] = []  # (sent ms, seq)
        self._handles: dict[str, Any] = {}
        # hash() of a handle of a deleted message -> when it was deleted (ms), oldest first
        self._deleted_handles: OrderedDict[int, float] = OrderedDict()
        self._dedup: OrderedDict[str, float] = OrderedDict()  # deduplication id -> sent ms
        self._in_flight = 0
        self._delayed = 0
        # For the control plane's timeline (emulator/moto_child/queue_metrics.py): totals since
        # the queue was made, and the live messages by how often they were received.
        self.added_total = 0
        self.received_total = 0
        self.deleted_total = 0
        self.dead_lettered_total = 0  # moved out to the dead-letter queue
        self.receive_counts: dict[int, int] = {}

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
        while timers and not self._current(timers[0][1], timers[0][2]):
            heapq.heappop(timers)
        while oldest and oldest[0][1] not in self._live:
            heapq.heappop(oldest)
        due = []
        if timers:
            due.append(timers[0][0])
        if oldest:
            due.append(oldest[0][0] + retention_s * 1000)
        return min(due) if due else None

    def oldest_sent(self) -> float | None:
        """When the oldest live message was sent (ms), or None when the queue is empty."""
        oldest = self._by_sent
        while oldest and oldest[0][1] not in self._live:
            heapq.heappop(oldest)
        return oldest[0][0] if oldest else None

    def groups_in_flight(self) -> set[str]:
        return {gid for gid, group in self._groups.items() if group.in_flight}

    def footprint(self) -> dict[str, int]:
        """Entries held by each index: what memory follows (for tests and benchmarks)."""
        return {"live": len(self._live), "ready": len(self._ready), "group_heads": len(self._group_heads),
                "timers": len(self._timers), "by_sent": len(self._by_sent), "handles": len(self._handles),
                "deleted_handles": len(self._deleted_handles), "deduplication_ids": len(self._dedup)}

    # -- time passes ----------------------------------------------------------------------
    def advance(self, now: float, retention_s: int) -> list[Any]:
        """Apply what `now` changes: timers that ran out, messages past the retention period
        (deleted, as AWS deletes them). Returns the expired messages."""
        timers = self._timers
        while timers and timers[0][0] < now:
            _, seq, gen = heapq.heappop(timers)
            message = self._current(seq, gen)
            if message is not None:
                self._make_ready(message)
        expired = []
        oldest = self._by_sent
        limit = now - retention_s * 1000
        while oldest and oldest[0][0] <= limit:
            _, seq = heapq.heappop(oldest)
            message = self._live.get(seq)
            if message is not None:
                self._remove(message, now)
                expired.append(message)
        self._compact()
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
        self.added_total += 1
        counts = self.receive_counts
        received = message.approximate_receive_count  # a message moved from another queue keeps its count
        counts[received] = counts.get(received, 0) + 1
        heapq.heappush(self._by_sent, (message.sent_timestamp or now, seq))
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
        self._compact()

    # -- receive --------------------------------------------------------------------------
    def receive(self, count: int, visibility_timeout: int, now: float, max_receive_count: int | None) -> Received:
        """Up to `count` messages, marked received. A message already received
        `max_receive_count` times is moved out instead (moto's redrive: applied at receive)."""
        if self.fifo:
            out = self._receive_fifo(count, visibility_timeout, now, max_receive_count)
        else:
            out = self._receive_standard(count, visibility_timeout, now, max_receive_count)
        self._compact()
        return out

    def _receive_standard(self, count: int, visibility_timeout: int, now: float, max_receive_count: int | None) -> Received:
        out = Received([], [])
        still_ready = []  # received with a visibility timeout of 0: visible again after this call
        ready = self._ready
        while ready and len(out.messages) < count:
            seq, gen = heapq.heappop(ready)
            message = self._current(seq, gen)
            if message is None:
                continue
            if self._receive_or_redrive(message, visibility_timeout, now, max_receive_count, out) and message._fq_state is READY:
                still_ready.append(message)
        for message in still_ready:
            heapq.heappush(ready, (message._fq_seq, message._fq_gen))
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
            self.dead_lettered_total += 1
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
        counts = self.receive_counts
        before = message.approximate_receive_count
        counts[before] -= 1
        if not counts[before]:
            del counts[before]
        counts[before + 1] = counts.get(before + 1, 0) + 1
        self.received_total += 1
        message.approximate_receive_count += 1
        message._old_receipt_handles.append(message.receipt_handle)
        message.receipt_handle = self._new_receipt_handle()
        self._handles[message.receipt_handle] = message
        if visibility_timeout:
            message.visible_at = now + int(visibility_timeout) * 1000
            self._set(message, IN_FLIGHT)
            self._start_timer(message, message.visible_at)

    def take_ready(self, limit: int) -> list[Any]:
        """Up to `limit` READY messages, oldest first, removed without being received (a
        message move task moves them to another queue)."""
        taken = list(islice(self._ready_in_order(), limit))
        for message in taken:
            self._remove(message)  # not deleted: its handles are simply no longer this queue's
        self._compact()
        return taken

    def _ready_in_order(self) -> Iterator[Any]:
        for message in list(self._live.values()):  # arrival order
            if message._fq_state is READY:
                yield message

    # -- delete and change visibility -------------------------------------------------------
    def find(self, receipt_handle: str) -> Any:
        """The live message that was ever given this handle (moto accepts stale handles)."""
        message = self._handles.get(receipt_handle)
        if message is None:
            raise InvalidReceiptHandle(receipt_handle)
        return message

    def was_deleted(self, receipt_handle: str, now: float) -> bool:
        """Whether this is a handle of a message deleted within the remembered window."""
        self._forget_deleted(now)
        return hash(receipt_handle) in self._deleted_handles

    def delete(self, receipt_handle: str, now: float) -> None:
        """moto's rules: a handle of a recently deleted message is fine; one never given raises."""
        if self.was_deleted(receipt_handle, now):
            return
        self._remove(self.find(receipt_handle), now)
        self.deleted_total += 1
        self._compact()

    def change_visibility(self, message: Any, visibility_timeout: int, now: float) -> None:
        message.visible_at = now + int(visibility_timeout) * 1000
        if message._fq_state is DELAYED:
            return  # never received: moto's delay still holds it
        if visibility_timeout:
            self._set(message, IN_FLIGHT)
            self._start_timer(message, message.visible_at)
        elif message._fq_state is IN_FLIGHT:
            self._make_ready(message)
        self._compact()

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
        heapq.heappush(self._timers, (due, message._fq_seq, message._fq_gen))

    def _make_ready(self, message: Any) -> None:
        self._set(message, READY)
        if self.fifo:
            self._group_changed(self._groups[message.group_id])
        else:
            heapq.heappush(self._ready, (message._fq_seq, message._fq_gen))

    def _current(self, seq: int, gen: int) -> Any | None:
        """The live message a heap entry names, if the entry is not stale."""
        message = self._live.get(seq)
        return message if message is not None and message._fq_gen == gen else None

    def _remove(self, message: Any, deleted_at: float | None = None) -> None:
        """Take a message out; with `deleted_at`, its handles keep deleting idempotently."""
        self._set(message, GONE)
        message._fq_store = None
        del self._live[message._fq_seq]
        counts = self.receive_counts
        received = message.approximate_receive_count
        counts[received] -= 1
        if not counts[received]:
            del counts[received]
        for handle in message.all_receipt_handles:
            if handle:
                self._handles.pop(handle, None)
                if deleted_at is not None:
                    self._deleted_handles[hash(handle)] = deleted_at
        if deleted_at is not None:
            self._forget_deleted(deleted_at)
        if self.fifo:
            group = self._groups[message.group_id]
            del group.messages[message._fq_seq]
            if group.messages:
                self._group_changed(group)
            else:
                del self._groups[message.group_id]

    # -- bounded memory -------------------------------------------------------------------
    def _forget_deleted(self, now: float) -> None:
        deleted = self._deleted_handles
        horizon = now - self._deleted_window_ms
        while deleted and (len(deleted) > self._max_deleted or next(iter(deleted.values())) <= horizon):
            deleted.popitem(last=False)

    def _compact(self) -> None:
        """Rebuild each heap whose stale entries outnumber the live messages."""
        limit = COMPACT_FACTOR * len(self._live) + COMPACT_SLACK
        if len(self._ready) > limit:
            self._ready = [entry for entry in self._ready if self._current(*entry) is not None]
            heapq.heapify(self._ready)
        if len(self._timers) > limit:
            self._timers = [entry for entry in self._timers if self._current(entry[1], entry[2]) is not None]
            heapq.heapify(self._timers)
        if len(self._by_sent) > limit:
            self._by_sent = [entry for entry in self._by_sent if entry[1] in self._live]
            heapq.heapify(self._by_sent)
        if len(self._group_heads) > limit:
            self._group_heads = [entry for entry in set(self._group_heads)
                                 if entry[1] in self._groups and self._deliverable(self._groups[entry[1]], entry[0])]
            heapq.heapify(self._group_heads)
