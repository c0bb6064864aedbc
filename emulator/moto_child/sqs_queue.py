"""moto's SQS Queue with its messages in a MessageStore (imported only inside moto's process).

`FastQueue` subclasses moto 5.2's `Queue`: everything but the messages is moto's own
(attributes, redrive policy set-up, policies, tags, CloudFormation). moto's list of
messages becomes a `MessageStore` (emulator/moto_child/sqs_store.py); the properties moto
computed by scanning it read the store's counters instead. `receive_message` and
`change_message_visibility` below replace SQSBackend's, which scan the list themselves.

Every access to a queue's messages holds `QUEUES_LOCK`. One lock for every queue: a
redrive adds to the dead-letter queue while holding the source queue, so one lock cannot
deadlock, and moto is GIL-bound anyway. Each queue's long polls wait on their own
condition of that lock. (moto 5.2 takes no lock around a receive, so two concurrent
receivers can get the same message: docs/measurements.md.)
"""

from __future__ import annotations

import copy
import json
import string
import threading
import time
from typing import Any

from moto.core.utils import camelcase_to_underscores
from moto.moto_api._internal import mock_random
from moto.sqs import models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

from emulator.moto_child.sqs_store import InvalidReceiptHandle, MessageState, MessageStore

# moto/sqs/utils.py generate_receipt_handle: 185 lowercase letters.
RECEIPT_HANDLE_LENGTH = 185
# moto's ChangeMessageVisibility check (AWS: a message's total visibility timeout is at
# most 12 hours).
MAX_TOTAL_VISIBILITY_MS = 43_200_000
# A long poll re-checks at least this often even if nothing notified it (moto: every 1 s).
MAX_WAIT_SLICE_S = 1.0

QUEUES_LOCK = threading.RLock()

_COUNTERS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
_BASE_FIELDS = [(name, camelcase_to_underscores(name)) for name in models.Queue.BASE_ATTRIBUTES]
_FIFO_FIELDS = [(name, camelcase_to_underscores(name)) for name in models.Queue.FIFO_ATTRIBUTES]
_KMS_FIELDS = [(name, camelcase_to_underscores(name)) for name in models.Queue.KMS_ATTRIBUTES]
_HANDLE_LETTERS = bytes(ord(string.ascii_lowercase[i % 26]) for i in range(256))


def now_ms() -> float:
    """moto's unix_time_millis(), without building two datetimes per call."""
    return time.time() * 1000.0


def new_receipt_handle() -> str:
    # moto draws 185 letters one `choice` at a time (~60 µs): the same alphabet and length
    # from one draw of moto's seeded random.
    bits = mock_random.getrandbits(RECEIPT_HANDLE_LENGTH * 8)
    return bits.to_bytes(RECEIPT_HANDLE_LENGTH, "little").translate(_HANDLE_LETTERS).decode("ascii")


# FIFO SequenceNumber: "a large, non-consecutive number" that keeps increasing within a
# message group (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html);
# AWS's examples show 20 decimal digits. moto gives one only with an explicit deduplication
# id, drawn at random (not increasing); ours start from the clock, 20 digits, and increase
# across the whole queue.
SEQUENCE_NUMBER_BASE = 18_000_000_000_000_000_000
DEAD_LETTER_SOURCE_ATTRIBUTE = "DeadLetterQueueSourceArn"


