"""Power tuning's core, as AWS Lambda Power Tuning computes it (emulator/advice/tuning.py)."""

from __future__ import annotations

import base64
import struct

import pytest

from emulator.advice import tuning
from emulator.advice.tuning import PowerStats, TuningInputError

# The example visualisation URL of Power Tuning's README-INPUT-OUTPUT.md: powers 128 ... 3008.
EXAMPLE_HASH = "gAAAAQACAAQABsAL;ZooQR4yvkUa/pQRGRC5zRaADHUVjOftE;QdWhOEMkoziDT5Q4xhiIOMYYiDi6RNc4"
GB_SECOND = 0.0000166667


def test_visualization_url_is_the_tools_encoding() -> None:
    sizes_b64, times_b64, costs_b64 = EXAMPLE_HASH.split(";")
    sizes = struct.unpack("<6h", base64.b64decode(sizes_b64))
    assert sizes == (128, 256, 512, 1024, 1536, 3008)
    times = struct.unpack("<6f", base64.b64decode(times_b64))
    costs = struct.unpack("<6f", base64.b64decode(costs_b64))
    stats = [PowerStats(p, t, c, 0.0) for p, t, c in zip(sizes, times, costs)]
    assert tuning.visualization_url(list(reversed(stats))) == "https://lambda-power-tuning.show/#" + EXAMPLE_HASH


def test_billed_duration_from_the_report_line() -> None:
    text = ("START RequestId: 1 Version: $LATEST\nEND RequestId: 1\n"
            "REPORT RequestId: 1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t\n")
    assert tuning.billed_duration(text) == 13
    json_log = '{"type":"platform.start"}\n{"type":"platform.report","record":{"metrics":{"billedDurationMs":7}}}\n'
    assert tuning.billed_duration(json_log) == 7
    assert tuning.billed_duration("no report here") == 0


def test_trimmed_mean_discards_the_top_and_bottom() -> None:
    durations = [9, 1, 2, 3, 100, 4, 5, 6, 7, 8]
    assert tuning.average_duration(durations, 0.2) == 5.5  # 3..8
    assert tuning.average_duration(durations, 0.0) == 14.5
    assert tuning.average_duration([4, 6], 0.2) == 5.0  # int(2 x 0.2) = 0 discarded


def test_price_is_ceil_duration_times_the_smallest_powers_ms_price() -> None:
    min_cost = tuning.cost_per_ms(GB_SECOND, 128)
    assert min_cost == pytest.approx(2.0833375e-9)
    stats = tuning.power_stats(256, [9, 1, 2, 3, 100, 4, 5, 6, 7, 8], 0.2, GB_SECOND)
    assert stats.average_duration == 5.5
    assert stats.average_price == pytest.approx(6 * 2.0833375e-9 * 2)
    assert stats.total_cost == pytest.approx(sum(range(1, 10)) * 2.0833375e-9 * 2 + 100 * 2.0833375e-9 * 2)


def stats_set() -> list[PowerStats]:
    return [PowerStats(128, 100.0, 4.0, 0), PowerStats(256, 50.0, 4.0, 0), PowerStats(512, 20.0, 5.0, 0),
            PowerStats(1024, 10.0, 8.0, 0)]


@pytest.mark.parametrize("strategy, weight, power", [
    ("cost", 0.5, 256),  # 128 and 256 cost the same: the faster
    ("speed", 0.5, 1024),
    ("balanced", 1.0, 128),  # a tie on cost alone: the first in order (the tool sorts stably)
    ("balanced", 0.0, 1024),
    # 0.5 x cost/8 + 0.5 x duration/100: 128 -> 0.75, 256 -> 0.5, 512 -> 0.4125, 1024 -> 0.55
    ("balanced", 0.5, 512),
])
def test_strategies(strategy: str, weight: float, power: int) -> None:
    assert tuning.choose(stats_set(), strategy, weight).value == power


def test_output_has_the_tools_shape() -> None:
    stats = [PowerStats(256, 50.0, 4.0, 1.5), PowerStats(128, 100.0, 4.0, 2.5)]
    out = tuning.output(stats, "cost", 0.5)
    assert out["power"] == 256 and out["cost"] == 4.0 and out["duration"] == 50.0
    assert out["stateMachine"]["lambdaCost"] == 4.0 and out["stateMachine"]["executionCost"] == 0.0
    assert out["stateMachine"]["visualization"].startswith("https://lambda-power-tuning.show/#")
    assert [s["value"] for s in out["stats"]] == [128, 256]
    assert set(out["stats"][0]) == {"value", "averagePrice", "averageDuration"}


def test_input_defaults_and_clamps() -> None:
    parsed = tuning.parse_input({"num": 10, "payload": {"n": 1}, "balancedWeight": 3, "discardTopBottom": 0.9})
    assert parsed.power_values == tuning.DEFAULT_POWER_VALUES
    assert parsed.balanced_weight == 1.0 and parsed.discard_top_bottom == 0.4
    assert parsed.payloads == (b'{"n": 1}',) * 10 and parsed.strategy == "cost" and not parsed.parallel
    cold = tuning.parse_input({"num": 5, "onlyColdStarts": True, "powerValues": "ALL", "payload": '{"a": 2}'})
    assert cold.discard_top_bottom == 0.0 and cold.power_values[0] == 128 and cold.power_values[-1] == 3008
    assert len(cold.power_values) == 46 and cold.payloads[0] == b'{"a": 2}'


def test_weighted_payloads() -> None:
    payload = [{"payload": {"k": "a"}, "weight": 5}, {"payload": {"k": "b"}, "weight": 15}, {"payload": {"k": "c"}, "weight": 30}]
    out = tuning.generate_payloads(50, payload)
    assert [out.count(b'{"k": "%s"}' % k) for k in (b"a", b"b", b"c")] == [5, 15, 30]
    with pytest.raises(TuningInputError):
        tuning.generate_payloads(2, payload)


@pytest.mark.parametrize("raw, message", [
    ({}, "num"), ({"num": 0}, "at least 1"), ({"num": 5, "strategy": "fast"}, "strategy"),
    ({"num": 5, "powerValues": [64]}, "between"), ({"num": 5, "powerValues": ["x"]}, "list of numbers"),
])
def test_bad_input_is_explained(raw: dict, message: str) -> None:
    with pytest.raises(TuningInputError, match=message):
        tuning.parse_input(raw)
