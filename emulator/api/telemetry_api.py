"""Thin handlers for the emulator's figures: `/_emulator/metrics` (JSON, or Prometheus text
when the Accept header asks for it), `/metrics` (Prometheus text) and `/_emulator/timeline`
(the per-second timeline as JSON: docs/timeline.md)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.api.routing import json_response
from emulator.errors import InvalidParameterValue
from emulator.telemetry.prometheus import PrometheusExporter, wants_prometheus
from emulator.telemetry.timeline import Timeline


class TelemetryApi:
    def __init__(self, snapshot: Callable[[], Awaitable[dict[str, Any]]], timeline: Timeline | None) -> None:
        self.snapshot = snapshot
        self.timeline = timeline
        self.exporter = PrometheusExporter(timeline)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_emulator/metrics", self.metrics),
            web.get("/metrics", self.prometheus),
            web.get("/_emulator/timeline", self.export),
        ]

    async def metrics(self, request: web.Request) -> web.Response:
        text, openmetrics = wants_prometheus(request.headers.get("Accept", ""))
        if text:
            return self._prometheus(await self.snapshot(), openmetrics)
        return json_response(await self.snapshot())

    async def prometheus(self, request: web.Request) -> web.Response:
        _, openmetrics = wants_prometheus(request.headers.get("Accept", ""))
        return self._prometheus(await self.snapshot(), openmetrics)

    def _prometheus(self, snapshot: dict[str, Any], openmetrics: bool) -> web.Response:
        body, content_type = self.exporter.render(snapshot, openmetrics)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def export(self, request: web.Request) -> web.Response:
        """?since=EPOCH (or -SECONDS: that long before now) &until=EPOCH: seconds in [since, until)."""
        if self.timeline is None:
            raise InvalidParameterValue("The timeline is off (--timeline false).")
        now = self.timeline.now()
        since = parse_time(request.query.get("since"), now, -math.inf)
        until = parse_time(request.query.get("until"), now, math.inf)
        body = self.timeline.export(since, until)
        body["now"] = now
        return json_response(body)


def parse_time(raw: str | None, now: int, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameterValue(f"Expected epoch seconds (or -N for N seconds ago), got {raw!r}.") from None
    if not math.isfinite(value):
        raise InvalidParameterValue(f"Expected a finite time, got {raw!r}.")
    return now + value if value < 0 else value
