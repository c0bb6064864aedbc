"""The moto child's main program: `python -m emulator.moto_child [--nice=N] [--plain] [--time-scale=X]
[--dynamodb-capacity=on|off] MOTO-ARGS`.

Started by emulator/backend/moto_process.py. It dies with the emulator (PR_SET_PDEATHSIG),
runs at a lower CPU priority, ignores Ctrl-C (the emulator stops it last, after its pollers
and in-flight invocations no longer need it), applies the fast SQS, Kinesis and DynamoDB models
unless `--plain` (DynamoDB's capacity runs on the emulator's `--time-scale`, and
`--dynamodb-capacity=off` leaves it out), then hands the remaining arguments to moto's own server.
"""

from __future__ import annotations

import ctypes
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
        try:
            from emulator.moto_child.fast_sqs import apply

            apply()
            from emulator.moto_child.fast_kinesis import apply as apply_fast_kinesis
            apply_fast_kinesis()
            from emulator.moto_child.fast_dynamodb import apply as apply_fast_dynamodb
            apply_fast_dynamodb(time_scale, capacity)
        except Exception:  # plain moto still serves (slow, but correct); say why on stderr
            traceback.print_exc()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
