"""`GET /_emulator/backend-metrics` on the moto child: what the control plane's timeline samples
once a second (emulator/telemetry/sampler.py), off the invoke path.

Per SQS queue, the figures of CloudWatch's AWS/SQS metrics
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html):
the three message counts, the age of the oldest message, totals of messages added,
received, deleted and moved to the dead-letter queue, the live messages by receive count,
and the queue's redrive target. Per Kinesis stream, the totals behind IncomingRecords and
IncomingBytes. Per DynamoDB table, the capacity layer's settings and cumulative counters
(emulator/moto_child/fast_dynamodb.py: CloudWatch's AWS/DynamoDB names). Every figure is kept up to date by the fast models as messages and records
move (emulator/moto_child/sqs_store.py, kinesis_stream.py, ddb_throughput.py), so a sample
costs O(queues + receive counts + tables), never O(messages) or O(items).
"""

from __future__ import annotations

import time
from typing import Any

from emulator.moto_child import fast_dynamodb
from emulator.moto_child.kinesis_stream import STREAMS_LOCK
from emulator.moto_child.sqs_queue import QUEUES_LOCK, FastQueue

METRICS_PATH = "/_emulator/backend-metrics"


def _queue(queue: Any, now_ms: float) -> dict[str, Any]:
    policy = queue.redrive_policy or {}
    entry: dict[str, Any] = {"name": queue.name, "arn": queue.queue_arn,
                             "dead_letter_target": policy.get("deadLetterTargetArn")}
    if not isinstance(queue, FastQueue):  # moto's own model (unverified moto version): its counts only
        entry.update(visible=queue.approximate_number_of_messages, not_visible=queue.approximate_number_of_messages_not_visible,
                     delayed=queue.approximate_number_of_messages_delayed)
        return entry
    queue._advance()
    store = queue._store
    counts = store.counts()
    oldest = store.oldest_sent()
    entry.update(
        visible=counts.visible, not_visible=counts.not_visible, delayed=counts.delayed,
        oldest_age_s=None if oldest is None else max(0.0, (now_ms - oldest) / 1000.0),
        added=store.added_total, received=store.received_total, deleted=store.deleted_total,
        dead_lettered=store.dead_lettered_total,
        receive_counts={str(count): n for count, n in sorted(store.receive_counts.items())},
    )
    return entry


def backend_metrics() -> dict[str, Any]:
    from moto.kinesis.models import kinesis_backends
    from moto.sqs.models import sqs_backends

    now_ms = time.time() * 1000.0
    queues = []
    with QUEUES_LOCK:
        for _, _, backend in list(sqs_backends.iter_backends()):
            for queue in list(backend.queues.values()):
                queues.append(_queue(queue, now_ms))
    streams = []
    with STREAMS_LOCK:
        for _, _, backend in list(kinesis_backends.iter_backends()):
            totals = backend.__dict__.get("_incoming_totals", {})
            for name, stream in list(backend.streams.items()):
                records, size = totals.get(name, (0, 0))
                streams.append({"name": name, "arn": stream.arn, "incoming_records": records, "incoming_bytes": size})
    figures: dict[str, Any] = {"sqs": queues, "kinesis": streams}
    tables = fast_dynamodb.capacity_tables()
    if tables is not None:
        figures["dynamodb"] = tables
    return figures
