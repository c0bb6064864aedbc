"""Thin handlers of the live dashboard (docs/dashboard.md): the page and its static files
(emulator/web), and the timeline shaped into panels (emulator/telemetry/panels.py) for the
seconds the page has not seen yet."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from emulator.api.routing import json_response
from emulator.api.telemetry_api import parse_time
from emulator.errors import InvalidParameterValue, ResourceNotFound
from emulator.telemetry import panels
from emulator.telemetry.timeline import Timeline
from emulator.web import ASSETS, asset

# The page asks for the last N seconds at first: at most the longest window it offers.
MAX_WINDOW_S = 3600
# One answer covers at most this many seconds: a page filling a long window asks again at
# once for the rest, so no single request holds the event loop long (~50 ms for 120 s of
# 50 series; docs/benchmarks.md, benchmark 12).
MAX_SLICE_S = 120


class DashboardApi:
    def __init__(self, timeline: Timeline | None, mappings: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self.timeline = timeline
        self.mappings = mappings  # UUID -> {"FunctionArn", "EventSourceArn"}: names the mapping panels

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_emulator/dashboard", self.page),
            web.get("/_emulator/dashboard/static/{name}", self.static),
            web.get("/_emulator/dashboard/panels", self.panels),
        ]

    async def page(self, request: web.Request) -> web.Response:
        return self._asset("dashboard.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "dashboard.html":
            raise ResourceNotFound(f"No such dashboard file: {name}")
        return self._asset(name)

    def _asset(self, name: str) -> web.Response:
        # Files change only with the installed package: a browser may keep them a while.
        cache = "no-cache" if name == "dashboard.html" else "max-age=300"
        return web.Response(body=asset(name), headers={"Content-Type": ASSETS[name], "Cache-Control": cache})

    async def panels(self, request: web.Request) -> web.Response:
        """?since=EPOCH or -SECONDS: the panels of [since, now], now the live second, at most
        MAX_SLICE_S seconds of it (the answer's `end` then lies before `now + 1`)."""
        if self.timeline is None:
            raise InvalidParameterValue("The timeline is off (--timeline false): the dashboard has nothing to show.")
        now = self.timeline.now()
        since = parse_time(request.query.get("since"), now, now - 300)
        since = min(max(math.floor(since), now - MAX_WINDOW_S), now)
        until = min(now + 1, since + MAX_SLICE_S)
        export = self.timeline.export(since, until)
        body = panels.build(export, start=since, end=until, mappings=self.mappings())
        body["now"] = now
        return json_response(body)
