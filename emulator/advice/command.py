"""`emulator check [TEMPLATE]`: the limits advisor on a template's settings, without running
anything. Exit 0, or with `--strict` 1 when there are warnings (2 for a template that does
not load)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emulator.advice.app_facts import describe
from emulator.advice.rules import advise, has_warnings

EXIT_WARNINGS = 1
EXIT_USAGE = 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    check = commands.add_parser(
        "check", help="check a template against AWS's scaling rules (the limits advisor) without running it",
        description="Print the limits advisor's findings for a SAM template: SQS consumers' reserved concurrency, "
        "visibility timeouts, maxReceiveCount, MaximumConcurrency against reserved concurrency, and more, each with "
        "the AWS page it comes from. `emulator load` adds what the run showed.")
    check.add_argument("template", nargs="?", type=Path, help="SAM template (default ./template.yaml)")
    check.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    check.add_argument("--json", action="store_true", help="print the findings as JSON (report.json's `advice`)")
    check.add_argument("--region", default="us-east-1")
    check.add_argument("--account-concurrency", type=int, default=1000)
    check.add_argument("--parameter-overrides", nargs="+", default=None, metavar="KEY=VALUE",
                       help="the template's parameter values, as for `emulator up`")
    return check


def run_check(args: argparse.Namespace, template: Path, overrides: dict[str, str]) -> int:
    from emulator.template.loader import TemplateError, load_template

    try:
        app = load_template(template, region=args.region, parameters=overrides)
    except (TemplateError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    findings = advise(describe(app, region=args.region, account_concurrency=args.account_concurrency))
    if args.json:
        print(json.dumps([f.to_json() for f in findings], indent=1))
    elif not findings:
        print(f"{template}: nothing to report")
    else:
        print(f"{template}:")
        for finding in findings:
            print(f"  {finding.line()}")
    return EXIT_WARNINGS if args.strict and has_warnings(findings) else 0

