"""Scaling-rate models: how fast Lambda may create NEW execution environments.

AWS states the rate in execution environment instances
(https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html), so our reading is:
one token = one new execution environment (a cold start), and reusing a warm environment
spends nothing. The caller checks the concurrency ledger first and spends a token only when
no warm environment is free.

Pure: every method takes `now` (emulated seconds from the injected clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

# "1,000 execution environment instances every 10 seconds", per function, refilled
# continuously, never accruing beyond 1,000:
# https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html
DEFAULT_NEW_ENVIRONMENTS = 1_000
DEFAULT_PER_SECONDS = 10.0

# The model before Nov 2023: a Regional burst shared by all functions, then "500 instances
# each minute" (AWS's archived page, with the burst per Region:
# https://github.com/awsdocs/aws-lambda-developer-guide/blob/38e9014eba7b2de5dff7e353de675d991e58947d/doc_source/invocation-scaling.md).
LEGACY_PER_MINUTE = 500
LEGACY_BURST_BY_REGION: dict[str, int] = {
    "us-west-2": 3_000,
    "us-east-1": 3_000,
    "eu-west-1": 3_000,
    "ap-northeast-1": 1_000,
    "eu-central-1": 1_000,
    "us-east-2": 1_000,
}
LEGACY_BURST_OTHER_REGIONS = 500  # the archived page: 500 in all other Regions
DEFAULT_REGION = "us-east-1"

# Refill is computed from float differences of timestamps: (0.03 - 0.02) * 100 is
# 0.9999999999999998, so a token due at exactly that instant would be refused. Tokens
# within this tolerance of a whole one count as whole.
_TOKEN_EPSILON = 1e-9


def legacy_burst_for_region(region: str) -> int:
    """Initial burst of the legacy model for `region` (the archived page above)."""
    return LEGACY_BURST_BY_REGION.get(region, LEGACY_BURST_OTHER_REGIONS)


class _RefillingBucket:
    """A token bucket that starts full and refills continuously, capped at capacity.

    The cap is the "no accrual" rule of the scaling-behavior page: after a long idle period the bucket holds
    `capacity`, never more.
    """

    __slots__ = ("capacity", "refill_per_second", "_tokens", "_stamp")

    def __init__(self, capacity: float, refill_per_second: float) -> None:
        if capacity < 1:
            raise ValueError(f"bucket capacity must be >= 1, got {capacity!r}")
        if refill_per_second <= 0:
            raise ValueError(f"bucket refill rate must be > 0, got {refill_per_second!r}")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._tokens = self.capacity
        # -inf: the first refill sees infinite elapsed time and lands on `capacity`,
        # so a bucket needs no clock reading at construction.
        self._stamp = -math.inf

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed > 0:  # a stale `now` (elapsed <= 0) must never remove tokens
            tokens = self._tokens + elapsed * self.refill_per_second
            self._tokens = tokens if tokens < self.capacity else self.capacity
            self._stamp = now

    def try_take(self, now: float) -> bool:
        """Spend one token if one is available at `now`."""
        self._refill(now)
        if self._tokens >= 1.0 - _TOKEN_EPSILON:
            self._tokens -= 1.0
            return True
        return False

    def available(self, now: float) -> float:
        """Tokens available at `now` (fractional while refilling)."""
        self._refill(now)
        return max(0.0, self._tokens)


class FunctionScalingBucket(_RefillingBucket):
    """Current model (scaling-behavior page): per function, `new_environments` per `per_seconds`."""

    __slots__ = ()

    def __init__(
        self,
        new_environments: int = DEFAULT_NEW_ENVIRONMENTS,
        per_seconds: float = DEFAULT_PER_SECONDS,
    ) -> None:
        # "Refill ... continuously over time" (scaling-behavior page): 1,000 per 10 s is 100/s.
        super().__init__(new_environments, new_environments / per_seconds)


class RegionalBurstBucket(_RefillingBucket):
    """Legacy model (before Nov 2023): one burst of `burst`, then `per_minute` per minute.

    Approximation: refill is continuous from the start, so a burst drained at t=0 allows
    up to burst + 500 new environments within the first minute, where AWS's worked example
    (https://docs.aws.amazon.com/lambda/latest/operatorguide/on-demand-scaling.html) counts
    exactly `burst` in minute 1. The long-run rate (+500/min) matches.
    """

    __slots__ = ()

    def __init__(self, burst: int, per_minute: int = LEGACY_PER_MINUTE) -> None:
        super().__init__(burst, per_minute / 60.0)


class ScalingMode(StrEnum):
    """The registry of scaling models (CLI choices come from here)."""

    CURRENT = "current"  # since Nov 2023 (scaling-behavior page)
    LEGACY = "legacy"  # before Nov 2023 (the archived page)


def scale_count(count: int, factor: float) -> int:
    """`count / factor` rounded down, but at least 1 (0 stays 0).

    Used by every `--scale-factor` division: a scaled-down limit keeps at least one unit,
    since zero would forbid all work rather than shrink it.
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"scale factor must be a finite number > 0, got {factor!r}")
    if count == 0:
        return 0
    # The epsilon keeps 55 / 1.1 (= 49.99999999999999) from flooring to 49.
    return max(1, math.floor(count / factor + 1e-9))


