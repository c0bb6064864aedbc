"""The control plane's garbage-collector settings once it has started (emulator/cli.py)."""

from __future__ import annotations

import gc

from emulator.cli import GC_YOUNG_THRESHOLD, _tune_gc


def test_startup_objects_are_frozen_and_young_objects_collected_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert gc.get_freeze_count() > 0
        cycle: list = []
        cycle.append(cycle)
        alive = len(gc.get_objects())
        del cycle
        assert gc.collect() >= 1  # cycles made after startup are still collected
        assert len(gc.get_objects()) < alive
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
