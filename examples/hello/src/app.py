"""Handlers of the bundled example: plain Lambda handlers, nothing emulator-specific."""

import os
import time

# Module-level code runs once per execution environment (the cold start).
STARTED = time.time()
INVOCATIONS = 0


def hello(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    name = (event or {}).get("name", "world")
    print(f"greeting {name}")
    return {
        "message": f"{os.environ['GREETING']}, {name}!",
        "requestId": context.aws_request_id,
        "warmInvocations": INVOCATIONS,
        "environmentAgeSeconds": round(time.time() - STARTED, 3),
    }


def slow(event, context):
    time.sleep(float((event or {}).get("seconds", 1)))
    return {"done": True, "remainingMs": context.get_remaining_time_in_millis()}
