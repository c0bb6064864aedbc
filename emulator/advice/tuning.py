"""Local power tuning: the input, statistics and output of AWS Lambda Power Tuning
(https://github.com/alexcasalboni/aws-lambda-power-tuning, README-INPUT-OUTPUT.md), so its
habits and its visualisation carry over. Pure: the runner (emulator/load/tune.py) invokes
the function and hands the REPORT lines' billed durations to these functions.

What follows the tool: `powerValues` (a list, or "ALL": 128 to 3,008 MB in steps of 64),
`num`, `payload` (also weighted payloads), `parallelInvocation`, `strategy`
(cost | speed | balanced) and `balancedWeight` (clamped to 0..1), `discardTopBottom` (default
0.2, or 0 with `onlyColdStarts`; clamped to 0..0.4; a trimmed mean), `onlyColdStarts`;
durations are the REPORT line's `Billed Duration`; a power's average price is
ceil(average duration) x the price of 1 ms at the smallest power x power / smallest power;
the visualisation URL's hash is three base64 packed arrays, powers as little-endian int16
and average durations and costs as little-endian float32, joined by ";".
What differs: prices come from our price table (the tool bundles its own per-Region base
costs), and `stateMachine.executionCost` is 0 (no Step Functions state machine runs).
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

VISUALIZATION_URL = "https://lambda-power-tuning.show/"
DEFAULT_POWER_VALUES = (128, 256, 512, 1024, 1536, 3008)  # the tool's deploy-time default
ALL_POWER_STEP, ALL_POWER_FIRST, ALL_POWER_LAST = 64, 128, 3008
STRATEGIES = ("cost", "speed", "balanced")
DEFAULT_BALANCED_WEIGHT = 0.5
DEFAULT_DISCARD = 0.2
MAX_DISCARD = 0.4
# Lambda's memory range: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
MIN_POWER, MAX_POWER = 128, 10_240
MB_PER_GB = 1024
MS_PER_S = 1000
_BILLED_TEXT = re.compile(r"\tBilled Duration: (\d+) ms")


class TuningInputError(ValueError):
    """The tuning input is not what Power Tuning accepts; the message says why."""


@dataclass(frozen=True)
class TuningInput:
    power_values: tuple[int, ...]
    num: int
    payloads: tuple[bytes, ...]  # one per invocation, in order
    parallel: bool
    strategy: str
    balanced_weight: float
    discard_top_bottom: float
    only_cold_starts: bool
    raw: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.raw.items() if k != "lambdaARN"}


def parse_input(raw: Mapping[str, Any]) -> TuningInput:
    powers = raw.get("powerValues", list(DEFAULT_POWER_VALUES))
    if powers == "ALL":
        powers = list(range(ALL_POWER_FIRST, ALL_POWER_LAST + 1, ALL_POWER_STEP))
    if isinstance(powers, str):
        powers = [p for p in re.split(r"[,\s]+", powers) if p]
    try:
        values = tuple(int(p) for p in powers)
    except (TypeError, ValueError):
        raise TuningInputError(f"powerValues must be a list of numbers or \"ALL\", not {powers!r}") from None
    if not values or any(not MIN_POWER <= v <= MAX_POWER for v in values):
        raise TuningInputError(f"powerValues must be between {MIN_POWER} and {MAX_POWER} MB: {list(values)}")
    try:
        num = int(raw["num"])
    except (KeyError, TypeError, ValueError):
        raise TuningInputError("num (invocations per power value) is required, a positive integer") from None
    if num < 1:
        raise TuningInputError("num must be at least 1")
    strategy = raw.get("strategy") or "cost"
    if strategy not in STRATEGIES:
        raise TuningInputError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    weight = raw.get("balancedWeight", DEFAULT_BALANCED_WEIGHT)
    only_cold = bool(raw.get("onlyColdStarts"))
    discard = raw.get("discardTopBottom", 0.0 if only_cold else DEFAULT_DISCARD)
    try:
        weight = min(max(float(weight), 0.0), 1.0)
        discard = min(max(float(discard), 0.0), MAX_DISCARD)
    except (TypeError, ValueError):
        raise TuningInputError("balancedWeight and discardTopBottom must be numbers") from None
    return TuningInput(tuple(sorted(set(values))), num, generate_payloads(num, raw.get("payload")),
                       bool(raw.get("parallelInvocation")), strategy, weight, discard, only_cold, dict(raw))


def _payload_bytes(payload: Any) -> bytes:
    """A JSON string is sent as it is; anything else as its JSON text (as the tool does)."""
    if payload is None:
        return b""
    if isinstance(payload, str):
        try:
            json.loads(payload)
            return payload.encode()
        except ValueError:
            pass
    return json.dumps(payload).encode()


def _is_weighted(payload: Any) -> bool:
    return isinstance(payload, list) and bool(payload) and all(
        isinstance(p, dict) and p.get("weight") and "payload" in p for p in payload)


def generate_payloads(num: int, payload: Any) -> tuple[bytes, ...]:
    """`num` payloads: the same one, or weighted payloads in proportion to their weights
    (each floor(weight x num / total), the last one filling the rest)."""
    if not _is_weighted(payload):
        return (_payload_bytes(payload),) * num
    if num < len(payload):
        raise TuningInputError(f"{len(payload)} weighted payloads need num >= {len(payload)}")
    total = sum(float(p["weight"]) for p in payload)
    out: list[bytes] = []
    for index, entry in enumerate(payload):
        count = num - len(out) if index == len(payload) - 1 else math.floor(float(entry["weight"]) * num / total)
        if count < 1:
            raise TuningInputError("a payload weight is too small for num")
        out.extend([_payload_bytes(entry["payload"])] * count)
    return tuple(out)


def billed_duration(log: str) -> float:
    """The REPORT line's Billed Duration (ms) of a log tail: text, or the JSON log format's
    platform.report record (billedDurationMs); 0 when there is none (as the tool)."""
    if log.startswith("{"):
        for line in log.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("type") == "platform.report":
                return float(record["record"]["metrics"]["billedDurationMs"])
        return 0.0
    match = _BILLED_TEXT.search(log)
    return float(match.group(1)) if match else 0.0


def average_duration(durations: Sequence[float], discard: float) -> float:
    """Trimmed mean: int(n x discard) of the fastest and of the slowest are left out."""
    if not durations:
        return 0.0
    cut = int(len(durations) * discard)
    kept = sorted(durations)[cut: len(durations) - cut]
    return sum(kept) / len(kept)


def cost_per_ms(gb_second_price: float, power: int) -> float:
    return gb_second_price * power / MB_PER_GB / MS_PER_S


def price(min_cost: float, min_power: int, power: int, duration: float) -> float:
    """The tool's price of one invocation: ceil(duration) ms at `power`, from the price of
    1 ms at the smallest power."""
    return math.ceil(duration) * min_cost * (power / min_power)


@dataclass(frozen=True)
class PowerStats:
    value: int
    average_duration: float
    average_price: float
    total_cost: float

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "averagePrice": self.average_price, "averageDuration": self.average_duration,
                "totalCost": self.total_cost}


def power_stats(power: int, durations: Sequence[float], discard: float, gb_second_price: float,
                min_power: int = MIN_POWER) -> PowerStats:
    min_cost = cost_per_ms(gb_second_price, min_power)
    average = average_duration(durations, discard)
    return PowerStats(power, average, price(min_cost, min_power, power, average),
                      sum(price(min_cost, min_power, power, d) for d in durations))


def choose(stats: Sequence[PowerStats], strategy: str, weight: float = DEFAULT_BALANCED_WEIGHT) -> PowerStats:
    """cost: the cheapest (the faster on a tie); speed: the fastest (the cheaper on a tie);
    balanced: the least weight x cost/max cost + (1 - weight) x duration/max duration."""
    usable = [s for s in stats if s.average_duration]
    if not usable:
        raise TuningInputError("no power value produced a duration")
    if strategy == "cost":
        return min(usable, key=lambda s: (s.average_price, s.average_duration))
    if strategy == "speed":
        return min(usable, key=lambda s: (s.average_duration, s.average_price))
    max_cost = max(s.average_price for s in usable) or 1.0
    max_duration = max(s.average_duration for s in usable) or 1.0
    return min(usable, key=lambda s: weight * s.average_price / max_cost + (1 - weight) * s.average_duration / max_duration)


def _packed(fmt: str, values: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


def visualization_url(stats: Sequence[PowerStats], base: str = VISUALIZATION_URL) -> str:
    ordered = sorted(stats, key=lambda s: s.value)
    return base + "#" + ";".join((
        _packed("h", [s.value for s in ordered]),
        _packed("f", [s.average_duration for s in ordered]),
        _packed("f", [s.average_price for s in ordered]),
    ))


def output(stats: Sequence[PowerStats], strategy: str, weight: float, base_url: str = VISUALIZATION_URL) -> dict[str, Any]:
    """The state machine's `results`: the chosen power, its average cost and duration, the
    run's Lambda cost, the visualisation URL and every power's statistics."""
    usable = [s for s in stats if s.average_duration]
    best = choose(usable, strategy, weight)
    return {
        "power": best.value,
        "cost": best.average_price,
        "duration": best.average_duration,
        "stateMachine": {"executionCost": 0.0, "lambdaCost": sum(s.total_cost for s in usable),
                         "visualization": visualization_url(usable, base_url)},
        "stats": [{"value": s.value, "averagePrice": s.average_price, "averageDuration": s.average_duration}
                  for s in sorted(usable, key=lambda s: s.value)],
    }
