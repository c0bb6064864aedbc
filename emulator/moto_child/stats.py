"""`GET /_emulator/backend-stats` on the moto child: what its memory follows, as JSON.

For the benchmark that holds the child's memory flat under a steady SQS flow
(bench/bench_moto_memory.py) and for the component tests: the process's resident memory,
the Python heap (pymalloc blocks in use), the model instances moto's dashboard holds, and
the entries of every fast SQS queue's indexes (emulator/moto_child/sqs_store.py). Callers
ask the child's own URL (the emulator's health endpoint names it).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

from emulator.moto_child.queue_metrics import METRICS_PATH, backend_metrics
from emulator.moto_child.sqs_queue import QUEUES_LOCK, FastQueue

STATS_PATH = "/_emulator/backend-stats"


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tracked_instances() -> dict[str, int]:
    """Instances moto's BaseModel recorded, per `service.Model` that has any."""
    from moto.core.model_instances import model_data

    counts = {}
    for service, models in model_data.items():
        for name, model in models.items():
            count = len(getattr(model, "instances_tracked", ()))
            if count:
                counts[f"{service}.{name}"] = count
    return counts


def sqs_index_entries() -> dict[str, int]:
    """The fast SQS queues' index entries, summed over every queue of every account and Region."""
    from moto.sqs.models import sqs_backends

    totals: dict[str, int] = {"queues": 0}
    with QUEUES_LOCK:
        for _, _, backend in list(sqs_backends.iter_backends()):
            for queue in list(backend.queues.values()):
                if not isinstance(queue, FastQueue):
                    continue
                totals["queues"] += 1
                for name, entries in queue.footprint().items():
                    totals[name] = totals.get(name, 0) + entries
    return totals


def stats() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "rss_bytes": resident_bytes(),
        "python_allocated_blocks": sys.getallocatedblocks(),
        "tracked_instances": tracked_instances(),
        "sqs": sqs_index_entries(),
    }


def dispatcher_call(inner: Callable[..., Any]) -> Callable[..., Any]:
    """A DomainDispatcherApplication.__call__ that answers STATS_PATH and METRICS_PATH
    (emulator/moto_child/queue_metrics.py), else calls `inner`."""

    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO")
        if path in (STATS_PATH, METRICS_PATH) and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps(stats() if path == STATS_PATH else backend_metrics()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return inner(self, environ, start_response)

    return __call__
