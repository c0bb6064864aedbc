"""Back-off delays: a doubling step with a cap, and the two jitters drawn around it (pure).

Every retry loop of the emulator takes its delays from here: the async queue's throttle
retries and record deliveries (emulator/policy/async_retry.py), a supervised process's
restarts (emulator/policy/restarts.py), and the SQS poller's throttle and backend retries
(sources/sqs_poller.py). The jitters follow AWS's own description
(https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): "full jitter"
draws anywhere up to the step, so a herd of callers throttled together does not come back
together and throttle itself again; "equal jitter" draws in the upper half, so callers
spread out yet each keeps backing off. The random source is injected: a seeded
`random.Random` makes a test exact.
"""

from __future__ import annotations

import random

# 2**16 times any first delay already exceeds every cap; a bounded exponent avoids huge ints.
_MAX_EXPONENT = 16


def doubling_step(retries: int, first: float, cap: float) -> float:
    """`first` after no retry, then twice as long after each, never above `cap`."""
    return float(min(cap, first * 2 ** min(max(0, retries), _MAX_EXPONENT)))


def full_jitter(step: float, rng: random.Random, floor: float = 0.0) -> float:
    """A uniform draw between `floor` and `step`."""
    return rng.uniform(floor, step) if step > floor else step


def equal_jitter(step: float, rng: random.Random) -> float:
    """A uniform draw between half of `step` and `step`."""
    return rng.uniform(step / 2, step)
