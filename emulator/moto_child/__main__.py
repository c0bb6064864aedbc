"""The moto child's main program: `python -m emulator.moto_child [--nice=N] [--plain] MOTO-ARGS`.

Started by emulator/backend/moto_process.py. It dies with the emulator (PR_SET_PDEATHSIG),
runs at a lower CPU priority, ignores Ctrl-C (the emulator stops it last, after its pollers
and in-flight invocations no longer need it), applies the fast SQS and Kinesis models and the SNS fan-out unless `--plain`,
then hands the remaining arguments to moto's own server.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    ours = [arg for arg in argv if arg == "--plain" or arg.startswith("--nice=")]
    argv = [arg for arg in argv if arg not in ours]
    for arg in ours:
        if arg.startswith("--nice="):
            os.nice(int(arg.partition("=")[2]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "--plain" not in ours:
        apply_fast_models()
    # stderr goes to the emulator's log, which is for the emulator's own troubles: werkzeug's
    # line per request stays out of it, and so does its traceback for a request moto fails
    # on (answered 500, which the emulator's proxy turns into an AWS-shaped error for the
    # caller: a hostile or unsupported request is never a traceback in the log).
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    from moto.server import main as moto_main

    moto_main(argv)


def apply_fast_models() -> dict[str, bool]:
    """Patch moto with each fast model; {name: applied}. Each on its own: one that fails
    leaves moto's own model for that service (slow, but correct) and says why on stderr,
    which the emulator logs (logger emulator.moto); the others still apply."""
    from emulator.moto_child import fast_kinesis, fast_sns, fast_sqs

    applied = {}
    for name, apply in (("SQS", fast_sqs.apply), ("Kinesis", fast_kinesis.apply), ("SNS", fast_sns.apply)):
        try:
            applied[name] = apply()
        except Exception:
            print(f"the fast {name} model could not be applied; moto's own {name} serves instead:", file=sys.stderr)
            traceback.print_exc()
            applied[name] = False
    sys.stderr.flush()
    return applied


if __name__ == "__main__":
    main(sys.argv[1:])
