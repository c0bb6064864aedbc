"""emulator.policy.scaling: cold-start token buckets, exact numbers in virtual time."""

from __future__ import annotations

import pytest

from emulator.policy.scaling import (
    FunctionScalingBucket,
    RegionalBurstBucket,
    ScalingMode,
    ScalingRateConfig,
    ScalingRateModel,
    legacy_burst_for_region,
    scale_count,
)


def drain(take, now: float) -> int:
    """Take tokens at one instant until refused; return how many were granted."""
    granted = 0
    while take(now):
        granted += 1
    return granted


def test_function_bucket_starts_full_with_1000() -> None:
    bucket = FunctionScalingBucket()
    assert bucket.available(0.0) == 1000.0
    assert drain(bucket.try_take, 0.0) == 1000
    assert not bucket.try_take(0.0)


def test_function_bucket_refills_one_token_per_10_ms() -> None:
    bucket = FunctionScalingBucket()
    drain(bucket.try_take, 0.0)
    assert not bucket.try_take(0.005)
    assert bucket.try_take(0.01)
    assert not bucket.try_take(0.01)


def test_function_bucket_refill_is_exact_despite_float_steps() -> None:
    # (0.03 - 0.02) * 100 is 0.9999999999999998 in floats: still one whole token.
    bucket = FunctionScalingBucket()
    drain(bucket.try_take, 0.0)
    granted = [bucket.try_take(step / 100) for step in range(1, 101)]
    assert granted == [True] * 100


def test_function_bucket_refills_1000_in_10_seconds() -> None:
    bucket = FunctionScalingBucket()
    drain(bucket.try_take, 0.0)
    assert bucket.available(5.0) == pytest.approx(500.0)
    assert drain(bucket.try_take, 10.0) == 1000


def test_function_bucket_does_not_accrue_beyond_capacity() -> None:
    bucket = FunctionScalingBucket()
    assert bucket.available(3600.0) == 1000.0
    drain(bucket.try_take, 3600.0)
    assert drain(bucket.try_take, 7200.0) == 1000


def test_stale_now_never_removes_tokens() -> None:
    bucket = FunctionScalingBucket()
    for _ in range(10):
        bucket.try_take(5.0)
    assert bucket.available(4.0) == 990.0


def test_function_bucket_custom_rate() -> None:
    bucket = FunctionScalingBucket(new_environments=50, per_seconds=10.0)  # 5 per second
    assert drain(bucket.try_take, 0.0) == 50
    assert drain(bucket.try_take, 1.0) == 5


@pytest.mark.parametrize(
    ("region", "burst"),
    [
        ("us-west-2", 3000),
        ("us-east-1", 3000),
        ("eu-west-1", 3000),
        ("ap-northeast-1", 1000),
        ("eu-central-1", 1000),
        ("us-east-2", 1000),
        ("sa-east-1", 500),
        ("ap-southeast-2", 500),
    ],
)
def test_legacy_burst_by_region(region: str, burst: int) -> None:
    assert legacy_burst_for_region(region) == burst


def test_regional_bucket_bursts_then_adds_500_per_minute() -> None:
    bucket = RegionalBurstBucket(burst=3000)
    assert drain(bucket.try_take, 0.0) == 3000
    assert not bucket.try_take(0.1)
    assert drain(bucket.try_take, 60.0) == 500
    assert drain(bucket.try_take, 120.0) == 500
    assert bucket.available(10_000.0) == 3000.0  # refills to the burst, never above


def test_current_model_scales_each_function_independently() -> None:
    model = ScalingRateModel()
    assert drain(lambda now: model.try_take("a", now), 0.0) == 1000
    assert model.try_take("b", 0.0)  # a's exhaustion does not touch b (functions scale independently)
    assert not model.try_take("a", 0.0)
    assert model.try_take("a", 0.01)
    assert model.available("b", 0.0) == 999.0


def test_legacy_model_shares_one_bucket_across_functions() -> None:
    model = ScalingRateModel(ScalingRateConfig(mode="legacy", region="eu-central-1"))
    granted = sum(model.try_take(f"fn-{i % 7}", 0.0) for i in range(1500))
    assert granted == 1000
    assert not model.try_take("never-seen", 0.0)
    assert drain(lambda now: model.try_take("x", now), 60.0) == 500


def test_legacy_model_explicit_burst_overrides_region() -> None:
    config = ScalingRateConfig(mode=ScalingMode.LEGACY, legacy_burst=20, legacy_per_minute=6)
    model = ScalingRateModel(config)
    assert drain(lambda now: model.try_take("f", now), 0.0) == 20
    assert drain(lambda now: model.try_take("g", now), 10.0) == 1  # 6 per minute


def test_config_defaults_are_the_aws_numbers() -> None:
    config = ScalingRateConfig()
    assert config.mode is ScalingMode.CURRENT
    assert (config.new_environments, config.per_seconds) == (1000, 10.0)
    assert config.effective_legacy_burst == 3000
    assert config.legacy_per_minute == 500


def test_scaled_config_divides_counts_not_time() -> None:
    scaled = ScalingRateConfig(region="us-east-2").scaled(20)
    assert scaled.new_environments == 50
    assert scaled.per_seconds == 10.0
    assert scaled.legacy_burst == 50  # 1000 (us-east-2) / 20
    assert scaled.legacy_per_minute == 25


def test_scaled_config_keeps_at_least_one() -> None:
    scaled = ScalingRateConfig(region="sa-east-1").scaled(10_000)
    assert (scaled.new_environments, scaled.legacy_burst, scaled.legacy_per_minute) == (1, 1, 1)


def test_scaled_model_uses_scaled_numbers() -> None:
    model = ScalingRateModel(ScalingRateConfig().scaled(20))
    assert drain(lambda now: model.try_take("f", now), 0.0) == 50
    assert not model.try_take("f", 0.1)
    assert model.try_take("f", 0.2)  # 5 per second


def test_scale_count() -> None:
    assert scale_count(1000, 20) == 50
    assert scale_count(100, 20) == 5
    assert scale_count(100, 3) == 33
    assert scale_count(55, 1.1) == 50  # not 49: float division lands just below 50
    assert scale_count(0, 20) == 0
    assert scale_count(3, 20) == 1
    with pytest.raises(ValueError):
        scale_count(10, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sideways"},
        {"new_environments": 0},
        {"per_seconds": 0.0},
        {"legacy_burst": 0},
        {"legacy_per_minute": 0},
    ],
)
def test_config_rejects_invalid_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ScalingRateConfig(**kwargs)
