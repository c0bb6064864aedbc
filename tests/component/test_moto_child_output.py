"""What the moto child says reaches the emulator's log (emulator/backend/moto_process.py):
why it could not start, a fast model that could not be applied; and one model that fails
to apply leaves the other applied (emulator/moto_child/__main__.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys

import pytest

from emulator.backend.moto_process import MotoServer, warn_if_unverified

pytestmark = pytest.mark.component


def test_why_moto_could_not_start_is_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.moto")

    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            server = MotoServer(port=taken.getsockname()[1])
            with pytest.raises(RuntimeError, match="exited at start-up"):
                await server.start()
            await server.stop()

    asyncio.run(scenario())
    # The reader thread logs what the child wrote before it exited.
    said = [r.getMessage() for r in caplog.records if r.name == "emulator.moto"]
    assert any("in use" in line for line in said), said


SQS_FAILS = """
import json, sys
from emulator.moto_child import fast_sqs
from emulator.moto_child.__main__ import apply_fast_models

def broken():
    raise ImportError("a moto internal moved")

fast_sqs.apply = broken
applied = apply_fast_models()
from moto.kinesis import models
print(json.dumps({"applied": applied, "kinesis_patched": getattr(models, "_emulator_fast_kinesis", False)}))
"""


def test_a_fast_model_that_fails_to_apply_leaves_the_others_applied_and_says_why() -> None:
    done = subprocess.run([sys.executable, "-c", SQS_FAILS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"applied": {"SQS": False, "Kinesis": True, "CloudWatch Logs": True, "DynamoDB": True,
                                                   "SNS": True}, "kinesis_patched": True}
    assert "the fast SQS model could not be applied" in done.stderr
    assert "ImportError: a moto internal moved" in done.stderr  # the traceback, for the emulator's log


def test_the_unverified_version_warning_names_both_fast_models(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulator.moto_child import versions

    monkeypatch.setattr(versions, "installed_moto_version", lambda: "0.0.1")
    caplog.set_level(logging.WARNING, logger="emulator.moto")
    warn_if_unverified(True)
    [line] = [r.getMessage() for r in caplog.records if r.name == "emulator.moto"]
    assert "SQS" in line and "Kinesis" in line
