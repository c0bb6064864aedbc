"""The SQS poller scaling policy in virtual time
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html,
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)."""

from __future__ import annotations

import pytest

from emulator.sources.sqs_scaling import (
    BLOG_MAX_CONCURRENCY, Demand, PollWindow, SqsScalingConfig, SqsScalingState, decide, initial_state,
)

BACKLOG = PollWindow(full_receives=5)
IDLE = PollWindow(empty_receives=5)
MIXED = PollWindow(full_receives=3, empty_receives=2)
SHORT = PollWindow(partial_receives=5)
NOTHING = PollWindow()


def run(config: SqsScalingConfig, windows: list[PollWindow], *, every: float = 1.0,
        state: SqsScalingState | None = None) -> list[int]:
    """Targets after each window, one window every `every` seconds from t=0."""
    state = state or initial_state(config, 0.0)
    targets = []
    now = state.last_decision
    for window in windows:
        now += every
        state = decide(state, window, now, config)
        targets.append(state.target)
    return targets


def test_starts_with_five_concurrent_batches():
    assert initial_state(SqsScalingConfig(), 0.0).target == 5


def test_adds_300_per_minute_while_messages_wait():
    targets = run(SqsScalingConfig(), [BACKLOG] * 60)
    assert targets[0] == 10  # +5 per second
    assert targets[59] == 5 + 300


def test_legacy_model_adds_60_per_minute():
    config = SqsScalingConfig.for_model("legacy")
    targets = run(config, [BACKLOG] * 60)
    assert targets[0] == 6
    assert targets[59] == 65


def test_fractional_growth_accumulates():
    # legacy: one batch per second, so windows of 0.25 s grow every fourth window
    targets = run(SqsScalingConfig.for_model("legacy"), [BACKLOG] * 8, every=0.25)
    assert targets == [5, 5, 5, 6, 6, 6, 6, 7]


def test_stops_at_the_ceiling_of_1000():
    targets = run(SqsScalingConfig(), [BACKLOG] * 400)
    assert max(targets) == 1000
    assert targets[-1] == 1000


def test_blog_ceiling_is_selectable():
    targets = run(SqsScalingConfig(ceiling=BLOG_MAX_CONCURRENCY), [BACKLOG] * 400)
    assert targets[-1] == 1250


def test_maximum_concurrency_caps_the_target():
    config = SqsScalingConfig(maximum_concurrency=20)
    assert run(config, [BACKLOG] * 30)[-1] == 20


def test_maximum_concurrency_below_five_caps_the_start():
    config = SqsScalingConfig(maximum_concurrency=2)
    assert initial_state(config, 0.0).target == 2
    assert run(config, [BACKLOG] * 5) == [2] * 5


def test_lowering_maximum_concurrency_takes_effect_at_once():
    state = SqsScalingState(target=50, last_decision=0.0)
    assert decide(state, MIXED, 1.0, SqsScalingConfig(maximum_concurrency=10)).target == 10


def test_mixed_receives_hold_the_target():
    state = SqsScalingState(target=40, last_decision=0.0)
    assert run(SqsScalingConfig(), [MIXED] * 10, state=state) == [40] * 10


def test_short_receives_mean_the_queue_ran_dry():
    # one message sent to an idle queue: a receive with messages, but not a backlog
    state = SqsScalingState(target=5, last_decision=0.0)
    assert run(SqsScalingConfig(), [SHORT, PollWindow(full_receives=2, partial_receives=1)], state=state) == [5, 5]


def test_a_window_without_receives_keeps_the_last_reading():
    # a slow function: most windows see no receive at all, but messages are waiting
    targets = run(SqsScalingConfig(), [BACKLOG, NOTHING, NOTHING, BACKLOG])
    assert targets == [10, 15, 20, 25]


def test_idle_scales_back_to_five_then_two():
    state = SqsScalingState(target=305, last_decision=0.0, demand=Demand.BACKLOG)
    targets = run(SqsScalingConfig(), [IDLE] * 200, state=state)
    assert targets[0] == 300
    assert targets[59] == 5  # back to five within a minute
    assert 5 in targets and targets[-1] == 2
    # the 2-batch optimisation comes after a minute without messages
    assert targets.index(2) == 60


def test_no_two_batch_optimisation_with_maximum_concurrency():
    config = SqsScalingConfig(maximum_concurrency=10)
    assert run(config, [IDLE] * 300)[-1] == 5


def test_no_two_batch_optimisation_in_legacy_model():
    assert run(SqsScalingConfig.for_model("legacy"), [IDLE] * 300)[-1] == 5


def test_messages_after_idle_restart_at_five():
    config = SqsScalingConfig()
    state = SqsScalingState(target=2, last_decision=0.0, demand=Demand.IDLE, idle_since=-100.0)
    state = decide(state, BACKLOG, 0.0, config)
    assert state.target == 5


@pytest.mark.parametrize("window", [PollWindow(full_receives=5, throttled_batches=1),
                                    PollWindow(full_receives=5, failed_batches=1)])
def test_errors_and_throttles_back_off_gradually(window):
    state = SqsScalingState(target=100, last_decision=0.0, demand=Demand.BACKLOG)
    targets = run(SqsScalingConfig(), [window] * 5, state=state)
    assert targets == [80, 64, 51, 40, 32]


def test_back_off_never_goes_below_five():
    # the overpull condition: reserved concurrency 1, five pollers, every window throttles
    window = PollWindow(full_receives=5, throttled_batches=4)
    assert run(SqsScalingConfig(), [window] * 30) == [5] * 30


def test_back_off_pauses_growth_and_growth_resumes():
    throttled = PollWindow(full_receives=5, throttled_batches=1)
    targets = run(SqsScalingConfig(), [BACKLOG, throttled, BACKLOG, BACKLOG])
    assert targets == [10, 8, 13, 18]


def test_scale_factor_shrinks_ceiling_and_rate_but_not_the_start():
    config = SqsScalingConfig().scaled(10)
    assert (config.ceiling, config.scale_up_per_minute, config.initial) == (100, 30, 5)
    assert run(config, [BACKLOG] * 300)[-1] == 100
