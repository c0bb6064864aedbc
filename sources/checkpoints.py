"""Where each stream mapping's shards resume: mapping UUID -> shard id -> position.

A stream poller (sources/kinesis_poller.py) advances a shard's checkpoint as records are
read and finished; a restarted poller resumes from it, so an Update or a Disable/Enable
goes on where the mapping stopped, as AWS's does. The pollers run in the poller process,
which can die; the copy that outlives it is the control plane's: the process's copy tells
every advance (`on_advance`, a note over the channel), and a new process is handed the
control plane's copy when each mapping starts again (sources/poller_process.py). Without
that, a restarted TRIM_HORIZON mapping would process its stream again and a LATEST one
would skip what arrived meanwhile.

Positions are opaque here (sources/kinesis_batching.ShardPosition for Kinesis).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _ignore(uuid: str, shard_id: str, position: Any) -> None:
    pass


class StreamCheckpoints:
    def __init__(self, on_advance: Callable[[str, str, Any], None] = _ignore) -> None:
        self._on_advance = on_advance
        self._positions: dict[str, dict[str, Any]] = {}

    def of(self, uuid: str) -> dict[str, Any]:
        """A copy of the mapping's positions by shard."""
        return dict(self._positions.get(uuid, {}))

    def position(self, uuid: str, shard_id: str) -> Any | None:
        return self._positions.get(uuid, {}).get(shard_id)

    def advance(self, uuid: str, shard_id: str, position: Any) -> None:
        """The shard resumes from `position` from now on (told on only when it changed)."""
        shards = self._positions.setdefault(uuid, {})
        if shards.get(shard_id) != position:
            shards[shard_id] = position
            self._on_advance(uuid, shard_id, position)

    def replace(self, uuid: str, positions: Mapping[str, Any]) -> None:
        """The mapping's positions as the control plane holds them (a poller starts)."""
        self._positions[uuid] = dict(positions)

    def forget(self, uuid: str) -> None:
        self._positions.pop(uuid, None)
