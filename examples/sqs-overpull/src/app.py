"""A consumer that always succeeds: it only takes its time (WORK_SECONDS) per batch."""

import os
import time

WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.5"))


def handler(event, context):
    time.sleep(WORK_SECONDS)  # the work; this handler never raises
    return None
