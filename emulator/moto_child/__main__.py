"""The moto child's main program: `python -m emulator.moto_child [--nice=N] [--plain] [--time-scale=X]
[--dynamodb-capacity=on|off] MOTO-ARGS`.

Started by emulator/backend/moto_process.py. It dies with the emulator (PR_SET_PDEATHSIG),
runs at a lower CPU priority, ignores Ctrl-C (the emulator stops it last, after its pollers
and in-flight invocations no longer need it), applies the fast SQS, Kinesis and DynamoDB models
and the SNS fan-out unless `--plain` (DynamoDB's capacity runs on the emulator's `--time-scale`,
and `--dynamodb-capacity=off` leaves it out), then hands the remaining arguments to moto's own server.
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
    ours = [arg for arg in argv if arg == "--plain" or arg.startswith(("--nice=", "--time-scale=", "--dynamodb-capacity="))]
    argv = [arg for arg in argv if arg not in ours]
    time_scale, capacity = 1.0, True
    for arg in ours:
        name, _, value = arg.partition("=")
        if name == "--nice":
            os.nice(int(value))
        elif name == "--time-scale":
            time_scale = float(value)
        elif name == "--dynamodb-capacity":
            capacity = value != "off"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "--plain" not in ours:
        apply_fast_models(time_scale, capacity)
    # stderr goes to the emulator's log, which is for the emulator's own troubles: werkzeug's
    # line per request stays out of it, and so does its traceback for a request moto fails
    # on (answered 500, which the emulator's proxy turns into an AWS-shaped error for the
    # caller: a hostile or unsupported request is never a traceback in the log).
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    from moto.server import main as moto_main

    moto_main(argv)


def apply_fast_models(time_scale: float = 1.0, capacity: bool = True) -> dict[str, bool]:
    """Patch moto with each fast model; {name: applied}. Each on its own: one that fails
    leaves moto's own model for that service (slow, but correct) and says why on stderr,
    which the emulator logs (logger emulator.moto); the others still apply."""
    from emulator.moto_child import fast_dynamodb, fast_kinesis, fast_logs, fast_sns, fast_sqs

    applied = {}
    models = (("SQS", fast_sqs.apply), ("Kinesis", fast_kinesis.apply), ("CloudWatch Logs", fast_logs.apply),
              ("DynamoDB", lambda: fast_dynamodb.apply(time_scale, capacity)), ("SNS", fast_sns.apply))
    for name, apply in models:
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
