"""An environment that is a program of its own: the fork server forks, then this execs it.

Used by the `process-runtime-api` execution backend: the program is a runtime interface
client (awslambdaric, aws-lambda-ric, a custom runtime's `bootstrap`) that talks to the
Lambda Runtime API at `AWS_LAMBDA_RUNTIME_API`
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), not our framed protocol.
Forking it from the fork server keeps every guarantee of a forked environment: its own
session, its processes held in its memory cgroup (or below it, as a subreaper), killed
with it and with the emulator, its exit and peak memory reported.
"""

from __future__ import annotations

import os
from typing import Any

from . import proctree

EXIT_NOT_FOUND = 127  # what a shell answers for a command it cannot run


def run(output_fd: int, spec: dict[str, Any]) -> None:
    """In the forked child: become the environment's program. Never returns."""
    os.setsid()  # own session: signals to the emulator's process group do not reach it
    proctree.hold_processes(spec)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    if output_fd > 2:
        os.close(output_fd)
    argv = [str(part) for part in spec["exec"]]
    env = {str(k): str(v) for k, v in spec["env"].items()}
    try:
        os.chdir(spec["task_root"])
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"lambda runtime: cannot run {argv[0]}: {exc.strerror or exc}\n".encode())
    os._exit(EXIT_NOT_FOUND)