class FastQueue(models.Queue):
    def __init__(self, name: str, region: str, account_id: str, **kwargs: Any) -> None:
        super().__init__(name, region, account_id, **kwargs)
        self._messages_lock = threading.Condition(QUEUES_LOCK)
        self._last_sequence = 0

    def _next_sequence_number(self) -> str:
        self._last_sequence = max(self._last_sequence + 1, SEQUENCE_NUMBER_BASE + time.time_ns())
        return str(self._last_sequence)

    # -- the store, and moto's `_messages` list as a view of it ------------------------------
    @property
    def _store(self) -> MessageStore:
        store = self.__dict__.get("_fast_store")
        if store is None:  # created on first use: the queue type is known only after __init__
            store = self.__dict__["_fast_store"] = MessageStore(bool(self.fifo_queue), new_receipt_handle)
        return store

    @property
    def _messages(self) -> list[Any]:
        with QUEUES_LOCK:
            return list(self._store)

    @_messages.setter
    def _messages(self, messages: list[Any]) -> None:
        # Queue.__init__ assigns [], and so does SQSBackend.purge_queue.
        with QUEUES_LOCK:
            self.__dict__["_fast_store"] = None
            now = now_ms()
            for message in messages:
                self._store.add(message, now)
            condition = self.__dict__.get("_messages_lock")
            if isinstance(condition, threading.Condition):
                condition.notify_all()

    def _advance(self) -> float:
        """Apply the time that passed (timers, retention); the caller holds QUEUES_LOCK."""
        now = now_ms()
        self._store.advance(now, int(self.message_retention_period))
        return now

    def footprint(self) -> dict[str, int]:
        """Entries held by the store's indexes (emulator/moto_child/stats.py)."""
        with QUEUES_LOCK:
            return self._store.footprint()

    def _counts(self) -> Any:
        with QUEUES_LOCK:
            self._advance()
            return self._store.counts()

    # -- what moto computed by scanning ------------------------------------------------------
    @property
    def approximate_number_of_messages_delayed(self) -> int:
        return self._counts().delayed

    @property
    def approximate_number_of_messages_not_visible(self) -> int:
        return self._counts().not_visible

    @property
    def approximate_number_of_messages(self) -> int:
        return self._counts().visible

    @property
    def messages(self) -> list[Any]:
        with QUEUES_LOCK:
            self._advance()
            return self._store.in_state(MessageState.READY)

    @property
    def pending_messages(self) -> set[Any]:
        with QUEUES_LOCK:
            self._advance()
            return set(self._store.in_state(MessageState.IN_FLIGHT))

    @property
    def pending_message_groups(self) -> set[str]:
        with QUEUES_LOCK:
            self._advance()
            return self._store.groups_in_flight()

    @property
    def attributes(self) -> dict[str, Any]:  # type: ignore[override]
        # Queue.attributes (same keys, same order), with the counters read once.
        counts = self._counts()
        counted = dict(zip(_COUNTERS, (counts.visible, counts.not_visible, counts.delayed)))
        result = {name: counted[name] if name in counted else getattr(self, attr) for name, attr in _BASE_FIELDS}
        if self.fifo_queue:
            result.update((name, getattr(self, attr)) for name, attr in _FIFO_FIELDS)
        if self.kms_master_key_id:
            result.update((name, getattr(self, attr)) for name, attr in _KMS_FIELDS)
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        return {key: str(value).lower() if isinstance(value, bool) else value for key, value in result.items()}

    # -- send, receive, delete, change visibility --------------------------------------------
    def add_message(self, message: Any) -> None:
        # moto's own Lambda event source mappings are not run here: the emulator never
        # registers them in moto (its pollers own the mappings).
        with self._messages_lock:
            now = self._advance()
            if self.fifo_queue and message.deduplication_id is not None and self._store.is_duplicate(
                message.deduplication_id, message.sent_timestamp or now, now
            ):
                return
            if self.fifo_queue:
                message.sequence_number = self._next_sequence_number()
            self._store.add(message, now)
            # One waiting receive per message: waking every long poll (moto's notify_all)
            # costs a hundred idle pollers a wake-up each for every message sent.
            self._messages_lock.notify()

    def receive(self, count: int, wait_s: int, visibility_timeout: int, attribute_names: list[str]) -> list[Any]:
        """SQSBackend.receive_message for this queue: long polls wait for a message."""
        deadline = time.monotonic() + (wait_s or 0)
        with self._messages_lock:
            while True:
                now = self._advance()
                policy = self.redrive_policy if self.dead_letter_queue is not None else None
                got = self._store.receive(count, visibility_timeout, now, policy["maxReceiveCount"] if policy else None)
                for message in got.to_dead_letter:
                    # SQS stamps a redriven message with the queue it came from (the
                    # DeadLetterQueueSourceArn attribute of ReceiveMessage:
                    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html).
                    message.dead_letter_queue_source_arn = self.queue_arn
                    self.dead_letter_queue.add_message(message)  # type: ignore[union-attr]
                remaining = deadline - time.monotonic()
                if got.messages or not wait_s or remaining <= 0:
                    break
                due = self._store.next_due(int(self.message_retention_period))
                if due is not None:  # a timer runs out before the poll ends: look again then
                    remaining = min(remaining, max(0.001, (due - now) / 1000.0 + 0.001))
                self._messages_lock.wait(min(remaining, MAX_WAIT_SLICE_S))
            # Copied under the lock: another receive may mark the same message next.
            return [_response_copy(message, attribute_names) for message in got.messages]

    def delete_message(self, receipt_handle: str) -> None:
        with self._messages_lock:
            try:
                self._store.delete(receipt_handle, now_ms())
            except InvalidReceiptHandle:
                raise ReceiptHandleIsInvalid() from None
            if self.fifo_queue:
                self._messages_lock.notify_all()  # its message group may be free now

    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None:
        with self._messages_lock:
            now = self._advance()
            try:
                message = self._store.find(receipt_handle)
            except InvalidReceiptHandle:
                raise ReceiptHandleIsInvalid() from None
            if now + int(visibility_timeout) * 1000 - message.sent_timestamp > MAX_TOTAL_VISIBILITY_MS:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                    "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
                )
            self._store.change_visibility(message, visibility_timeout, now)
            self._messages_lock.notify_all()

    def take_for_move(self, limit: int) -> list[Any]:
        """Up to `limit` messages that can be received now, taken out of this queue (a
        message move task: emulator/moto_child/sqs_message_moves.py)."""
        with self._messages_lock:
            self._advance()
            return self._store.take_ready(limit)

    def wait_for_messages(self, timeout: int) -> None:
        with self._messages_lock:
            self._messages_lock.wait_for(lambda: self._counts().visible > 0, timeout=timeout)


def _response_copy(message: Any, attribute_names: list[str]) -> Any:
    # moto deep-copies each received message so that filtering its attributes for the
    # response leaves the stored one alone; a shallow copy with a new dict does that.
    snapshot = copy.copy(message)
    models._filter_message_attributes(snapshot, attribute_names or [])
    return snapshot


def backend_methods(backend: type) -> dict[str, Any]:
    """Replacements for SQSBackend's methods that scan a queue's message list."""
    moto_receive = backend.receive_message
    moto_change_visibility = backend.change_message_visibility

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                        message_attribute_names: list[str] | None = None) -> list[Any]:
        queue = self.get_queue(queue_name)
        if not isinstance(queue, FastQueue):
            return moto_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names)
        return queue.receive(count, wait_seconds_timeout, visibility_timeout, message_attribute_names or [])

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        if not isinstance(queue, FastQueue):
            return moto_change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        queue.change_visibility(receipt_handle, visibility_timeout)

    return {"receive_message": receive_message, "change_message_visibility": change_message_visibility}
