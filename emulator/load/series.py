"""The generator's own figures, per second of the run: what was offered, sent, dropped, and
what came back (latency, throttles by reason, errors by kind).

Offered, sent and dropped count in the second a request was *due*; responses, latency and
outcomes in the second the response *arrived* (as k6 and CloudWatch count them). Latency
runs from the time a request was due, not from when it was sent, so a generator or a
connection that falls behind shows up as latency instead of hiding it ("coordinated
omission"). Each worker process keeps its seconds here and hands them over as deltas
(`drain`), which the parent adds up (`merge`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulator.telemetry.histogram import Distribution

OK, THROTTLED, ERROR = "ok", "throttled", "error"


class SecondStats:
    __slots__ = ("offered", "sent", "dropped", "responses", "ok", "throttles", "errors", "latency", "lag")

    def __init__(self) -> None:
        self.offered = 0
        self.sent = 0
        self.dropped = 0  # due while max_in_flight requests were outstanding: never sent
        self.responses = 0
        self.ok = 0
        self.throttles: dict[str, int] = {}  # by Reason (or error code)
        self.errors: dict[str, int] = {}  # by kind: function error type, HTTP status, Timeout ...
        self.latency = Distribution()  # ms, from the due time to the response
        self.lag = Distribution()  # ms, from the due time to the send: the generator's own delay

    def to_json(self) -> dict[str, Any]:
        return {"offered": self.offered, "sent": self.sent, "dropped": self.dropped, "responses": self.responses,
                "ok": self.ok, "throttles": dict(self.throttles), "errors": dict(self.errors),
                "latency": self.latency.to_json(), "lag": self.lag.to_json()}

    def add_json(self, raw: Mapping[str, Any]) -> None:
        for name in ("offered", "sent", "dropped", "responses", "ok"):
            setattr(self, name, getattr(self, name) + int(raw.get(name) or 0))
        for field in ("throttles", "errors"):
            target = getattr(self, field)
            for key, count in (raw.get(field) or {}).items():
                target[key] = target.get(key, 0) + int(count)
        self.latency.merge(Distribution.from_json(raw.get("latency") or {}))
        self.lag.merge(Distribution.from_json(raw.get("lag") or {}))


class ClientSeries:
    """Seconds of the run (0, 1, 2 ... from its start) -> SecondStats."""

    def __init__(self) -> None:
        self.seconds: dict[int, SecondStats] = {}
        self.running = SecondStats()  # everything merged so far (the parent's live display)

    def at(self, second: int) -> SecondStats:
        stats = self.seconds.get(second)
        if stats is None:
            stats = self.seconds[second] = SecondStats()
        return stats

    def drain(self) -> dict[str, Any]:
        """Everything recorded since the last drain, as JSON-able deltas; then forget it."""
        out = {str(second): stats.to_json() for second, stats in self.seconds.items()}
        self.seconds = {}
        return out

    def merge(self, deltas: Mapping[str, Mapping[str, Any]]) -> None:
        for second, raw in deltas.items():
            self.at(int(second)).add_json(raw)
            self.running.add_json(raw)

    def totals(self) -> SecondStats:
        whole = SecondStats()
        for stats in self.seconds.values():
            whole.add_json(stats.to_json())
        return whole

    def window(self, seconds: Iterable[int]) -> SecondStats:
        part = SecondStats()
        for second in seconds:
            stats = self.seconds.get(second)
            if stats is not None:
                part.add_json(stats.to_json())
        return part
