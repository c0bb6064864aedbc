"""The moto child's main program: `python -m emulator.moto_child [--nice=N] [--plain] MOTO-ARGS`.

Started by emulator/backend/moto_process.py. It dies with the emulator (PR_SET_PDEATHSIG),
runs at a lower CPU priority, ignores Ctrl-C (the emulator stops it last, after its pollers
and in-flight invocations no longer need it), applies the fast SQS and Kinesis models and the SNS fan-out unless `--plain`,
then hands the remaining arguments to moto's own server.
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
    ours = [arg for arg in argv if arg == "--plain" or arg.startswith("--nice=")]
    argv = [arg for arg in argv if arg not in ours]
    for arg in ours:
        if arg.startswith("--nice="):
            os.nice(int(arg.partition("=")[2]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "--plain" not in ours:
        try:
            from emulator.moto_child.fast_sqs import apply

            apply()
            from emulator.moto_child.fast_kinesis import apply as apply_fast_kinesis
            apply_fast_kinesis()
            from emulator.moto_child.fast_sns import apply as apply_fast_sns
            apply_fast_sns()
        except Exception:  # plain moto still serves (slow, but correct); say why on stderr
            traceback.print_exc()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
