"""Stop moto from keeping every instance of a high-volume model alive (moto child only).

moto 5.2's `BaseModel.__new__` appends every instance it creates to its class's
`instances_tracked` list (moto/core/common_models.py), for the dashboard's
`/moto-api/data.json`. Nothing ever removes an entry (only `/moto-api/reset` empties the
lists), so every SQS message ever sent, and every copy moto makes of one to answer a
ReceiveMessage, stays in memory for the life of the server: ~1.8-2.7 KB per message
(measured: 78 -> 150 MB after 40,000 messages sent, received and deleted). The fast SQS
model keeps the queue's messages in its own store; the dashboard merely stops listing them.
"""

from __future__ import annotations

from typing import Any


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    # What BaseModel.__new__ does, without the append; __init__ still receives the arguments.
    return object.__new__(cls)


def stop_tracking(model: type) -> None:
    """New instances of `model` (a direct subclass of moto's BaseModel) are no longer
    recorded; those recorded so far are dropped."""
    if model.__new__ is not _untracked_new:
        model.__new__ = staticmethod(_untracked_new)  # type: ignore[assignment]
    model.instances_tracked = []  # type: ignore[attr-defined]


def tracked_count(model: type) -> int:
    """How many instances of `model` moto's dashboard holds."""
    return len(getattr(model, "instances_tracked", ()))
