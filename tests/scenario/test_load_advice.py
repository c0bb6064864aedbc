"""The limits advisor and the cost estimate on real runs: `emulator check`, the facts the
emulator serves, and report.json's `advice` and `cost` after `emulator load`, checked
against counts the scenario makes certain."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from core_testkit import GATED_OK_SOURCE, Gate
from load_testkit import ECHO, gated_throttled_run
from emulator.load.scenario import build
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emulator.cli", "check", *args], capture_output=True, text=True, timeout=60)


def test_check_prints_the_overpull_examples_warnings_and_strict_fails() -> None:
    template = str(ROOT / "examples/sqs-overpull/template.yaml")
    plain = check(template)
    assert plain.returncode == 0, plain.stderr
    assert "sqs-reserved-concurrency" in plain.stdout and "overpull-bug-consumer" in plain.stdout
    assert "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html" in plain.stdout
    assert check(template, "--strict").returncode == 1
    found = json.loads(check(template, "--json").stdout)
    assert {f["rule"] for f in found} >= {"sqs-reserved-concurrency", "sqs-visibility-timeout", "sqs-max-receive-count"}
    assert all(set(f) == {"rule", "severity", "subject", "message", "source_url"} for f in found)
    # The fix's consumer has MaximumConcurrency = its reservation: no reserved-concurrency warning for it.
    assert not [f for f in found if f["rule"] == "sqs-reserved-concurrency" and "overpull-fix" in f["subject"]]


def test_check_of_a_clean_template_and_of_a_broken_one(tmp_path: Path) -> None:
    clean = check(str(ROOT / "examples/hello/template.yaml"), "--strict")
    assert clean.returncode == 0 and "nothing to report" in clean.stdout
    broken = tmp_path / "template.yaml"
    broken.write_text("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: nodot}\n")
    failed = check(str(broken))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr and "error:" in failed.stderr


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    template = {
        "Gated": inline_function(GATED_OK_SOURCE, FunctionName="gated", ReservedConcurrentExecutions=2, Timeout=60, MemorySize=256),
        "Consumer": inline_function(ECHO, FunctionName="consumer", ReservedConcurrentExecutions=3, Timeout=10, Events={
            "Queue": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Orders", "Arn"]}, "BatchSize": 10}}}),
        "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders", "VisibilityTimeout": 60, "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDlq", "Arn"]}, "maxReceiveCount": 3}}},
        "OrdersDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders-dlq"}},
    }
    with running_emulator(template, log_invocations=False) as handle:
        yield handle


def test_the_emulator_serves_the_apps_facts(emulator: EmulatorHandle) -> None:
    with urllib.request.urlopen(f"{emulator.url}/_emulator/app", timeout=30) as response:
        facts = json.loads(response.read())
    assert facts["functions"]["gated"]["reserved_concurrency"] == 2
    assert facts["functions"]["gated"]["memory_mb"] == 256
    assert facts["queues"]["orders"] == {"name": "orders", "visibility_timeout_s": 60, "fifo": False,
                                         "dead_letter_queue": "orders-dlq", "max_receive_count": 3}
    assert facts["mappings"] == [{"function": "consumer", "source_kind": "sqs", "source_name": "orders", "batch_size": 10,
                                  "maximum_concurrency": None, "batching_window_s": 0}]


def test_a_throttled_run_gets_advice_and_a_cost(emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    gate = Gate(tmp_path / "gate")
    sc = build({"target": {"function": "gated", "payload": {"gate": gate.path}}, "phases": [{"rate": 200, "duration": 0.1}]},
               Path.cwd())
    # 20 requests: two run and wait at the gate, the other 18 are throttled.
    result = gated_throttled_run(emulator, gate, sc, tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    advice = {(f["rule"], f["subject"]): f for f in report["advice"]}
    estimate = advice[("concurrency-estimate", "function gated")]
    assert estimate["severity"] == "warning" and "18 throttled" in estimate["message"] and "limit 2" in estimate["message"]
    assert estimate["source_url"] == "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html"
    # From the settings alone: 3 reserved for an SQS consumer, maxReceiveCount 3.
    assert advice[("sqs-reserved-concurrency", "function consumer")]["severity"] == "warning"
    assert advice[("sqs-max-receive-count", "queue orders")]["severity"] == "warning"
    assert ("sqs-visibility-timeout", "queue orders") not in advice  # 60 s = 6 x 10 s

    cost = report["cost"]
    lines = {line["item"]: line for line in cost["lines"]}
    assert lines["Lambda gated requests"]["quantity"] == 2
    assert lines["Lambda gated requests"]["cost"] == pytest.approx(2 * 0.20 / 1e6)
    duration = next(s for s in report["emulator"]["timeline"]["series"]
                    if s["metric"] == "Duration" and s["dimensions"] == {"FunctionName": "gated"})["summary"]
    billed_ms = duration["sum"] + 0.5 * duration["count"]
    gb_s = lines["Lambda gated duration (256 MB, x86_64)"]
    assert gb_s["quantity"] == pytest.approx(billed_ms / 1000 * 256 / 1024)
    assert gb_s["cost"] == pytest.approx(gb_s["quantity"] * 0.0000166667)
    assert cost["total"] == pytest.approx(sum(line["cost"] for line in cost["lines"]))
    assert cost["per_million_requests"] == pytest.approx(cost["total"] / 20 * 1e6)
    assert (cost["currency"], cost["region"], cost["architecture"]) == ("USD", "us-east-1", "x86_64")
    assert cost["price_table"]["date"] and cost["price_table"]["urls"]["lambda"] == "https://aws.amazon.com/lambda/pricing/"
    assert result.report["advice"] == report["advice"]
