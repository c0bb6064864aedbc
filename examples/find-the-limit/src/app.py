"""A handler of known duration: it takes WORK_SECONDS, whatever the event."""

import os
import time

WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.5"))


def handler(event, context):
    time.sleep(WORK_SECONDS)  # the work: a fixed duration, so concurrency = rate x duration is known
    return {"ok": True}
