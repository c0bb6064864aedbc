"""The limits advisor's findings and the cost estimate of a run, added to report.json
(`advice`, `cost`: docs/report-json.md). The app's settings come from the emulator
(`GET /_emulator/app`), what happened from the report's timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from emulator.advice import cost as costs
from emulator.advice.facts import AppFacts, from_json
from emulator.advice.observed import Observed, from_timeline
from emulator.advice.rules import Finding, advise, check_settings


def facts_of(raw: Mapping[str, Any] | None) -> AppFacts | None:
    return None if raw is None else from_json(raw)


def before(facts: AppFacts | None) -> list[Finding]:
    return [] if facts is None else check_settings(facts)


def observed_of(report: Mapping[str, Any]) -> Observed | None:
    emulator = report.get("emulator") or {}
    timeline = emulator.get("timeline")
    if not timeline:
        return None
    run = report.get("run") or {}
    start, end = run.get("emulated_start"), run.get("emulated_end")
    seconds = float(max(1, end - start)) if start is not None and end is not None else None
    return from_timeline(timeline, seconds)


def add_to_report(report: dict[str, Any], facts: AppFacts | None, price_table: Path | None = None) -> None:
    """report["advice"] and report["cost"] (None when the emulator could not say)."""
    observed = observed_of(report)
    if facts is None:
        report["advice"], report["cost"] = [], None
        return
    report["advice"] = [f.to_json() for f in advise(facts, observed)]
    if observed is None:
        report["cost"] = None
        return
    totals = report["client"]["totals"]
    target = report.get("scenario", {}).get("target") or {}
    sends = totals["sent"] if target.get("queue") else 0
    usage = costs.usage_from_run(facts, observed, requests=totals["sent"], sqs_sends=sends)
    table, where = costs.load_prices(price_table)
    report["cost"] = costs.estimate(usage, table, facts.region, where)


def lines(report: Mapping[str, Any]) -> list[str]:
    """What the terminal shows at the end: the findings, then the cost."""
    out = []
    for finding in report.get("advice") or ():
        out.append(f"  {finding['severity'].upper():7} {finding['subject']}: {finding['message']} ({finding['source_url']})")
    cost = report.get("cost")
    if cost:
        per_million = cost["per_million_requests"]
        out.append(f"cost on AWS ({cost['region']}, prices of {cost['price_table']['date']}): "
                   f"{cost['total']:.6f} {cost['currency']} for the run"
                   + (f", {per_million:.2f} {cost['currency']} per million requests" if per_million is not None else ""))
    return out
