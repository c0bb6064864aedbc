"""A CPU-bound handler: hash a buffer `rounds` times (no I/O, no sleeping), so its duration
is all CPU and follows the CPU its memory size gives it."""

import hashlib


def handler(event, context):
    digest = b"power tuning"
    for _ in range(int(event.get("rounds", 20_000))):
        digest = hashlib.sha256(digest * 8).digest()
    return {"digest": digest.hex(), "memory_mb": context.memory_limit_in_mb}
