"""The API Gateway options (emulator/config.py): flags and EMULATOR_* variables, checked."""

from __future__ import annotations

import pytest

from emulator.config import Config, from_sources


def test_defaults_and_environment() -> None:
    assert (Config().api_port, Config().api_lambda_throttle_status) == (3000, 500)
    config = from_sources({}, {"EMULATOR_API_PORT": "0", "EMULATOR_API_ACCOUNT_RATE": "2.5", "EMULATOR_API_QUOTA_OFFSET": "day"})
    assert (config.api_port, config.api_account_rate, config.api_quota_offset) == (0, 2.5, "day")


@pytest.mark.parametrize(("name", "value"), [
    ("api_lambda_throttle_status", "418"), ("api_account_rate", "-1"), ("api_account_rate", "inf"),
    ("api_account_burst", "-2"), ("api_port", "70000"), ("api_throttle_spend", "sometimes"),
])
def test_bad_values_name_the_flag(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="--" + name.replace("_", "-")):
        from_sources({name: value}, {})