@dataclass(frozen=True)
class ScalingRateConfig:
    """Every number of the scaling-rate models; defaults are the AWS values."""

    mode: ScalingMode = ScalingMode.CURRENT
    new_environments: int = DEFAULT_NEW_ENVIRONMENTS
    per_seconds: float = DEFAULT_PER_SECONDS
    legacy_burst: int | None = None  # None: by region (LEGACY_BURST_BY_REGION)
    legacy_per_minute: int = LEGACY_PER_MINUTE
    region: str = DEFAULT_REGION

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ScalingMode(self.mode))
        if self.new_environments < 1:
            raise ValueError(f"new_environments must be >= 1, got {self.new_environments!r}")
        if not self.per_seconds > 0:
            raise ValueError(f"per_seconds must be > 0, got {self.per_seconds!r}")
        if self.legacy_burst is not None and self.legacy_burst < 1:
            raise ValueError(f"legacy_burst must be >= 1, got {self.legacy_burst!r}")
        if self.legacy_per_minute < 1:
            raise ValueError(f"legacy_per_minute must be >= 1, got {self.legacy_per_minute!r}")

    @property
    def effective_legacy_burst(self) -> int:
        if self.legacy_burst is not None:
            return self.legacy_burst
        return legacy_burst_for_region(self.region)

    def scaled(self, factor: float) -> ScalingRateConfig:
        """Divide every count by `factor` (at least 1 each); time spans are unchanged.

        `--scale-factor 20` turns 1,000 new environments per 10 s into 50 per 10 s.
        """
        return replace(
            self,
            new_environments=scale_count(self.new_environments, factor),
            legacy_burst=scale_count(self.effective_legacy_burst, factor),
            legacy_per_minute=scale_count(self.legacy_per_minute, factor),
        )


class ScalingRateModel:
    """Hands out cold-start tokens under the configured model.

    CURRENT: one bucket per function, created on first use (functions scale independently:
    the scaling-behavior page). LEGACY: one bucket shared by every function (the old burst
    quota "applies to all your functions in the Region").
    """

    __slots__ = ("config", "_buckets", "_shared")

    def __init__(self, config: ScalingRateConfig | None = None) -> None:
        self.config = config if config is not None else ScalingRateConfig()
        self._buckets: dict[str, FunctionScalingBucket] = {}
        self._shared: RegionalBurstBucket | None = None
        if self.config.mode is ScalingMode.LEGACY:
            self._shared = RegionalBurstBucket(
                self.config.effective_legacy_burst, self.config.legacy_per_minute
            )

    def _bucket(self, function_key: str) -> _RefillingBucket:
        if self._shared is not None:
            return self._shared
        bucket = self._buckets.get(function_key)
        if bucket is None:
            bucket = FunctionScalingBucket(self.config.new_environments, self.config.per_seconds)
            self._buckets[function_key] = bucket
        return bucket

    def try_take(self, function_key: str, now: float) -> bool:
        """Spend one token to create a new environment for `function_key` at `now`."""
        return self._bucket(function_key).try_take(now)

    def available(self, function_key: str, now: float) -> float:
        """Tokens `function_key` could spend at `now` (for metrics and tests)."""
        return self._bucket(function_key).available(now)
