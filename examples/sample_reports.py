"""What the examples' tests check in their committed sample reports (sample-report/), so the
reports cannot silently rot while the code moves on: report.json is valid against
docs/report-json.schema.json (`lambda-emulator/load-report@1`), today's threshold code finds
in it the outcomes it records, today's report.html renderer draws it, and the committed
report.html is one self-contained page. Nothing is regenerated: regenerating is a real run
(each example's README says which command), and the reports are that run's output.

The examples' tests load this file by its path (the examples are folders, not a package).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from emulator.load import html_report, thresholds
from emulator.load.report import ReportMetrics

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "docs" / "report-json.schema.json"
# Anything report.html would fetch: a script, a stylesheet, an image or a font from elsewhere.
# Links the reader may click (AWS's pages) are fine; loads are not.
EXTERNAL_LOAD = re.compile(r"<(?:script|img|iframe)\b[^>]*\bsrc=|<link\b[^>]*\bhref=\"(?!data:)|@import|url\((?!data:)", re.I)
EMBEDDED_DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def validate(report: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `report` follows the schema."""
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(report)


def checked_report(folder: Path) -> dict[str, Any]:
    """The folder's report.json, after every check of this module; the test then checks the story."""
    report = json.loads((folder / "report.json").read_text())
    validate(report)
    recorded = [(t["expression"], t["ok"], t["observed"]) for t in report["thresholds"]]
    metrics = ReportMetrics(report)
    again = [(text, o.ok, o.observed)
             for text in report["scenario"]["thresholds"]
             for o in [thresholds.evaluate(thresholds.parse(text), metrics)]]
    assert again == recorded, f"today's thresholds read {folder / 'report.json'} differently: {again} != {recorded}"
    assert html_report.render(report).startswith("<!doctype html>")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert not EXTERNAL_LOAD.search(page), f"{folder / 'report.html'} loads something from outside the file"
    embedded = json.loads(EMBEDDED_DATA.search(page).group(1))
    assert embedded["verdict"] == report["verdict"], "report.html and report.json are not of the same run"
    return report


def series(report: dict[str, Any], metric: str, namespace: str = "AWS/Lambda", **dims: str) -> dict[str, Any] | None:
    """The timeline series of `metric` with exactly these dimensions."""
    for entry in report["emulator"]["timeline"]["series"]:
        if entry["namespace"] == namespace and entry["metric"] == metric and entry["dimensions"] == dims:
            return entry
    return None


def total(report: dict[str, Any], metric: str, namespace: str = "AWS/Lambda", **dims: str) -> float:
    """A counter's sum over the run (0 when the series never had data)."""
    entry = series(report, metric, namespace, **dims)
    return 0 if entry is None else entry["summary"]["sum"]


def peak(report: dict[str, Any], metric: str, namespace: str = "AWS/Lambda", **dims: str) -> float | None:
    entry = series(report, metric, namespace, **dims)
    return None if entry is None else entry["summary"]["max"]


def mapping_uuid(report: dict[str, Any], function: str) -> str:
    """The event source mapping whose function is `function` (the timeline names mappings by UUID)."""
    mappings = report["emulator"]["metrics"]["event_source_mappings"]
    (uuid,) = [u for u, m in mappings.items() if m["FunctionArn"].rsplit(":", 1)[1] == function]
    return uuid
