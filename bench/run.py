"""The benchmark suite in one command: `.venv/bin/python bench/run.py [--quick]`.

Each benchmark starts its own emulator (`emulator up --port 0 --backend none
--log-invocations false`) and, where it compares, the aiohttp echo baseline, both as
subprocesses on 127.0.0.1, and stops them with SIGINT. Benchmarks print figures against
targets; they assert nothing (timing is not asserted in tests). docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_apigw  # noqa: E402
import bench_async  # noqa: E402
import bench_backends  # noqa: E402
import bench_coldstart  # noqa: E402
import bench_dynamodb  # noqa: E402
import bench_kinesis  # noqa: E402
import bench_latency  # noqa: E402
import bench_dashboard  # noqa: E402
import bench_load  # noqa: E402
import bench_memory  # noqa: E402
import bench_moto_memory  # noqa: E402
import bench_sns  # noqa: E402
import bench_sources  # noqa: E402
import bench_throttling  # noqa: E402
import bench_throughput  # noqa: E402
import harness  # noqa: E402
from report import MISSED, Row, markdown_table, plain_table  # noqa: E402
from settings import FULL, QUICK, Settings  # noqa: E402

BENCHMARKS: dict[str, Callable[[Settings], list[Row]]] = {
    "latency": bench_latency.run,
    "throughput": bench_throughput.run,
    "coldstart": bench_coldstart.run,
    "memory": bench_memory.run,
    "admission": bench_throttling.run,
    "sources": bench_sources.run,
    "kinesis": bench_kinesis.run,
    "moto-memory": bench_moto_memory.run,
    "async": bench_async.run,
    "backends": bench_backends.run,
    "load": bench_load.run_generator,
    "timeline": bench_load.run_timeline,
    "dynamodb": bench_dynamodb.run,
    "apigw": bench_apigw.run,
    "dashboard": bench_dashboard.run,
    "sns": bench_sns.run,
}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_gib:.0f} GiB",
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load average at start": load,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (under ~2 minutes)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these benchmarks (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (for docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also write the rows and machine description to this file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for the (shared) machine to be >= 90%% idle")
    parser.add_argument("--emulator-src", type=Path, metavar="DIR",
                        help="benchmark the emulator of the checkout in DIR instead of the installed one (A/B against "
                             "another commit: `git worktree add /tmp/x COMMIT`); its package tree is built as it installs")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-emulator-src-") as scratch:
        if args.emulator_src:
            source = args.emulator_src.resolve()
            if not (source / "emulator" / "__init__.py").is_file():
                parser.error(f"--emulator-src: no emulator package in {source}")
            try:
                staged = harness.stage_installed_tree(source, Path(scratch))
            except RuntimeError as exc:
                parser.error(f"--emulator-src: {exc}")
            # Every server and helper the benchmarks start inherits this; it comes ahead of
            # the editable install, whose finder runs after the path-based one.
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(staged), os.environ.get("PYTHONPATH", "")) if p)
        return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    description = machine()
    print("Lambda emulator benchmarks (" + ("quick" if settings.quick else "full") + " run)")
    if args.emulator_src:
        description["emulator source"] = str(args.emulator_src.resolve())
    print("; ".join(f"{key}: {value}" for key, value in description.items()), flush=True)
    rows: list[Row] = []
    idle_before: dict[str, float] = {}
    began = time.perf_counter()
    try:
        for name in args.only or list(BENCHMARKS):
            idle = idle_before[name] = harness.wait_for_quiet(args.wait_quiet)
            started = time.perf_counter()
            print(f"- {name} (machine {idle:.0%} idle before) ...", end=" ", flush=True)
            try:
                rows += BENCHMARKS[name](settings)
                print(f"{time.perf_counter() - started:.0f} s", flush=True)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                print("failed", flush=True)
                traceback.print_exc()
                rows.append(Row(name, "error", f"{type(exc).__name__}: {exc}"[:160], verdict=MISSED))
            finally:
                harness.stop_all()
    except KeyboardInterrupt:
        print("\ninterrupted; partial results below", file=sys.stderr)
    finally:
        harness.stop_all()
    print(f"\ntotal {time.perf_counter() - began:.0f} s\n")
    print(markdown_table(rows) if args.markdown else plain_table(rows))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": description, "quick": settings.quick, "idle_before": idle_before, "rows": [r.as_dict() for r in rows]}, indent=1
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
