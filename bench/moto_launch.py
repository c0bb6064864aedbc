"""What bench/moto_prefilled.py and bench/moto_kinesis_prefilled.py share: their common
options, dying with the benchmark, and serving once filled (bench/harness.py's ServerProcess
convention: the URL on stdout first, then moto starts listening)."""

from __future__ import annotations

import argparse
import ctypes
import signal

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def parse_arguments(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """The parser's own options plus --fast|--plain, --account, --region and -p; what is left
    is for moto's server."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fast", action="store_true")
    mode.add_argument("--plain", action="store_true")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("-p", "--port", type=int, required=True)
    return parser.parse_known_args()


def die_with_the_benchmark() -> None:
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def serve(port: int, moto_argv: list[str]) -> None:
    print(f"http://127.0.0.1:{port}", flush=True)
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(port), *moto_argv])
