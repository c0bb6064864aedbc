"""A delivery tried until it succeeds or its deadline passes, waiting between attempts.

The shell around emulator/policy/delivery_retry.py for callers that wait for their
delivery where they are: a Kinesis mapping's on-failure record holds its shard until it is
delivered or given up (sources/kinesis_poller.py). The async queue keeps its deliveries on
its own timers instead (emulator/service/async_queue.py), with the same schedule.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from emulator.policy.delivery_retry import DeliveryDecision, DeliveryState, RetryDeliveryAt, decide_delivery
from emulator.service.destinations import DeliveryFailed


async def deliver_until_deadline(
    send: Callable[[], Awaitable[None]],
    state: DeliveryState,
    *,
    now: Callable[[], float],
    to_real: Callable[[float], float],
    rng: random.Random,
    on_retry: Callable[[str, RetryDeliveryAt], None] = lambda failure, decision: None,
) -> tuple[DeliveryDecision, str]:
    """Attempt `send` (which raises DeliveryFailed) on the schedule of `state`, whose deadline
    is on the timeline of `now`; returns the final decision (Delivered or DeliveryDropped)
    and the last failure's message. `on_retry` hears of each failure that is retried."""
    while True:
        failure = ""
        try:
            await send()
        except DeliveryFailed as exc:
            failure = str(exc) or type(exc).__name__
        decision = decide_delivery(state, not failure, now(), rng)
        if not isinstance(decision, RetryDeliveryAt):
            return decision, failure
        on_retry(failure, decision)
        delay = to_real(decision.when - now())
        if delay > 0:
            await asyncio.sleep(delay)
        state = decision.state
