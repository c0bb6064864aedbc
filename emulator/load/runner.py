"""One load run from start to verdict: used by `emulator load` and by the pytest helper.

1. the emulator: the one at `endpoint`, or `emulator up` started for the run;
2. the target resolved (a queue's URL, a topic's ARN, a function checked);
3. the workers run the schedule while the display follows; every second the emulator's
   counters are read for the display (not for the figures: those come from its timeline);
4. `settle`: the emulator is watched a while longer (until its async queue, pollers and
   the target queue are idle, or the time is up);
5. report.json, the CSV files and report.html from the generator's figures and the
   emulator's timeline over the run; the thresholds decide the verdict.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, IO

from emulator.load import emulator_link, html_report, insights, thresholds
from emulator.load.display import Frame, make_display
from emulator.load.report import ReportMetrics, add_outcomes, build_report, json_ready, write_csvs
from emulator.load.scenario import Scenario
from emulator.load.series import ClientSeries, SecondStats
from emulator.load.targets import TargetSpec, target_spec
from emulator.load.workers import WorkerJob, jobs_for, run_workers

# Exit codes of `emulator load`: 99 when a threshold fails (k6's code), 1 when the run itself failed.
EXIT_THRESHOLDS_FAILED = 99
EXIT_RUN_FAILED = 1
METRICS_POLL_S = 1.0
SETTLE_POLL_S = 0.5
# Settling ends early only after this long (the sampler must have seen the queues once).
SETTLE_MINIMUM_S = 2.0


@dataclass
class LoadResult:
    report: dict[str, Any]
    outcomes: list[thresholds.Outcome]
    out_dir: Path

    @property
    def passed(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[thresholds.Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def assert_thresholds(self) -> None:
        """Raise AssertionError naming every threshold that failed."""
        if not self.passed:
            raise AssertionError("load thresholds failed:\n" + "\n".join(f"  {o.message}" for o in self.failures)
                                 + f"\nreport: {self.out_dir / 'report.json'}")

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else EXIT_THRESHOLDS_FAILED


def run(scenario: Scenario, *, out_dir: Path, endpoint: str | None = None, template: Path | None = None,
        display: bool = True, stream: IO[str] | None = None, price_table: Path | None = None) -> LoadResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    template = template or scenario.emulator.template
    local = None
    if endpoint is None and template is None and scenario.target.get("url"):
        return _run(scenario, None, out_dir, display, stream, emulator_started=False,
                    price_table=price_table)  # an HTTP target alone
    if endpoint is None:
        if template is None:
            raise emulator_link.EmulatorUnavailable(
                "no emulator: give --endpoint URL (one that runs) or --template FILE (one to start), "
                "or emulator.template in the scenario")
        local = emulator_link.LocalEmulator(template, scenario.emulator.options, out_dir / "emulator.log")
        endpoint = local.start()
    try:
        return _run(scenario, endpoint.rstrip("/"), out_dir, display, stream, emulator_started=local is not None,
                    price_table=price_table)
    finally:
        if local is not None:
            local.stop()


def resolve_target(scenario: Scenario, endpoint: str | None) -> TargetSpec:
    settings = dict(scenario.target)
    if endpoint is None:
        return target_spec(settings, settings["url"], scenario.region)
    if settings.get("queue"):
        settings["queue"] = emulator_link.queue_url(endpoint, scenario.region, str(settings["queue"]))
    if settings.get("topic"):
        settings["topic"] = emulator_link.topic_arn(endpoint, scenario.region, str(settings["topic"]))
    if settings.get("function"):
        emulator_link.check_function(endpoint, str(settings["function"]))
    return target_spec(settings, endpoint, scenario.region)


def _run(scenario: Scenario, endpoint: str | None, out_dir: Path, show: bool, stream: IO[str] | None, *,
         emulator_started: bool, price_table: Path | None = None) -> LoadResult:
    spec = resolve_target(scenario, endpoint)
    facts = insights.facts_of(emulator_link.app_facts(endpoint)) if endpoint else None
    warned = insights.before(facts)
    if warned and show:
        print("limits advisor, before the run:", file=stream or sys.stderr)
        for finding in warned:
            print(f"  {finding.line()}", file=stream or sys.stderr)
    schedule = scenario.schedule
    base = WorkerJob(0, 1, spec, scenario.payload, scenario.phases, scenario.arrivals, scenario.seed,
                     scenario.max_in_flight, scenario.timeout_s)
    jobs = jobs_for(base, scenario.workers, scenario.max_in_flight)
    series = ClientSeries()
    display = make_display(show, stream)
    emulated_start = emulator_link.emulator_now(endpoint) if endpoint else None
    started_wall = time.time()
    last_poll = [0.0]
    snapshot: list[dict[str, Any] | None] = [None]

    def tick(start: float) -> None:
        now = time.monotonic()
        if display is None:
            return
        if endpoint and now - last_poll[0] >= METRICS_POLL_S:
            last_poll[0] = now
            snapshot[0] = emulator_link.metrics(endpoint)
        elapsed = max(0.0, now - start)
        previous = int(elapsed) - 1
        last = series.seconds.get(previous) or SecondStats()
        phase = scenario.phases[schedule.phase_at(min(elapsed, schedule.duration))].name if elapsed < schedule.duration else "finishing"
        display.update(Frame(elapsed=elapsed, duration=schedule.duration, phase=phase,
                             planned_rate=schedule.rate_at(max(0.0, previous + 0.5)), last=last,
                             totals=series.running, emulator=snapshot[0]))

    if display is not None:
        display.start(f"emulator load: {scenario.name}: {spec.label} at {endpoint or spec.name}, {schedule.duration:g} s, "
                      f"{scenario.workers} worker(s), {scenario.arrivals} arrivals")
    try:
        worker_cpu = run_workers(jobs, series, tick)
    finally:
        if display is not None:
            display.stop()
    if endpoint:
        _settle(scenario, endpoint, spec)
    ended_wall = time.time()
    emulated_end = emulator_link.emulator_now(endpoint) if endpoint else None
    timeline = None
    if emulated_start is not None and emulated_end is not None:
        emulator_link.wait_past(endpoint, emulated_end)
        timeline = emulator_link.timeline(endpoint, emulated_start, emulated_end + 1)
    report = build_report(scenario, series, started_at=started_wall, ended_at=ended_wall, endpoint=endpoint,
                          emulator_started=emulator_started, timeline=timeline, emulated=(emulated_start, emulated_end),
                          final_metrics=emulator_link.metrics(endpoint) if endpoint else None)
    report["run"]["target"] = spec.label
    sent = report["client"]["totals"]["sent"]
    report["run"]["generator"] = {"worker_cpu_s": worker_cpu,
                                  "cpu_us_per_request": sum(worker_cpu) / sent * 1e6 if sent else None}
    outcomes = [thresholds.evaluate(thresholds.parse(text), ReportMetrics(report)) for text in scenario.thresholds]
    add_outcomes(report, outcomes)
    insights.add_to_report(report, facts, price_table)
    write_files(report, out_dir)
    return LoadResult(report, outcomes, out_dir)


def _settle(scenario: Scenario, endpoint: str, spec: TargetSpec) -> None:
    if scenario.settle_s <= 0:
        return
    started = time.monotonic()
    deadline = started + scenario.settle_s
    queue = spec.name.rsplit("/", 1)[-1] if spec.kind == "queue" else None
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        if time.monotonic() - started >= SETTLE_MINIMUM_S and _idle(endpoint, queue):
            return


def _idle(endpoint: str, queue: str | None) -> bool:
    """No async event pending, no batch in flight, and the target queue empty."""
    snapshot = emulator_link.metrics(endpoint)
    if snapshot is None:
        return False
    if (snapshot.get("async_queue") or {}).get("pending"):
        return False
    if any(m.get("BatchesInFlight") for m in (snapshot.get("event_source_mappings") or {}).values()):
        return False
    if queue is None:
        return True
    now = emulator_link.emulator_now(endpoint)
    recent = emulator_link.timeline(endpoint, now - 2) if now is not None else None
    for series in (recent or {}).get("series", []):
        if series["dimensions"] == {"QueueName": queue} and series["metric"] in (
                "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
            if series["value"] and series["value"][-1]:
                return False
    return True


def write_files(report: dict[str, Any], out_dir: Path) -> None:
    import json

    (out_dir / "report.json").write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    write_csvs(report, out_dir)
    (out_dir / "report.html").write_text(html_report.render(report), encoding="utf-8")


def with_overrides(scenario: Scenario, **changes: Any) -> Scenario:
    return replace(scenario, **{k: v for k, v in changes.items() if v is not None})
