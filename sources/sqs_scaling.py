"""How many batches an SQS event source mapping processes at once: a pure policy.

`decide(state, window, now, config) -> state`, with time passed in: the poller counts what its
receives and invocations saw during a window and asks for the next target; it then runs
that many concurrent batch workers. Time is emulated seconds from the injected clock.

The rules, next to AWS's pages (URLs by the constants below):

* Start with 5 concurrent batches (the SQS scaling page; "reads up to five batches" in the
  legacy docs).
* While messages are waiting, add up to 300 batches per minute (current model since
  Nov 6, 2023), or 60 per minute in the legacy model, up to 1,000 per mapping (the launch
  blog's 1,250 is the alternative, set it through `ceiling`: README, "Choices where AWS is
  ambiguous").
* When traffic is low, scale back to 5, then optimise down to 2; "this optimization is not
  available when you enable maximum concurrency" (the scaling page).
* `ScalingConfig.MaximumConcurrency` caps the target: the mapping reads no more messages
  than it can invoke (the scaling page;
  https://aws.amazon.com/blogs/compute/introducing-maximum-concurrency-of-aws-lambda-functions-when-using-amazon-sqs-as-an-event-source/;
  Zac Charles, https://zaccharles.medium.com/does-maximum-concurrency-solve-the-lambda-sqs-issue-3c19701e6e75).
* Function errors and throttles make Lambda "gradually back off, reducing the amount of
  concurrency allocated" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)
  — never below the starting 5, which is why AWS asked for a reserved concurrency of at
  least 5 (its SQS page until 2023:
  https://github.com/awsdocs/aws-lambda-developer-guide/blob/38e9014eba7b2de5dff7e353de675d991e58947d/doc_source/with-sqs.md)
  and why fewer makes batches throttle.

"Messages are waiting" is read from the receives of the window: every receive came back
full (as many messages as it asked for), so the pollers, not the queue, are the limit. A
receive that came back short or empty means the queue was drained at that moment. A window
without any receive (every worker busy invoking) keeps the previous reading, so a slow
function still scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from emulator.policy.scaling import scale_count

# Concurrent batches at start: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
# (legacy model: https://aws.amazon.com/blogs/compute/understanding-how-aws-lambda-scales-when-subscribed-to-amazon-sqs-queues/).
INITIAL_CONCURRENCY = 5
# Scale-up rate since Nov 6, 2023 (the scaling page;
# https://aws.amazon.com/about-aws/whats-new/2023/11/aws-lambda-polling-scale-rate-sqs-event-source);
# before, 60 per minute (the legacy blog above;
# https://aws.amazon.com/blogs/compute/introducing-faster-polling-scale-up-for-aws-lambda-functions-configured-with-amazon-sqs/).
SCALE_UP_PER_MINUTE = 300
LEGACY_SCALE_UP_PER_MINUTE = 60
# Most concurrent batches per mapping (the scaling page). The Nov 2023 launch blog above
# says the old model reached 1,250: AWS disagrees with itself, so it is configurable
# (README, "Choices where AWS is ambiguous").
MAX_CONCURRENCY = 1000
BLOG_MAX_CONCURRENCY = 1250
# "can optimize to as few as 2 concurrent batches" when traffic is low (the scaling page).
IDLE_MINIMUM_CONCURRENCY = 2
# AWS gives no figures for the following; our choices (README, "Choices where AWS is
# ambiguous"):
# - scale down when idle at the scale-up rate (symmetric);
IDLE_SCALE_DOWN_PER_MINUTE = SCALE_UP_PER_MINUTE
# - the 5 → 2 optimisation after one minute without messages;
IDLE_BEFORE_MINIMUM_S = 60.0
# - "gradually backs off" (the error-handling page): each window with failed or throttled
#   batches removes this fraction of the target (at least one batch), never below
#   INITIAL_CONCURRENCY.
BACKOFF_FRACTION = 0.2
# How often the poller asks for a decision (a cadence, not an AWS figure).
DECISION_INTERVAL_S = 1.0


class SqsScalingModel(StrEnum):
    CURRENT = "current"  # since Nov 6, 2023 (the scaling page)
    LEGACY = "legacy"  # before (the legacy blog)


@dataclass(frozen=True)
class SqsScalingConfig:
    scale_up_per_minute: int = SCALE_UP_PER_MINUTE
    ceiling: int = MAX_CONCURRENCY
    initial: int = INITIAL_CONCURRENCY
    # None: no 2-batch optimisation (the legacy model and MaximumConcurrency have none).
    idle_minimum: int | None = IDLE_MINIMUM_CONCURRENCY
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    idle_scale_down_per_minute: int = IDLE_SCALE_DOWN_PER_MINUTE
    idle_before_minimum_s: float = IDLE_BEFORE_MINIMUM_S
    backoff_fraction: float = BACKOFF_FRACTION

    @classmethod
    def for_model(cls, model: str, *, ceiling: int = MAX_CONCURRENCY,
                  maximum_concurrency: int | None = None) -> "SqsScalingConfig":
        if SqsScalingModel(model) is SqsScalingModel.LEGACY:
            # The legacy docs describe 5 → +60/min → 1,000 and no 2-batch floor.
            return cls(LEGACY_SCALE_UP_PER_MINUTE, ceiling, idle_minimum=None, maximum_concurrency=maximum_concurrency)
        return cls(SCALE_UP_PER_MINUTE, ceiling, maximum_concurrency=maximum_concurrency)

    def scaled(self, factor: float) -> "SqsScalingConfig":
        """`--scale-factor`: the ceiling and the scale-up rate shrink; the starting 5 and
        MaximumConcurrency stay, since they decide whether a small function is overpulled."""
        return replace(self, ceiling=scale_count(self.ceiling, factor),
                       scale_up_per_minute=scale_count(self.scale_up_per_minute, factor),
                       idle_scale_down_per_minute=scale_count(self.idle_scale_down_per_minute, factor))

    @property
    def cap(self) -> int:
        if self.maximum_concurrency is None:
            return self.ceiling
        return min(self.ceiling, self.maximum_concurrency)

    @property
    def busy_floor(self) -> int:
        """The least concurrency while messages flow or batches fail."""
        return min(self.initial, self.cap)

    @property
    def idle_floor(self) -> int:
        if self.maximum_concurrency is not None or self.idle_minimum is None:
            return self.busy_floor
        return min(self.idle_minimum, self.busy_floor)


class Demand(StrEnum):
    BACKLOG = "backlog"  # every receive of the window came back full
    IDLE = "idle"  # every receive came back empty
    MIXED = "mixed"  # some messages, but the queue ran dry: concurrency matches the traffic
    UNKNOWN = "unknown"  # no receive at all in the window


@dataclass(frozen=True)
class PollWindow:
    """What the workers saw since the last decision."""

    full_receives: int = 0  # returned as many messages as asked for
    empty_receives: int = 0
    failed_batches: int = 0  # the function returned an error
    throttled_batches: int = 0  # the invocation was throttled
    partial_receives: int = 0  # returned some messages, fewer than asked for

    @property
    def demand(self) -> Demand:
        if self.full_receives and not (self.empty_receives or self.partial_receives):
            return Demand.BACKLOG
        if self.empty_receives and not (self.full_receives or self.partial_receives):
            return Demand.IDLE
        if self.full_receives or self.partial_receives:
            return Demand.MIXED
        return Demand.UNKNOWN


@dataclass(frozen=True)
class SqsScalingState:
    target: int
    last_decision: float
    demand: Demand = Demand.UNKNOWN  # the last known reading
    credit: float = 0.0  # scale-up (or idle scale-down) earned but not yet a whole batch
    idle_since: float | None = None


def initial_state(config: SqsScalingConfig, now: float) -> SqsScalingState:
    return SqsScalingState(target=config.busy_floor, last_decision=now)


def decide(state: SqsScalingState, window: PollWindow, now: float, config: SqsScalingConfig) -> SqsScalingState:
    elapsed = max(0.0, now - state.last_decision)
    target = min(state.target, config.cap)  # MaximumConcurrency may have been lowered
    if window.failed_batches or window.throttled_batches:
        step = max(1, math.ceil(target * config.backoff_fraction))
        return SqsScalingState(max(config.busy_floor, target - step), now, Demand.UNKNOWN)
    demand = window.demand if window.demand is not Demand.UNKNOWN else state.demand
    if demand is Demand.BACKLOG:
        target = max(target, config.busy_floor)  # leaving the 2-batch optimisation: 5 again
        credit = state.credit + elapsed * config.scale_up_per_minute / 60.0
        grow = math.floor(credit + 1e-9)
        target = min(config.cap, target + grow)
        credit = 0.0 if target >= config.cap else credit - grow
        return SqsScalingState(target, now, demand, credit)
    if demand is Demand.IDLE:
        idle_since = state.idle_since if state.idle_since is not None else state.last_decision
        if target > config.busy_floor:
            credit = state.credit + elapsed * config.idle_scale_down_per_minute / 60.0
            shrink = math.floor(credit + 1e-9)
            target = max(config.busy_floor, target - shrink)
            credit = credit - shrink if target > config.busy_floor else 0.0
            return SqsScalingState(target, now, demand, credit, idle_since)
        if now - idle_since >= config.idle_before_minimum_s:
            target = config.idle_floor
        return SqsScalingState(target, now, demand, 0.0, idle_since)
    return SqsScalingState(target, now, demand)
