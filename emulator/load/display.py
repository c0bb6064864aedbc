"""The live view of a run: phase, offered against achieved rate, latency, throttles by
reason, errors, and what the emulator says (its throttles and concurrency).

On a terminal it is a `rich` table redrawn in place; anywhere else (a pipe, CI's log) one
plain line per second.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from emulator.load.series import SecondStats


def _ms(value: float) -> str:
    if value != value:  # NaN: no answers in that second
        return "-"
    return f"{value:.1f}ms" if value < 1000 else f"{value / 1000:.2f}s"


def _counts(counts: Mapping[str, int], limit: int = 3) -> str:
    if not counts:
        return "0"
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{name}: {count}" for name, count in items[:limit])
    return f"{sum(counts.values())} ({text}{', ...' if len(items) > limit else ''})"


class Frame:
    """One refresh of the display."""

    def __init__(self, *, elapsed: float, duration: float, phase: str, planned_rate: float, last: SecondStats,
                 totals: SecondStats, emulator: Mapping[str, Any] | None) -> None:
        self.elapsed = elapsed
        self.duration = duration
        self.phase = phase
        self.planned_rate = planned_rate
        self.last = last
        self.totals = totals
        self.emulator = emulator

    def emulator_line(self) -> str:
        if not self.emulator:
            return ""
        parts = []
        for name, counters in sorted((self.emulator.get("functions") or {}).items()):
            throttles = counters.get("Throttles", 0)
            if counters.get("Invocations") or throttles:
                parts.append(f"{name}: conc {counters.get('ConcurrentExecutions', 0)} (peak {counters.get('ConcurrentExecutionsPeak', 0)}), "
                             f"throttles {throttles}")
        pending = (self.emulator.get("async_queue") or {}).get("pending")
        if pending:
            parts.append(f"async queue {pending}")
        return "; ".join(parts)


class PlainDisplay:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last_second = -1

    def start(self, title: str) -> None:
        print(title, file=self.stream, flush=True)

    def update(self, frame: Frame) -> None:
        second = int(frame.elapsed)
        if second == self._last_second:
            return
        self._last_second = second
        last, totals = frame.last, frame.totals
        line = (f"[{frame.elapsed:6.1f}s] {frame.phase}: offered {last.offered}/s (plan {frame.planned_rate:.0f}/s), "
                f"sent {last.sent}/s, answered {last.responses}/s, p50 {_ms(last.latency.percentile(50))}, "
                f"p99 {_ms(last.latency.percentile(99))} | throttled {_counts(totals.throttles)} | errors {_counts(totals.errors)}"
                f" | dropped {totals.dropped}")
        emulator = frame.emulator_line()
        print(line + (f" | emulator: {emulator}" if emulator else ""), file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichDisplay:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self._live = Live(console=self.console, refresh_per_second=4, transient=False)

    def start(self, title: str) -> None:
        self.console.print(title)
        self._live.start()

    def update(self, frame: Frame) -> None:
        from rich.table import Table

        last, totals = frame.last, frame.totals
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        progress = min(1.0, frame.elapsed / frame.duration) if frame.duration else 1.0
        bar = "█" * int(progress * 30) + "░" * (30 - int(progress * 30))
        table.add_row("phase", f"{frame.phase}   {bar} {frame.elapsed:.0f}/{frame.duration:.0f} s")
        table.add_row("rate", f"offered {last.offered}/s (plan {frame.planned_rate:.0f}/s), sent {last.sent}/s, "
                              f"answered {last.responses}/s")
        table.add_row("latency", f"p50 {_ms(last.latency.percentile(50))}  p99 {_ms(last.latency.percentile(99))}  "
                                 f"(run p99 {_ms(totals.latency.percentile(99))}, send lag p99 {_ms(last.lag.percentile(99))})")
        table.add_row("requests", f"{totals.sent} sent, {totals.ok} ok, {totals.dropped} dropped (max in flight)")
        table.add_row("throttled", _counts(totals.throttles))
        table.add_row("errors", _counts(totals.errors))
        emulator = frame.emulator_line()
        if emulator:
            table.add_row("emulator", emulator)
        self._live.update(table)

    def stop(self) -> None:
        self._live.stop()


def make_display(enabled: bool, stream: IO[str] | None = None) -> PlainDisplay | RichDisplay | None:
    if not enabled:
        return None
    target = stream or sys.stdout
    if stream is None and target.isatty():
        try:
            return RichDisplay()
        except ImportError:
            pass
    return PlainDisplay(target)
