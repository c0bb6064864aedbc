"""Which code folders changed, learnt by change notification (watchfiles: inotify on
Linux) instead of walking every folder every second.

An idle emulator then costs nothing however big the folders are (walking `/usr` once a
second cost ~0.5 CPU-s per second). Changes are debounced: an editor's save, or a
`git checkout`, arrives as one notice. The watching runs in a thread of its own (setting
up the watches walks the tree once, which must not hold up the event loop) and hands the
changed folders to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

import watchfiles

from emulator.functions.code_tree import NOT_CODE_DIRS, NOT_CODE_SUFFIXES

log = logging.getLogger("emulator.functions.code_watch")

# Changes are gathered for at most this long and handed over as one notice (watchfiles'
# default is 1.6 s: a reload should feel immediate).
DEBOUNCE_MS = 300
# A notice goes out once no new change came for this long; the watching thread also
# looks at its stop flag this often while nothing changes.
STEP_MS = 100
STOP_WAIT_S = 2.0


class _CodeFilter(watchfiles.DefaultFilter):
    """Ignore what the code fingerprint ignores (caches, tooling, logs)."""

    def __init__(self) -> None:
        super().__init__(ignore_dirs=tuple(NOT_CODE_DIRS))

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return not path.endswith(NOT_CODE_SUFFIXES) and super().__call__(change, path)


class CodeWatcher:
    """Calls `on_change(folders)` on the event loop when files below `folders` change."""

    def __init__(self, folders: Iterable[Path], on_change: Callable[[set[Path]], None]) -> None:
        self.folders = sorted({Path(os.path.abspath(folder)) for folder in folders})
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if not self.folders:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="emulator-code-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it looks every STEP_MS) and wait for it, bounded."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def _run(self) -> None:
        try:
            self._watch(force_polling=None)
        except Exception as exc:  # e.g. the inotify watch limit: poll instead, and say so
            if self._stop.is_set():
                return
            log.warning("cannot watch the code folders by notification (%s); polling them instead, which costs "
                        "CPU on large folders (raising fs.inotify.max_user_watches avoids it)", exc)
            try:
                self._watch(force_polling=True)
            except Exception as again:
                log.warning("code changes are not picked up (restart the emulator after edits): %s", again)

    def _watch(self, force_polling: bool | None) -> None:
        changes_seen = watchfiles.watch(
            *self.folders,
            watch_filter=_CodeFilter(),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=self._stop,
            force_polling=force_polling,
            ignore_permission_denied=True,
        )
        for changes in changes_seen:
            changed = {folder for folder in self.folders for _, path in changes if _below(path, folder)}
            if changed and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._on_change, changed)
                except RuntimeError:  # the loop is closed: the emulator has stopped
                    return


def _below(path: str, folder: Path) -> bool:
    text = str(folder)
    return path == text or path.startswith(text.rstrip(os.sep) + os.sep)
