"""A load scenario: a small YAML file, or the same keys from `emulator load` flags.

    name: hello-ramp
    target: {function: hello, payload: {"name": "load"}}
    arrivals: poisson          # or uniform (default)
    seed: 7
    max_in_flight: 500
    timeout: 30s
    phases:
      - {kind: ramp, from: 10, to: 200, duration: 30s}
      - {kind: constant, rate: 200, duration: 1m}
    settle: 5s                 # keep watching the emulator after the last answer (pollers, retries)
    thresholds:
      - p99(Latency) < 500ms
      - rate(Throttles) < 1%
    emulator:                  # used when `emulator load` starts the emulator itself
      template: template.yaml
      options: {account_concurrency: 100, time_scale: 1}

docs/load-testing.md has every key. Validation is strict: an unknown key or a bad value
is a `ScenarioError` naming it, before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from emulator.load import thresholds as threshold_rules
from emulator.load.payloads import PayloadError, PayloadSpec, payload_spec
from emulator.load.schedule import ARRIVALS, Phase, Schedule, ScheduleError, parse_duration, phase_from_spec

DEFAULT_MAX_IN_FLIGHT = 1000
DEFAULT_TIMEOUT_S = 60.0
MAX_WORKERS = 64
_KEYS = {"name", "target", "arrivals", "seed", "max_in_flight", "timeout", "phases", "settle", "thresholds",
         "workers", "emulator", "region"}
_TARGET_KEYS = {"function", "queue", "stream", "topic", "url", "invocation", "qualifier", "batch", "message_groups",
                "partition_key", "method", "headers", "payload", "payload_file", "template", "generator"}


class ScenarioError(ValueError):
    """A scenario that cannot run; the message says what to fix."""


@dataclass(frozen=True)
class EmulatorSettings:
    template: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)  # `emulator up` options by name (time_scale: 60)


@dataclass(frozen=True)
class Scenario:
    name: str
    target: dict[str, Any]
    phases: tuple[Phase, ...]
    payload: PayloadSpec
    arrivals: str = "uniform"
    seed: int | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    timeout_s: float = DEFAULT_TIMEOUT_S
    settle_s: float = 0.0
    thresholds: tuple[str, ...] = ()
    workers: int = 1
    region: str = "us-east-1"
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    source: Path | None = None

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.phases)

    def describe(self) -> dict[str, Any]:
        """The scenario as it ran, for report.json."""
        return {
            "name": self.name, "target": {k: v for k, v in self.target.items() if k not in ("payload",)},
            "arrivals": self.arrivals, "seed": self.seed, "max_in_flight": self.max_in_flight,
            "timeout_s": self.timeout_s, "settle_s": self.settle_s, "workers": self.workers,
            "thresholds": list(self.thresholds), "source": str(self.source) if self.source else None,
            "phases": [{"name": p.name, "kind": p.kind, "duration_s": p.duration,
                        "segments": [{"duration_s": d, "rate_from": a, "rate_to": b} for d, a, b in p.segments]}
                       for p in self.phases],
        }


def load_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of keys (name, target, phases ...)")
    return raw


def build(raw: Mapping[str, Any], base_dir: Path, source: Path | None = None) -> Scenario:
    """A Scenario from parsed YAML (or flags shaped the same way)."""
    where = str(source) if source else "scenario"
    unknown = set(raw) - _KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_KEYS))})")
    target = raw.get("target")
    if not isinstance(target, Mapping):
        raise ScenarioError(f"{where}: 'target' is required: a mapping with one of function, queue, stream, topic, url")
    unknown = set(target) - _TARGET_KEYS
    if unknown:
        raise ScenarioError(f"{where}: target: unknown key(s) {', '.join(sorted(unknown))}")
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ScenarioError(f"{where}: 'phases' is required: a list of phases (kind, rate, duration ...)")
    try:
        phases = tuple(phase_from_spec(spec if isinstance(spec, Mapping) else {}, i) for i, spec in enumerate(phases_raw))
        Schedule(phases)
        payload = payload_spec(dict(target), base_dir)
        timeout = parse_duration(raw.get("timeout", DEFAULT_TIMEOUT_S), f"{where}: timeout")
        settle = 0.0 if raw.get("settle") in (None, 0, "0") else parse_duration(raw["settle"], f"{where}: settle")
    except (ScheduleError, PayloadError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    arrivals = str(raw.get("arrivals") or "uniform")
    if arrivals not in ARRIVALS:
        raise ScenarioError(f"{where}: arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    texts = raw.get("thresholds") or []
    if not isinstance(texts, list):
        raise ScenarioError(f"{where}: thresholds is a list of expressions")
    for text in texts:
        try:
            threshold_rules.parse(str(text))
        except threshold_rules.ThresholdError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    emulator_raw = raw.get("emulator") or {}
    if not isinstance(emulator_raw, Mapping) or set(emulator_raw) - {"template", "options"}:
        raise ScenarioError(f"{where}: emulator takes 'template' and 'options'")
    template = emulator_raw.get("template")
    options = emulator_raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise ScenarioError(f"{where}: emulator.options is a mapping of `emulator up` options")
    return Scenario(
        name=str(raw.get("name") or (source.stem if source else "load")),
        target=dict(target),
        phases=phases,
        payload=payload,
        arrivals=arrivals,
        seed=None if raw.get("seed") is None else _int(raw, "seed", where, minimum=0),
        max_in_flight=_int(raw, "max_in_flight", where, default=DEFAULT_MAX_IN_FLIGHT, minimum=1),
        timeout_s=timeout,
        settle_s=settle,
        thresholds=tuple(str(t) for t in texts),
        workers=_int(raw, "workers", where, default=1, minimum=1, maximum=MAX_WORKERS),
        region=str(raw.get("region") or "us-east-1"),
        emulator=EmulatorSettings((base_dir / str(template)).resolve() if template else None, dict(options)),
        source=source,
    )


def _int(raw: Mapping[str, Any], key: str, where: str, *, default: int | None = None, minimum: int = 0,
         maximum: int | None = None) -> int:
    value = raw.get(key, default)
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: {key} must be a whole number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ScenarioError(f"{where}: {key} must be {bound}, got {number}")
    return number


def from_file(path: Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    raw = load_file(path)
    return build(merge(raw, overrides or {}), path.parent, path)


def merge(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Flags over the file: `target` and `emulator` merge key by key, the rest replace."""
    out = dict(raw)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("target", "emulator") and isinstance(value, Mapping):
            base = dict(out.get(key) or {})
            if key == "target" and any(k in value for k in ("function", "queue", "stream", "topic", "url")):
                for kind in ("function", "queue", "stream", "topic", "url"):
                    base.pop(kind, None)
            if key == "target" and any(k in value for k in ("payload", "payload_file", "template", "generator")):
                for kind in ("payload", "payload_file", "template", "generator"):
                    base.pop(kind, None)
            base.update({k: v for k, v in value.items() if v is not None})
            out[key] = base
        else:
            out[key] = value
    return out


def with_workers(scenario: Scenario, workers: int) -> Scenario:
    return replace(scenario, workers=workers)
