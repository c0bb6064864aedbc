"""Which --host values count as loopback (emulator/config.py)."""

from __future__ import annotations

import pytest

from emulator.config import Config, is_loopback_host, remote_binding_refusal, remote_binding_warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)
    assert remote_binding_refusal(Config(host=host)) is None
    assert remote_binding_warning(Config(host=host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "10.0.0.1", "fe80::1"])
def test_other_hosts_need_allow_remote(host: str) -> None:
    assert not is_loopback_host(host)
    refusal = remote_binding_refusal(Config(host=host))
    assert refusal is not None and "--allow-remote" in refusal
    assert remote_binding_refusal(Config(host=host, allow_remote=True)) is None
    assert "WARNING" in (remote_binding_warning(Config(host=host, allow_remote=True)) or "")
