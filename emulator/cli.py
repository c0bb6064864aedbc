"""The `emulator` command: `up` serves a template, `invoke` calls a function, `load` offers
load (emulator/load/command.py), `report` writes report.html from a running emulator
(emulator/load/report_command.py).

This is a composition root: the only place (with the pytest plugin) that reads argv and
os.environ. Every `up` flag comes from config.OPTIONS, so flags, EMULATOR_* variables
and the README stay in step.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from emulator import __version__
from emulator.config import OPTIONS, Config, bool_option, from_sources
from emulator.template.specs import AppSpec

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
EXIT_USAGE = 2
FORCE_EXIT_AFTER_S = 1.0
# At exit, how long to wait for the emulator's last log lines to reach a slow stderr.
STDERR_DRAIN_S = 2.0


def bundled_example() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "hello" / "template.yaml"


def find_template(explicit: Path | None, cwd: Path) -> tuple[Path, bool]:
    """(template, is_bundled_example)."""
    if explicit is not None:
        return explicit, False
    for name in TEMPLATE_NAMES:
        if (cwd / name).is_file():
            return cwd / name, False
    return bundled_example(), True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emulator",
        description="Local AWS Lambda emulator for scale testing: real handlers, real concurrency limits, throttles and retries.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="serve the functions of a SAM template",
        description="Serve the Lambda API (and, through moto, every other AWS API) for a SAM template on one endpoint. "
        "Every option can also be set as an EMULATOR_<NAME> environment variable (e.g. EMULATOR_PORT=0).",
    )
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": option.name, "default": None, "help": option.help, "metavar": option.name.upper()}
        if option.choices:
            kwargs["choices"] = option.choices
            kwargs.pop("metavar")
        if option.type is bool_option:  # `--allow-remote` alone means true; `--watch-code false` still works
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        if option.many:  # `--parameter-overrides Stage=dev Size=2`, as sam takes it
            kwargs.update(nargs="+", metavar="KEY=VALUE")
        up.add_argument(option.flag, **kwargs)

    invoke = commands.add_parser("invoke", help="invoke a function on a running emulator and print the result")
    invoke.add_argument("function", help="function name or ARN")
    invoke.add_argument("--payload", default="{}", help="JSON event (default {}); @file reads it from a file")
    invoke.add_argument("--endpoint", default=None, help="emulator URL (default $AWS_ENDPOINT_URL or http://127.0.0.1:3001)")
    invoke.add_argument("--qualifier", default=None, help="version or alias")
    invoke.add_argument("--invocation-type", default="RequestResponse", choices=("RequestResponse", "Event", "DryRun"))
    invoke.add_argument("--no-logs", action="store_true", help="do not print the log tail")

    from emulator.load.command import add_parser as add_load_parser

    add_load_parser(commands)
    from emulator.load.report_command import add_parser as add_report_parser

    add_report_parser(commands)
    from emulator.advice.command import add_parser as add_check_parser
    from emulator.load.tune import add_parser as add_tune_parser

    add_check_parser(commands)
    add_tune_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "up":
        return cmd_up(args, parser)
    if args.command == "invoke":
        return cmd_invoke(args)
    if args.command == "load":
        from emulator.load.command import run_command

        return run_command(args)
    if args.command == "report":
        from emulator.load import report_command

        return report_command.run_command(args, os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:3001")
    if args.command == "check":
        return cmd_check(args)
    if args.command == "tune":
        from emulator.load.tune import run_command as run_tune

        return run_tune(args, find_template(None, Path.cwd())[0])
    parser.print_help()
    return EXIT_USAGE


def cmd_check(args: argparse.Namespace) -> int:
    from emulator.advice.command import run_check
    from emulator.config import key_values

    template, _ = find_template(args.template, Path.cwd())
    try:
        overrides = dict(key_values(" ".join(args.parameter_overrides))) if args.parameter_overrides else {}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_check(args, template, overrides)


# -- up ------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    flags = {option.name: getattr(args, option.name) for option in OPTIONS}
    try:
        config = from_sources(flags, os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    if config.docker_host is None and os.environ.get("DOCKER_HOST"):
        config = config.replace(docker_host=os.environ["DOCKER_HOST"])  # the engine the docker CLI would use
    from emulator.execution.logsink import BackgroundWriter
    from emulator.execution.process_hardening import harden_control_plane

    # First, while this process has one thread: handlers must not read the user's
    # environment (its secrets) through /proc/<pid>/environ.
    harden_control_plane()
    # Everything the emulator writes to stderr (its log, function logs, these messages)
    # goes through one writer thread with a bounded buffer: a reader that stops reading
    # (a paused terminal, a pipe nobody reads) never stalls the event loop.
    terminal, writer = sys.stderr, BackgroundWriter(sys.stderr)
    sys.stderr = writer  # type: ignore[assignment]
    try:
        return _up(config)
    finally:
        writer.close(STDERR_DRAIN_S)
        sys.stderr = terminal


def _up(config: Config) -> int:
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from emulator.template.loader import TemplateError, load_template

    if config.port == 0:
        # Choose the port now: the template's !Ref of a queue resolves to a URL on it.
        from emulator.backend.moto_process import free_port

        config = config.replace(port=free_port(config.host))
    template, bundled = find_template(config.template, Path.cwd())
    if bundled:
        print(f"No template.yaml here: serving the bundled example {template}", file=sys.stderr)
    if not template.is_file():
        print(f"error: template not found: {template}", file=sys.stderr)
        return EXIT_USAGE
    try:
        app = load_template(template, region=config.region, account_id=config.account_id, endpoint_url=_planned_url(config),
                            parameters=config.parameter_overrides, imports=config.import_values)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = config.replace(template=template)
    _use_uvloop()
    try:
        return asyncio.run(serve(config, app))
    except KeyboardInterrupt:
        return 130


def _planned_url(config: Config) -> str:
    host = config.host if config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{config.port}"


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# The control plane's cyclic garbage collector: the first generation is collected after this
# many allocations (CPython's default is 700). Every invocation allocates tasks, futures and
# dicts that live for one invocation; at thousands of invocations per second the default made
# the collector ~12 % of the control plane's CPU (perf, benchmark 15: docs/benchmarks.md).
GC_YOUNG_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Once started: what startup built (modules, the template, the server) lives as long as
    the process, so it is frozen out of every later collection; young objects are collected
    less often (GC_YOUNG_THRESHOLD). Cycles are still collected."""
    import gc

    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def serve(config: Config, app: AppSpec) -> int:
    from emulator.server import EmulatorServer, RemoteBindingRefused, StartupError

    server = EmulatorServer(config, app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    first_signal: float | None = None

    def on_signal() -> None:
        # A second signal forces the exit, unless it is the same event delivered twice
        # (to the process and to its group, as `timeout` and some terminals do).
        nonlocal first_signal
        now = time.monotonic()
        if first_signal is None:
            first_signal = now
            stop.set()
        elif now - first_signal > FORCE_EXIT_AFTER_S:
            print("\nforced exit", file=sys.stderr)
            os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    started = time.perf_counter()
    print(f"Starting the emulator for {config.template} ...", file=sys.stderr, flush=True)
    try:
        await server.start()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, RemoteBindingRefused) else 1
    elapsed = time.perf_counter() - started
    _tune_gc()
    names = ", ".join(sorted(app.functions)) or "(none)"
    print(
        f"Emulator ready in {elapsed:.1f} s at {server.url}\n"
        f"  functions: {names}\n"
        f"  try: AWS_ENDPOINT_URL={server.url} aws lambda invoke --function-name {next(iter(sorted(app.functions)), 'NAME')} out.json\n"
        f"  dashboard: {server.url}/_emulator/dashboard    metrics: {server.url}/_emulator/metrics    stop: Ctrl-C",
        file=sys.stderr,
        flush=True,
    )
    if server.gateway is not None and server.gateway.port is not None:
        print("  API Gateway (--api-port):\n" + "\n".join(f"    {line}" for line in server.gateway.describe()),
              file=sys.stderr, flush=True)
    print(server.url, flush=True)  # stdout carries only the URL, for scripts (port 0)
    await stop.wait()
    print("Shutting down ...", file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(server.stop(), config.shutdown_timeout + 10)
    except asyncio.TimeoutError:
        print("shutdown deadline passed; exiting anyway", file=sys.stderr)
    return 0


# -- invoke --------------------------------------------------------------------------------
def cmd_invoke(args: argparse.Namespace) -> int:
    endpoint = (args.endpoint or os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:3001").rstrip("/")
    payload = args.payload
    if payload.startswith("@"):
        payload = Path(payload[1:]).read_text()
    try:
        json.loads(payload)
    except ValueError as exc:
        print(f"error: --payload is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    url = f"{endpoint}/2015-03-31/functions/{args.function}/invocations"
    if args.qualifier:
        url += f"?Qualifier={args.qualifier}"
    headers = {"X-Amz-Invocation-Type": args.invocation_type, "Content-Type": "application/json"}
    if not args.no_logs and args.invocation_type == "RequestResponse":
        headers["X-Amz-Log-Type"] = "Tail"
    request = urllib.request.Request(url, data=payload.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=960) as response:
            body = response.read().decode()
            status = response.status
            log_result = response.headers.get("X-Amz-Log-Result")
            function_error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as error:
        print(f"error: {_describe_http_error(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot reach the emulator at {endpoint}: {error}. Is `emulator up` running?", file=sys.stderr)
        return 1
    if log_result:
        sys.stderr.write(base64.b64decode(log_result).decode(errors="replace"))
    print(body if body else f"(HTTP {status})")
    return 1 if function_error else 0


def _describe_http_error(error: urllib.error.HTTPError) -> str:
    """"ResourceNotFoundException (HTTP 404): Function not found: ..." from an AWS error response."""
    body = error.read().decode(errors="replace")
    code = error.headers.get("x-amzn-ErrorType", "").split(":")[0]
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    message = parsed.get("message") or parsed.get("Message") if isinstance(parsed, dict) else None
    if isinstance(parsed, dict) and parsed.get("Reason"):
        message = f"{message} (Reason: {parsed['Reason']})"
    return f"{code or 'HTTP error'} (HTTP {error.code}): {message or body}"


if __name__ == "__main__":
    sys.exit(main())
