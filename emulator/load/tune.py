"""`emulator tune FUNCTION`: AWS Lambda Power Tuning, locally. The function runs `num` times
at each power value (memory size), in series or in parallel, and each run's REPORT line's
Billed Duration is what counts, as the tool does (emulator/advice/tuning.py has the maths).

Memory changes through UpdateFunctionConfiguration, as the tool changes it. An emulator
without that call can still be tuned when this command starts it: it is then restarted for
each power value with `--memory-sizes FUNCTION=MB`. An emulator this command starts runs
with `--cpu-model proportional`, so that memory decides CPU as on Lambda (README, "CPU in
proportion to memory"); one already up (`--endpoint`) runs as it was started.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from emulator.advice import tuning
from emulator.advice.cost import PriceTableError, load_prices
from emulator.load import emulator_link
from emulator.load.emulator_link import EmulatorUnavailable, LocalEmulator

EXIT_USAGE = 2
EXIT_FAILED = 1
CALL_TIMEOUT_S = 960.0  # longer than Lambda's longest timeout (900 s)
SCHEMA = "lambda-emulator/load-report@1"


class TuneError(RuntimeError):
    """The tuning run could not be made; the message says why."""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    tune = commands.add_parser(
        "tune", help="AWS Lambda Power Tuning, locally: run a function at several memory sizes and pick one",
        description="Runs FUNCTION num times at each power value with CPU in proportion to memory, from the REPORT "
        "lines' billed durations computes Power Tuning's statistics and output (power, cost, duration, "
        "stateMachine.visualization, stats) and writes them to OUT/tuning.json and OUT/report.json's `tuning`.")
    tune.add_argument("function", help="the function to tune")
    where = tune.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="URL of a running emulator")
    where.add_argument("--template", type=Path, help="SAM template: start an emulator with it (default ./template.yaml)")
    tune.add_argument("--input", type=Path, help="Power Tuning's execution input (JSON); the flags below override it")
    tune.add_argument("--power-values", help="memory sizes, e.g. 128,256,512,1024 (or ALL)")
    tune.add_argument("--num", type=int, help="invocations per power value")
    tune.add_argument("--payload", help="the event (JSON)")
    tune.add_argument("--parallel", action="store_true", default=None, help="parallelInvocation: num at once")
    tune.add_argument("--strategy", choices=tuning.STRATEGIES)
    tune.add_argument("--balanced-weight", type=float)
    tune.add_argument("--discard-top-bottom", type=float)
    tune.add_argument("--only-cold-starts", action="store_true", default=None)
    tune.add_argument("--out", type=Path, default=Path("tune-report"), help="folder for tuning.json and report.json")
    tune.add_argument("--price-table", type=Path, help="prices (the shape of emulator/advice/prices.json)")
    tune.add_argument("--visualization-url", default=tuning.VISUALIZATION_URL)
    return tune


def input_from_args(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(args.input.read_text()) if args.input else {}
    flags = {"powerValues": args.power_values, "num": args.num, "parallelInvocation": args.parallel,
             "strategy": args.strategy, "balancedWeight": args.balanced_weight,
             "discardTopBottom": args.discard_top_bottom, "onlyColdStarts": args.only_cold_starts}
    raw.update({k: v for k, v in flags.items() if v is not None})
    if args.payload is not None:
        raw["payload"] = json.loads(args.payload)
    return raw


def run_command(args: argparse.Namespace, default_template: Path) -> int:
    try:
        raw = input_from_args(args)
        parsed = tuning.parse_input(raw)
        table, where = load_prices(args.price_table)
    except (ValueError, OSError, PriceTableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = tune(args.function, parsed, endpoint=args.endpoint, template=args.template or default_template,
                       out_dir=args.out, prices=(table, where), base_url=args.visualization_url,
                       progress=lambda text: print(text, file=sys.stderr, flush=True))
    except (TuneError, EmulatorUnavailable, tuning.TuningInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"results": results}, indent=2))
    return 0


# -- the emulator's side ---------------------------------------------------------------------
def _call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except OSError as exc:
        raise EmulatorUnavailable(f"cannot reach the emulator at {url}: {exc}") from None


class Target:
    """The function on an emulator: read and change its configuration, invoke it."""

    def __init__(self, endpoint: str, function: str) -> None:
        self.endpoint = endpoint
        self.path = f"{endpoint}/2015-03-31/functions/{urllib.parse.quote(function, safe='')}"

    def configuration(self) -> dict[str, Any]:
        status, _, body = _call("GET", self.path + "/configuration")
        if status != 200:
            raise TuneError(f"GetFunctionConfiguration answered {status}: {body[:300].decode(errors='replace')}")
        return json.loads(body)

    def update(self, settings: dict[str, Any]) -> bool:
        """UpdateFunctionConfiguration; False when the emulator does not have it."""
        status, headers, body = _call("PUT", self.path + "/configuration", json.dumps(settings).encode(),
                                      {"Content-Type": "application/json"})
        if status == 200:
            return True
        kind = headers.get("x-amzn-ErrorType") or headers.get("X-Amzn-ErrorType") or ""
        if status in (404, 405) and "ResourceNotFound" not in kind:
            return False
        raise TuneError(f"UpdateFunctionConfiguration {settings} answered {status}: {body[:300].decode(errors='replace')}")

    def invoke(self, payload: bytes) -> tuple[float, bool]:
        """(billed ms of the REPORT line, cold start)."""
        status, headers, body = _call("POST", self.path + "/invocations", payload,
                                      {"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"})
        lower = {k.lower(): v for k, v in headers.items()}
        if status != 200:
            raise TuneError(f"Invoke answered {status}: {body[:300].decode(errors='replace')}")
        if lower.get("x-amz-function-error"):
            raise TuneError(f"Invocation error: {body[:500].decode(errors='replace')} with payload {payload[:200]!r}")
        log = base64.b64decode(lower.get("x-amz-log-result", "")).decode(errors="replace")
        return tuning.billed_duration(log), "Init Duration:" in log


class Emulators:
    """The emulator to tune against: one already up, or one this command starts (and restarts
    with another memory size when it has no UpdateFunctionConfiguration)."""

    def __init__(self, endpoint: str | None, template: Path, function: str, log_dir: Path) -> None:
        self.given = endpoint.rstrip("/") if endpoint else None
        self.template, self.function, self.log_dir = template, function, log_dir
        self.local: LocalEmulator | None = None
        self.restarts = 0
        self.endpoint = self.given or self._start({})

    def _start(self, options: dict[str, Any]) -> str:
        self.stop()
        self.restarts += 1
        self.local = LocalEmulator(self.template, {"cpu_model": "proportional", **options},
                                   self.log_dir / f"emulator-{self.restarts}.log")
        return self.local.start().rstrip("/")

    def set_power(self, power: int) -> None:
        if Target(self.endpoint, self.function).update({"MemorySize": power}):
            return
        if self.given:
            raise TuneError(f"the emulator at {self.given} has no UpdateFunctionConfiguration: tune with --template "
                            f"(this command then starts the emulator with each memory size)")
        self.endpoint = self._start({"memory_sizes": f"{self.function}={power}"})

    def force_cold_start(self, power: int, index: int) -> None:
        """A new environment for the next invocation (onlyColdStarts): a configuration
        change, as Power Tuning's new alias per invocation, else a fresh emulator."""
        if Target(self.endpoint, self.function).update({"Description": f"power tuning {power} MB, run {index}"}):
            return
        if self.given:
            raise TuneError(f"onlyColdStarts needs UpdateFunctionConfiguration on {self.given}")
        self.endpoint = self._start({"memory_sizes": f"{self.function}={power}"})

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()
            self.local = None


