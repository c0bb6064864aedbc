"""`emulator report`: report.html, report.json and the CSV files on demand, from a running
emulator's timeline over a window (`--since`), or again from a saved report.json
(`--from-json`, e.g. after another tool added its sections to it)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from emulator.load import emulator_link, html_report, thresholds
from emulator.load.report import SCHEMA, ReportMetrics, add_outcomes, write_csvs
from emulator.load.runner import write_files
from emulator.load.schedule import ScheduleError, parse_duration

EXIT_USAGE = 2
EXIT_FAILED = 1
DEFAULT_OUT = "emulator-report"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    report = commands.add_parser(
        "report",
        help="write report.html (+ report.json, CSVs) from a running emulator's timeline",
        description="A self-contained HTML report of what a running emulator recorded over a window: concurrency "
        "against limits, throttles by reason, latency percentiles, async retries and drops, pollers, queues, DLQ arrivals "
        "and why (docs/report-html.md).",
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--since", help="start of the window: epoch seconds of the emulator's clock, or a duration "
                        "before now (10m, 90s, -600)")
    source.add_argument("--from-json", type=Path, help="render report.html from this report.json instead")
    report.add_argument("--until", help="end of the window (epoch seconds, or a duration before now); default now")
    report.add_argument("--endpoint", default=None, help="emulator URL (default $AWS_ENDPOINT_URL or http://127.0.0.1:3001)")
    report.add_argument("--threshold", action="append", default=[], help="a pass/fail criterion on the timeline, e.g. "
                        "'count(DLQ) == 0' (repeatable); exit 99 when one fails")
    report.add_argument("--out", type=Path, default=None, help=f"folder for the files (default ./{DEFAULT_OUT}; "
                        "with --from-json: the folder of that file)")
    return report


def window_edge(raw: str, now: int) -> int:
    """Epoch seconds, or a duration before now ("10m", "90s", "600" ... "-600")."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return now - int(parse_duration(text.lstrip("-"), "--since/--until"))
    if value < 0:
        return now + int(value)
    # A plain number that could not be an epoch (before 2001) is a duration, as "600" in "--since 600".
    return int(value) if value >= 1e9 else now - int(value)


def run_command(args: argparse.Namespace, default_endpoint: str) -> int:
    if args.from_json is not None:
        return _from_json(args.from_json, args.out)
    endpoint = (args.endpoint or default_endpoint).rstrip("/")
    for text in args.threshold:
        try:
            thresholds.parse(text)
        except thresholds.ThresholdError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        now = emulator_link.emulator_now(endpoint)
        if now is None:
            print(f"error: the emulator at {endpoint} has no timeline (--timeline false)", file=sys.stderr)
            return EXIT_FAILED
        start = window_edge(args.since, now)
        end = window_edge(args.until, now) if args.until else now
        if end < start:
            print(f"error: --until ({end}) is before --since ({start})", file=sys.stderr)
            return EXIT_USAGE
        report = build(endpoint, start, end)
    except ScheduleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except emulator_link.EmulatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    outcomes = [thresholds.evaluate(thresholds.parse(text), ReportMetrics(report)) for text in args.threshold]
    add_outcomes(report, outcomes)
    out_dir = args.out or Path.cwd() / DEFAULT_OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    write_files(report, out_dir)
    for line in html_report.dlq_lines(report):
        print(line)
    for outcome in outcomes:
        print(("  PASS " if outcome.ok else "  FAIL ") + outcome.message)
    print(f"report: {out_dir / 'report.html'} ({report['verdict']}; {end - start + 1} s from {start})")
    return 0 if all(o.ok for o in outcomes) else 99


def build(endpoint: str, start: int, end: int) -> dict[str, Any]:
    """report.json's shape without the generator's side (`client` null): the timeline over
    [start, end] and the emulator's counters now."""
    timeline = emulator_link.timeline(endpoint, start, end + 1)
    if timeline is None:
        raise emulator_link.EmulatorUnavailable(f"the emulator at {endpoint} did not give its timeline")
    wall = time.time()
    return {
        "schema": SCHEMA,
        "scenario": None,
        "run": {"started_at": float(start), "ended_at": float(end + 1), "duration_s": float(end + 1 - start),
                "endpoint": endpoint, "emulator_started": False, "workers": 0, "target": None,
                "emulated_start": start, "emulated_end": end, "written_at": wall},
        "client": None,
        "emulator": {"timeline": timeline, "metrics": emulator_link.metrics(endpoint)},
        "thresholds": [],
        "verdict": "no thresholds",
    }


def _from_json(path: Path, out: Path | None) -> int:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        print(f"error: {path} is not a report.json ({SCHEMA})", file=sys.stderr)
        return EXIT_USAGE
    out_dir = out or path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if out is not None and out.resolve() != path.parent.resolve():
        (out_dir / "report.json").write_text(path.read_text())
        write_csvs(report, out_dir)
    (out_dir / "report.html").write_text(html_report.render(report), encoding="utf-8")
    print(f"report: {out_dir / 'report.html'}")
    return 0
