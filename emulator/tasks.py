"""Background tasks with one owner, who tracks them and cancels them.

Each owner (the server, a poller, the mapping manager) keeps its tasks here: named,
tracked until they finish, failures handed to the owner's `on_error`, cancelled together.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine, Iterator

log = logging.getLogger("emulator.tasks")


class OwnedTasks:
    def __init__(self, owner: str, on_error: Callable[[BaseException], None]) -> None:
        self.owner = owner
        self._on_error = on_error
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.owner}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task %r failed", task.get_name(), exc_info=error)
            self._on_error(error)

    def __iter__(self) -> Iterator[asyncio.Task]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every task and wait until each has finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
