"""The descriptor budget: how many environments an open-files limit leaves room for."""

from __future__ import annotations

from emulator.execution.host_limits import FDS_PER_CONNECTION, FDS_PER_ENVIRONMENT, FDS_RESERVED, DescriptorBudget


def test_the_default_soft_limit_alone_is_too_low_for_1000_environments() -> None:
    budget = DescriptorBudget.for_limit(1024, 1024)
    assert budget.environment_limit == (1024 - FDS_RESERVED) // (FDS_PER_ENVIRONMENT + FDS_PER_CONNECTION)
    assert not budget.enough_for(1000)


def test_a_typical_hard_limit_holds_1000_environments_with_their_connections() -> None:
    for hard in (4096 + FDS_RESERVED, 524_288, 1_048_576):
        assert DescriptorBudget.for_limit(hard, hard).enough_for(1000), hard


def test_a_tiny_limit_still_allows_one_environment() -> None:
    assert DescriptorBudget.for_limit(16, 16).environment_limit == 1
