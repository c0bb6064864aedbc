"""Make moto's SQS fast enough for scale tests, in the moto server's own process.

moto 5.2's SQS does O(queue depth) work on every call (docs/measurements.md): with
100,000 messages queued a single ReceiveMessage would take minutes. The emulator's
launcher (emulator/backend/moto_process.py) calls `apply()` before `moto.server.main` runs. It
keeps moto as the store and the API, and changes three things:

1. the queue model (emulator/moto_child/sqs_queue.py, emulator/moto_child/sqs_store.py): moto's
   `Queue` keeps its messages in an index instead of a list, so send, receive, delete and
   change-visibility are O(log n), the counters are kept instead of recounted, one lock
   covers every receive, and long polls wake when a message arrives or a timer runs out;
2. a short path for SQS's JSON calls (emulator/moto_child/sqs_wire.py): moto's own parser,
   `SQSResponse` methods and backend, without Flask and the generic request set-up and
   serializer that cost more than the queue work itself;
3. the server (emulator/moto_child/keep_alive.py): keep-alive for JSON-protocol calls, no request log;
   and moto's per-request listing of its own package folder is cached;
4. memory (emulator/moto_child/instance_tracking.py): moto no longer records every SQS
   `Message` it creates for its dashboard, which kept every message ever sent alive; and
   `GET /_emulator/backend-stats` (emulator/moto_child/stats.py) says what memory follows;
5. what SQS has and moto lacks: FIFO SequenceNumbers that increase (sqs_queue.py),
   DeadLetterQueueSourceArn and message move tasks (sqs_dead_letters.py), and SNS's
   default SignatureVersion "1" in the envelopes it delivers (sns_signature.py).

moto's internals change between releases, so `apply()` patches only the versions in
VERIFIED_MOTO_VERSIONS (checked against their source); on any other it leaves moto alone
and logs a warning. Where moto and AWS differ, the model follows AWS: the list is in the
docstring of tests/component/test_moto_sqs_fast.py.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, is_verified

log = logging.getLogger("emulator.moto.sqs")


def apply() -> bool:
    """Patch moto in this process; False, with a warning, on an unverified version."""
    import moto

    if not is_verified(moto.__version__):
        log.warning("moto %s is not a version the fast SQS model was verified with (%s): running moto's own SQS",
                    moto.__version__, ", ".join(VERIFIED_MOTO_VERSIONS))
        return False
    import moto.server
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import models

    from moto.sqs.responses import SQSResponse

    from emulator.moto_child import instance_tracking, keep_alive, sns_signature, sqs_dead_letters, sqs_queue, sqs_wire, stats

    if getattr(models, "_emulator_fast_sqs", False):
        return True
    # Build everything first, then assign: a failure leaves moto untouched.
    methods = sqs_queue.backend_methods(models.SQSBackend)
    receive = methods["receive_message"]
    methods["receive_message"] = lambda *args, **kwargs: sqs_dead_letters.note_received(receive(*args, **kwargs))
    moves = sqs_dead_letters.MessageMoves(sqs_dead_letters.find_queue)
    dispatch = stats.dispatcher_call(sqs_dead_letters.dispatcher_call(
        sqs_wire.dispatcher_call(DomainDispatcherApplication.__call__), moves))
    receive_response = sqs_dead_letters.receive_response(SQSResponse.receive_message)
    post_data = sns_signature.signed_post_data()
    handler = keep_alive.handler_class(moto.server.MotoRequestHandler)
    list_modules = _cached(backends.list_of_moto_modules)

    models.Queue = sqs_queue.FastQueue  # SQSBackend.create_queue builds queues through this name
    for name, method in methods.items():
        setattr(models.SQSBackend, name, method)
    DomainDispatcherApplication.__call__ = dispatch
    moto.server.MotoRequestHandler = handler  # what moto.server.main passes to run_simple
    backends.list_of_moto_modules = list_modules
    SQSResponse.receive_message = receive_response
    sns_signature.install(post_data)
    instance_tracking.stop_tracking(models.Message)
    models._emulator_fast_sqs = True
    return True


def _cached(list_modules: Any) -> Any:
    # moto's server calls this on every request (werkzeug_app.get_backend_for_host): an
    # os.listdir and ~200 isdir calls for a folder that does not change while it runs.
    modules = functools.cache(lambda: tuple(list_modules()))
    return lambda: iter(modules())
