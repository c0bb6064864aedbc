"""`emulator load`: its flags, and the run they describe (a scenario file, flags over it, or
flags alone)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emulator.advice.cost import PriceTableError, load_prices
from emulator.load import html_report, insights, runner
from emulator.load.emulator_link import EmulatorUnavailable
from emulator.load.scenario import Scenario, ScenarioError, build, from_file, merge
from emulator.load.targets import TargetError
from emulator.load.workers import WorkerFailed

EXIT_USAGE = 2
DEFAULT_OUT = "load-report"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    load = commands.add_parser(
        "load",
        help="offer load to a running emulator (or one it starts) and report what happened",
        description="Open-loop load: requests leave when due whatever the answers. A scenario file (YAML) describes "
        "the target, phases and thresholds (docs/load-testing.md); flags override it, or replace it.",
    )
    load.add_argument("scenario", nargs="?", type=Path, help="scenario YAML file")
    where = load.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="URL of a running emulator")
    where.add_argument("--template", type=Path, help="SAM template: start an emulator with it for the run")
    target = load.add_mutually_exclusive_group()
    for kind, text in (("function", "invoke this function"), ("queue", "SendMessageBatch to this SQS queue"),
                       ("stream", "PutRecords to this Kinesis stream"), ("topic", "Publish to this SNS topic (name or ARN)"),
                       ("url", "send HTTP requests to this URL")):
        target.add_argument(f"--{kind}", help=text)
    load.add_argument("--invocation", choices=("RequestResponse", "Event"), help="function targets: synchronous or Event")
    load.add_argument("--batch", type=int, help="messages or records per SendMessageBatch / PutRecords call")
    load.add_argument("--method", help="url targets: HTTP method (default POST)")
    load.add_argument("--rate", type=float, help="requests per second (one phase; with --ramp-to: its start)")
    load.add_argument("--ramp-to", type=float, help="ramp linearly from --rate to this rate")
    load.add_argument("--duration", help="length of the phase given by --rate (30, 30s, 2m)")
    load.add_argument("--arrivals", choices=("uniform", "poisson"))
    load.add_argument("--seed", type=int)
    payload = load.add_mutually_exclusive_group()
    payload.add_argument("--payload", help="the JSON every request carries")
    payload.add_argument("--payload-file", help="a file: one payload per line (.jsonl), or the whole file")
    payload.add_argument("--payload-template", help="a template with {{sequence}}, {{uuid}}, {{random}}, {{time}} ...")
    payload.add_argument("--generator", help="module:function returning each payload (index, rng)")
    load.add_argument("--workers", type=int, help="generator processes (default 1)")
    load.add_argument("--max-in-flight", type=int, help="most requests awaiting an answer (default 1000)")
    load.add_argument("--timeout", help="a request without an answer after this long is an error (default 60s)")
    load.add_argument("--settle", help="after the last answer, watch the emulator up to this long (pollers, retries)")
    load.add_argument("--threshold", action="append", default=[], help="a pass/fail criterion, e.g. 'p99(Latency) < 200ms' (repeatable)")
    load.add_argument("--out", type=Path, default=None, help=f"folder for report.json and the CSV files (default ./{DEFAULT_OUT})")
    load.add_argument("--no-display", action="store_true", help="no live display")
    load.add_argument("--price-table", type=Path, default=None,
                      help="prices for the cost estimate (JSON, the shape of emulator/advice/prices.json)")
    return load


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    target: dict[str, Any] = {k: getattr(args, k) for k in ("function", "queue", "stream", "topic", "url", "invocation",
                                                             "batch", "method")}
    if args.payload is not None:
        try:
            target["payload"] = json.loads(args.payload)
        except ValueError as exc:
            raise ScenarioError(f"--payload is not JSON: {exc}") from None
    target["payload_file"] = args.payload_file
    target["template"] = args.payload_template
    target["generator"] = args.generator
    overrides: dict[str, Any] = {
        "target": {k: v for k, v in target.items() if v is not None},
        "arrivals": args.arrivals, "seed": args.seed, "workers": args.workers, "max_in_flight": args.max_in_flight,
        "timeout": args.timeout, "settle": args.settle,
    }
    if args.rate is not None:
        if args.duration is None:
            raise ScenarioError("--rate needs --duration")
        phase = {"kind": "ramp", "from": args.rate, "to": args.ramp_to} if args.ramp_to is not None else \
            {"kind": "constant", "rate": args.rate}
        overrides["phases"] = [{**phase, "duration": args.duration}]
    elif args.duration is not None or args.ramp_to is not None:
        raise ScenarioError("--duration and --ramp-to go with --rate")
    if args.scenario is not None:
        scenario = from_file(args.scenario, overrides)
    else:
        raw = merge({}, overrides)
        if not raw.get("target"):
            raise ScenarioError("give a scenario file, or a target flag (--function, --queue, --stream, --topic, --url) with --rate and --duration")
        scenario = build(raw, Path.cwd())
    if args.threshold:
        from dataclasses import replace

        from emulator.load import thresholds

        for text in args.threshold:
            try:
                thresholds.parse(text)
            except thresholds.ThresholdError as exc:
                raise ScenarioError(str(exc)) from None
        scenario = replace(scenario, thresholds=scenario.thresholds + tuple(args.threshold))
    return scenario


def run_command(args: argparse.Namespace) -> int:
    try:
        scenario = scenario_from_args(args)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = args.out or Path.cwd() / DEFAULT_OUT
    try:
        load_prices(args.price_table)  # a bad table fails now, not after the run
    except PriceTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = runner.run(scenario, out_dir=out_dir, endpoint=args.endpoint, template=args.template,
                            display=not args.no_display, price_table=args.price_table)
    except (EmulatorUnavailable, TargetError, WorkerFailed, PriceTableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return runner.EXIT_RUN_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(summary(result))
    return result.exit_code


def summary(result: runner.LoadResult) -> str:
    totals = result.report["client"]["totals"]
    latency = totals["latency_ms"]
    lines = [
        f"{totals['sent']} requests sent of {totals['offered']} offered ({totals['dropped']} dropped at max in flight): "
        f"{totals['ok']} ok, {totals['throttled']} throttled, {totals['errors']} errors",
    ]
    if latency.get("count"):
        lines.append(f"latency from due time: p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, max {latency['max']:.2f} ms")
    if totals["throttles_by_reason"]:
        lines.append("throttled by reason: " + ", ".join(f"{k} {v}" for k, v in totals["throttles_by_reason"].items()))
    if totals["errors_by_kind"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in totals["errors_by_kind"].items()))
    lines.extend(html_report.dlq_lines(result.report))
    for outcome in result.outcomes:
        lines.append(("  PASS " if outcome.ok else "  FAIL ") + outcome.message)
    if result.report.get("advice"):
        lines.append("limits advisor:")
    lines.extend(insights.lines(result.report))
    lines.append(f"report: {result.out_dir / 'report.html'}, {result.out_dir / 'report.json'} ({result.report['verdict']})")
    return "\n".join(lines)