# -- the run -----------------------------------------------------------------------------------
def tune(function: str, parsed: tuning.TuningInput, *, endpoint: str | None, template: Path, out_dir: Path,
         prices: tuple[dict[str, Any], str], base_url: str = tuning.VISUALIZATION_URL,
         progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if endpoint is None and not template.is_file():
        raise TuneError(f"template not found: {template} (or give --endpoint URL)")
    started = time.time()
    emulators = Emulators(endpoint, template, function, out_dir)
    try:
        original = Target(emulators.endpoint, function).configuration()
        architecture = (original.get("Architectures") or ["x86_64"])[0]
        facts = emulator_link.app_facts(emulators.endpoint) or {}
        region = facts.get("region") or "us-east-1"
        cpu_model = ((emulator_link.metrics(emulators.endpoint) or {}).get("host") or {}).get("cpu_model", "off")
        if cpu_model not in ("cgroup-v1", "cgroup-v2"):
            progress(f"note: this emulator does not cap CPU in proportion to memory (cpu model: {cpu_model}), so "
                     f"durations will not change with memory as on Lambda (README, 'CPU in proportion to memory')")
        table, where = prices
        region_prices = (table["regions"].get(region) or table["regions"].get("us-east-1"))
        gb_second = region_prices["lambda"]["gb_second"][architecture]
        stats, durations, warm = [], {}, 0
        for power in parsed.power_values:
            emulators.set_power(power)
            runs = _run_power(emulators, function, parsed, power)
            durations[power] = [billed for billed, _ in runs]
            warm += sum(1 for _, cold in runs if not cold) if parsed.only_cold_starts else 0
            stat = tuning.power_stats(power, durations[power], parsed.discard_top_bottom, gb_second)
            stats.append(stat)
            progress(f"{power:>6} MB: average billed duration {stat.average_duration:.1f} ms, "
                     f"average cost {stat.average_price:.3e} USD")
        if emulators.given:
            Target(emulators.endpoint, function).update({"MemorySize": original.get("MemorySize")})
    finally:
        emulators.stop()
    results = tuning.output(stats, parsed.strategy, parsed.balanced_weight, base_url)
    (out_dir / "tuning.json").write_text(json.dumps({"results": results}, indent=1))
    details = {**results, "function": function, "input": parsed.describe(), "region": region,
               "architecture": architecture, "cpu_model": cpu_model, "billed_durations_ms": {str(k): v for k, v in durations.items()},
               "price_table": {"date": table.get("date"), "source": where},
               "warm_runs_in_only_cold_starts": warm, "started_at": started, "ended_at": time.time()}
    _add_to_report(out_dir / "report.json", details)
    return results


def _run_power(emulators: Emulators, function: str, parsed: tuning.TuningInput, power: int) -> list[tuple[float, bool]]:
    if parsed.only_cold_starts:
        runs = []
        for index, payload in enumerate(parsed.payloads):
            emulators.force_cold_start(power, index)
            runs.append(Target(emulators.endpoint, function).invoke(payload))
        return runs
    target = Target(emulators.endpoint, function)
    if parsed.parallel:
        with ThreadPoolExecutor(len(parsed.payloads)) as pool:
            return list(pool.map(target.invoke, parsed.payloads))
    return [target.invoke(payload) for payload in parsed.payloads]


def _add_to_report(path: Path, details: dict[str, Any]) -> None:
    """report.json's `tuning` (docs/report-json.md): added to the report already in the
    folder (a load run's), else a report of its own."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        report = {"schema": SCHEMA, "run": {"started_at": details["started_at"], "ended_at": details["ended_at"]},
                  "advice": [], "cost": None}
    report["tuning"] = details
    path.write_text(json.dumps(report, indent=1))
