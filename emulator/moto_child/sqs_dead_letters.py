"""Dead-letter queue features SQS has and moto 5.2 lacks (imported only inside moto's process):

* `DeadLetterQueueSourceArn` on a message a redrive policy moved (the queue model stamps
  it: emulator/moto_child/sqs_queue.py), answered by ReceiveMessage when asked for (`All`
  or by name): https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
* message move tasks, the API behind "DLQ redrive": StartMessageMoveTask,
  ListMessageMoveTasks, CancelMessageMoveTask
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).
  A task moves the dead-letter queue's visible messages to `DestinationArn`, or each back
  to the queue it came from; at `MaxNumberOfMessagesPerSecond` when given, else as fast
  as it can. Moved messages start afresh (receive count 0). A message with no queue of
  origin (sent to the DLQ directly) stays where it is.

JSON protocol only (what every current SDK speaks to SQS), served ahead of moto's router.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from emulator.moto_child.sqs_queue import DEAD_LETTER_SOURCE_ATTRIBUTE, QUEUES_LOCK

_TARGET_PREFIX = "AmazonSQS."
MOVE_ACTIONS = frozenset({"StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask"})
# MaxNumberOfMessagesPerSecond is 1-500; ListMessageMoveTasks MaxResults 1-10, default 1
# (the API references above).
MAX_RATE = 500
MAX_LIST_RESULTS = 10
# Not AWS figures: without a rate, messages move in chunks of this many, and a task keeps
# this many finished tasks per source for ListMessageMoveTasks.
UNLIMITED_CHUNK = 100
KEPT_TASKS = 10
_received = threading.local()  # the messages the current request's ReceiveMessage returned


class MoveError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    status: str = "RUNNING"  # RUNNING | CANCELLING | CANCELLED | COMPLETED | FAILED
    moved: int = 0
    to_move: int = 0
    failure: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Status": self.status, "SourceArn": self.source_arn,
                               "ApproximateNumberOfMessagesMoved": self.moved,
                               "ApproximateNumberOfMessagesToMove": self.to_move, "StartedTimestamp": self.started_ms}
        if self.status == "RUNNING":
            out["TaskHandle"] = self.handle
        if self.destination_arn:
            out["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            out["FailureReason"] = self.failure
        return out


class MessageMoves:
    """Every message move task of this moto process."""

    def __init__(self, find_queue: Callable[[str], Any]) -> None:
        self._find_queue = find_queue  # queue ARN -> moto Queue, or None
        self._tasks: dict[str, list[MoveTask]] = {}  # source ARN -> tasks, newest first
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        source_arn, destination_arn = request.get("SourceArn"), request.get("DestinationArn")
        rate = request.get("MaxNumberOfMessagesPerSecond")
        if not isinstance(source_arn, str) or self._find_queue(source_arn) is None:
            raise MoveError("ResourceNotFoundException", "The resource that you specified for the SourceArn parameter "
                            "doesn't exist.")
        source = self._find_queue(source_arn)
        if not queue_sources(source):
            raise MoveError("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
        if destination_arn is not None and self._find_queue(destination_arn) is None:
            raise MoveError("ResourceNotFoundException", "The resource that you specified for the DestinationArn "
                            "parameter doesn't exist.")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE):
            raise MoveError("InvalidParameterValue", f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is "
                            f"invalid. Reason: must be between 1 and {MAX_RATE}.")
        with self._lock:
            tasks = self._tasks.setdefault(source_arn, [])
            if any(task.status in ("RUNNING", "CANCELLING") for task in tasks):
                raise MoveError("UnsupportedOperation", "There is already a task running. Only one active task is "
                                "allowed for a source queue arn at a given time.")
            task = MoveTask(f"{uuid.uuid4()}-{next(self._ids)}", source_arn, destination_arn, rate,
                            int(time.time() * 1000), to_move=int(source.approximate_number_of_messages))
            tasks.insert(0, task)
            del tasks[KEPT_TASKS:]
        threading.Thread(target=self._run, args=(task, source), name=f"sqs-move-{task.handle}", daemon=True).start()
        return {"TaskHandle": task.handle}

    def list(self, request: dict[str, Any]) -> dict[str, Any]:
        source_arn = request.get("SourceArn")
        if not isinstance(source_arn, str) or self._find_queue(source_arn) is None:
            raise MoveError("ResourceNotFoundException", "The resource that you specified for the SourceArn parameter "
                            "doesn't exist.")
        limit = request.get("MaxResults", 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_RESULTS:
            raise MoveError("InvalidParameterValue", f"Value {limit} for parameter MaxResults is invalid. Reason: must "
                            f"be between 1 and {MAX_LIST_RESULTS}.")
        with self._lock:
            tasks = list(self._tasks.get(source_arn, []))[:limit]
        return {"Results": [task.shape() for task in tasks]}

    def cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        handle = request.get("TaskHandle")
        with self._lock:
            task = next((t for tasks in self._tasks.values() for t in tasks if t.handle == handle), None)
            if task is None:
                raise MoveError("ResourceNotFoundException", "Task does not exist.")
            if task.status != "RUNNING":
                raise MoveError("FailedPrecondition", f"Only RUNNING tasks can be cancelled; this one is {task.status}.")
            task.status = "CANCELLING"
            task.cancel.set()
        return {"ApproximateNumberOfMessagesMoved": task.moved}

    # -- the task's thread --------------------------------------------------------------------
    def _run(self, task: MoveTask, source: Any) -> None:
        chunk = task.rate or UNLIMITED_CHUNK
        try:
            while not task.cancel.is_set():
                started = time.monotonic()
                messages = source.take_for_move(chunk)
                if not messages:
                    break
                for message in messages:
                    if self._deliver(task, message):
                        task.moved += 1
                    else:
                        source.add_message(message)  # nowhere to go: back where it was
                if task.rate is not None:
                    task.cancel.wait(max(0.0, 1.0 - (time.monotonic() - started)))
                if all(not getattr(m, "dead_letter_queue_source_arn", None) for m in messages) and not task.destination_arn:
                    break  # only messages with no origin left
        except Exception as exc:  # a task fails, the server goes on
            task.status, task.failure = "FAILED", f"{type(exc).__name__}: {exc}"
            return
        task.status = "CANCELLED" if task.cancel.is_set() else "COMPLETED"

    def _deliver(self, task: MoveTask, message: Any) -> bool:
        target_arn = task.destination_arn or getattr(message, "dead_letter_queue_source_arn", None)
        target = self._find_queue(target_arn) if target_arn else None
        if target is None:
            return False
        message.dead_letter_queue_source_arn = None
        message.approximate_receive_count = 0
        message.approximate_first_receive_timestamp = None
        target.add_message(message)
        return True


def queue_sources(queue: Any) -> list[Any]:
    """The queues whose redrive policy names `queue` (moto's own list_dead_letter_source_queues)."""
    from moto.sqs.models import sqs_backends

    with QUEUES_LOCK:
        return [q for backend in _all_backends(sqs_backends) for q in backend.queues.values()
                if q.dead_letter_queue is queue]


def _all_backends(backends: Any) -> Iterable[Any]:
    for account in list(backends.keys()):
        for region in list(backends[account].keys()):
            yield backends[account][region]


def find_queue(arn: str) -> Any:
    from moto.sqs.models import sqs_backends

    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    try:
        return sqs_backends[parts[4]][parts[3]].queues.get(parts[5])
    except KeyError:
        return None


# -- the wire ---------------------------------------------------------------------------------
def receive_response(receive: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQSResponse.receive_message, adding DeadLetterQueueSourceArn when it is asked for."""

    def receive_message(self: Any) -> Any:
        _received.messages = []
        result = receive(self)
        names = set(self._get_param("AttributeNames", []) or []) | set(self._get_param("MessageSystemAttributeNames", []) or [])
        if "All" in names or DEAD_LETTER_SOURCE_ATTRIBUTE in names:
            for entry, message in zip(result.result.get("Messages", []), _received.messages):
                source = getattr(message, "dead_letter_queue_source_arn", None)
                if source:
                    entry.setdefault("Attributes", {})[DEAD_LETTER_SOURCE_ATTRIBUTE] = source
        _received.messages = []
        return result

    return receive_message


def note_received(messages: list[Any]) -> list[Any]:
    """Called by the queue model's receive: what this request returned, in order."""
    _received.messages = messages
    return messages


def dispatcher_call(normal_call: Callable[..., Any], moves: MessageMoves) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that serves the message move actions."""
    handlers = {"StartMessageMoveTask": moves.start, "ListMessageMoveTasks": moves.list,
                "CancelMessageMoveTask": moves.cancel}

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        action = target[len(_TARGET_PREFIX):] if target.startswith(_TARGET_PREFIX) else ""
        if action not in MOVE_ACTIONS:
            return normal_call(self, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not an object")
            status, body = 200, handlers[action](request)
        except MoveError as exc:
            status, body = exc.status, {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
        except ValueError:
            status, body = 400, {"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": "The request body is not valid JSON."}
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))]
        if status != 200:
            headers.append(("x-amzn-query-error", f"{body['__type'].rsplit('#', 1)[-1]};Sender"))
        start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}", headers)
        return [data]

    return __call__
