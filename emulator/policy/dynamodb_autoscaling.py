"""DynamoDB auto scaling with a target-tracking policy: when to change provisioned capacity,
and to what (a pure policy: time and metrics passed in).

How AWS does it (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/AutoScaling.html
and https://repost.aws/knowledge-center/dynamodb-auto-scaling): Application Auto Scaling
creates two CloudWatch alarms on the table's consumed capacity, one data point per minute
(`ConsumedWriteCapacityUnits`, Sum over 60 s:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html);

- it "increases provisioned capacity when utilization exceeds [the target] for at least 2
  consecutive minutes";
- it "decreases provisioned capacity when utilization is 20% or more below the target for
  15 consecutive minutes" (the example there: target 70% → 50%, so 20 percentage points);
- target tracking sets the capacity that brings utilization back to the target: the
  consumed units per second divided by the target
  (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html),
  kept within the scalable target's MinCapacity and MaxCapacity;
- a scale-out waits ScaleOutCooldown after the previous scale-out, a scale-in waits
  ScaleInCooldown after the previous scale-in; both default to 0 s for DynamoDB
  (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TargetTrackingScalingPolicyConfiguration.html);
  a scale-out is not held back by a scale-in cooldown; `DisableScaleIn` turns scale-in off.

Choices where AWS is silent (README, "DynamoDB capacity"): the alarm uses the latest data
point's consumption for the new capacity, rounded up; capacity outside [min, max] when the
target is registered is brought inside it at once. DynamoDB's own limit on decreases per
day applies when the capacity is changed (UpdateTable answers LimitExceededException); the
controller tries again at the next data point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# One data point per minute (CloudWatch's period for DynamoDB metrics, module text).
PERIOD_S = 60.0
SCALE_OUT_DATAPOINTS = 2
SCALE_IN_DATAPOINTS = 15
SCALE_IN_MARGIN_POINTS = 20.0  # percentage points below the target
DEFAULT_COOLDOWN_S = 0.0


@dataclass(frozen=True)
class TargetTracking:
    """One scalable dimension of a table or index with its target-tracking policy."""

    resource_id: str  # "table/T" or "table/T/index/I"
    dimension: str  # "dynamodb:table:WriteCapacityUnits", ...
    minimum: int
    maximum: int
    target: float  # utilization percent
    scale_out_cooldown_s: float = DEFAULT_COOLDOWN_S
    scale_in_cooldown_s: float = DEFAULT_COOLDOWN_S
    disable_scale_in: bool = False


@dataclass(frozen=True)
class Datapoint:
    """One minute of a resource: units consumed in it and the capacity provisioned then."""

    consumed: float
    provisioned: float

    @property
    def utilization(self) -> float:
        """Percent of the provisioned capacity consumed over the period."""
        if self.provisioned <= 0:
            return math.inf if self.consumed > 0 else 0.0
        return self.consumed / PERIOD_S / self.provisioned * 100.0


@dataclass(frozen=True)
class ScalerState:
    datapoints: tuple[Datapoint, ...] = ()  # oldest first, at most SCALE_IN_DATAPOINTS
    last_scale_out_at: float = -math.inf
    last_scale_in_at: float = -math.inf


@dataclass(frozen=True)
class ScalingDecision:
    capacity: int | None  # the new capacity, or None: leave it
    reason: str = ""


def record(state: ScalerState, point: Datapoint) -> ScalerState:
    return replace(state, datapoints=(*state.datapoints, point)[-SCALE_IN_DATAPOINTS:])


def wanted_capacity(policy: TargetTracking, consumed_per_minute: float) -> int:
    """The capacity that puts this consumption at the target utilization, within [min, max]."""
    per_second = consumed_per_minute / PERIOD_S
    capacity = math.ceil(per_second / (policy.target / 100.0) - 1e-9)
    return max(policy.minimum, min(policy.maximum, capacity))


def decide(policy: TargetTracking, state: ScalerState, current: int, now: float) -> ScalingDecision:
    """What to do at `now`, a data point having just been recorded in `state`."""
    if current < policy.minimum:
        return ScalingDecision(policy.minimum, f"below MinCapacity {policy.minimum}")
    if current > policy.maximum:
        return ScalingDecision(policy.maximum, f"above MaxCapacity {policy.maximum}")
    points = state.datapoints
    if len(points) >= SCALE_OUT_DATAPOINTS and all(p.utilization > policy.target for p in points[-SCALE_OUT_DATAPOINTS:]):
        wanted = wanted_capacity(policy, points[-1].consumed)
        if wanted > current and now >= state.last_scale_out_at + policy.scale_out_cooldown_s:
            return ScalingDecision(wanted, f"utilization above {policy.target:g}% for {SCALE_OUT_DATAPOINTS} minutes")
        return ScalingDecision(None)
    low = policy.target - SCALE_IN_MARGIN_POINTS
    if (not policy.disable_scale_in and len(points) >= SCALE_IN_DATAPOINTS
            and all(p.utilization < low for p in points[-SCALE_IN_DATAPOINTS:])):
        wanted = wanted_capacity(policy, points[-1].consumed)
        if wanted < current and now >= state.last_scale_in_at + policy.scale_in_cooldown_s:
            return ScalingDecision(wanted, f"utilization below {low:g}% for {SCALE_IN_DATAPOINTS} minutes")
    return ScalingDecision(None)


def after_scaling(state: ScalerState, current: int, new: int, now: float) -> ScalerState:
    """The state once the capacity went from `current` to `new` at `now`: the alarms start
    over on the new capacity (their data points were against the old one)."""
    if new > current:
        return ScalerState((), now, state.last_scale_in_at)
    return ScalerState((), state.last_scale_out_at, now)
