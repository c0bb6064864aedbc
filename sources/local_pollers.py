"""Pollers on the current event loop: the `PollerHost` inside the poller process
(sources/poller_host.py), and the one unit tests use with fake ports."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from emulator.sources.base import PollerContext, SourcePoller, poller_factory
from emulator.sources.mapping import EventSourceMapping


class NoPollerForSource(RuntimeError):
    """No poller module exists for this kind of event source."""


class LocalPollers:
    def __init__(self, context: PollerContext) -> None:
        self.context = context
        self._pollers: dict[str, SourcePoller] = {}

    async def start_poller(self, mapping: EventSourceMapping, checkpoints: Mapping[str, Any] | None = None) -> None:
        if mapping.uuid in self._pollers:
            raise RuntimeError(f"event source mapping {mapping.uuid} already has a poller")
        factory = poller_factory(mapping.kind)
        if factory is None:
            raise NoPollerForSource(f"no {mapping.kind} poller exists")
        if checkpoints is not None:
            self.context.checkpoints.replace(mapping.uuid, checkpoints)
        poller = factory(self.context, mapping)
        await poller.start()
        self._pollers[mapping.uuid] = poller

    async def stop_poller(self, uuid: str) -> dict[str, Any]:
        poller = self._pollers.pop(uuid, None)
        if poller is None:
            return {}
        await poller.stop()
        return poller.snapshot()

    async def snapshots(self) -> dict[str, dict[str, Any]]:
        return {uuid: poller.snapshot() for uuid, poller in self._pollers.items()}

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop_poller(uuid) for uuid in list(self._pollers)), return_exceptions=True)
