"""Result rows, percentiles and the table `run.py` prints (plain text or Markdown)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

MET, MISSED, INFO = "met", "MISSED", ""


@dataclass
class Row:
    bench: str  # "1 warm latency", ...
    metric: str
    ours: str
    baseline: str = "-"
    target: str = "-"
    peers: str = "-"
    verdict: str = INFO

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when empty)."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def verdict(value: float, limit: float, *, at_least: bool = False) -> str:
    if math.isnan(value):
        return MISSED
    return MET if (value >= limit if at_least else value <= limit) else MISSED


def ms(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f} ms"


COLUMNS = ("bench", "metric", "ours", "baseline", "target", "peers", "verdict")
HEADINGS = ("benchmark", "metric", "ours", "echo baseline", "target", "peers", "")


def plain_table(rows: Sequence[Row]) -> str:
    cells = [HEADINGS] + [tuple(getattr(row, c) for c in COLUMNS) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    out = []
    for number, line in enumerate(cells):
        out.append("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def markdown_table(rows: Sequence[Row]) -> str:
    out = ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
    for row in rows:
        out.append("| " + " | ".join(getattr(row, c).replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(out)


def run_alone(run: Callable[[Any], Sequence[Row]], description: str) -> None:
    """`python bench/<benchmark>.py [--quick]`: one benchmark by itself, its rows as a table."""
    import argparse

    from settings import FULL, QUICK

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    print(plain_table(run(QUICK if arguments.quick else FULL)))
