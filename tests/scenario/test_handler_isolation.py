"""Handlers cannot read the user's secrets: not from the environment of the emulator or
of its moto child (/proc/<pid>/environ, even as root), not from the user's home (`~`
is a private folder of the emulator, removed when it stops).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from host_testkit import EXIT_WAIT_S, emulator_process, write_function

pytestmark = pytest.mark.scenario

PROBE = """
import os
def handler(event, context):
    secret = event["secret"].encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if secret in f.read():
                    found.append(int(name))
        except OSError:
            pass
    ancestors, pid = [], os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
        ancestors.append(pid)
    credentials = os.path.expanduser("~/.aws/credentials")
    try:
        with open(credentials) as f:
            leaked = secret.decode() in f.read()
    except OSError:
        leaked = False
    return {"found_in": found, "ancestors": ancestors, "home": os.path.expanduser("~"), "credentials_leaked": leaked}
"""


QUEUE_AND_MAPPING = """Resources:
  Feed:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: isolation-feed
      VisibilityTimeout: 360  # at least the function's timeout: Lambda refuses the mapping otherwise
"""
MAPPING_EVENTS = """      Events:
        Feed:
          Type: SQS
          Properties:
            Queue: arn:aws:sqs:us-east-1:123456789012:isolation-feed
"""


def test_handlers_find_no_secret_in_any_environment_or_in_home(tmp_path: Path) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    home = tmp_path / "user-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(f"[default]\naws_access_key_id = AKIAUSER\naws_secret_access_key = {secret}\n")
    env = {**os.environ, "HOME": str(home), "AWS_SECRET_ACCESS_KEY": secret, "MY_SERVICE_TOKEN": secret}
    template = write_function(tmp_path, PROBE)
    # A queue polled by a mapping, so that the poller process runs too (sources/poller_process.py).
    template.write_text(template.read_text().replace("Resources:\n", QUEUE_AND_MAPPING, 1) + MAPPING_EVENTS)
    with emulator_process(tmp_path, template, env=env) as emulator:
        children = _children(emulator.proc.pid)
        moto = [pid for pid in children if b"emulator.moto_child" in _cmdline(pid)]
        assert moto, "no moto child found"
        pollers = [pid for pid in children if b"emulator.sources.poller_host" in _cmdline(pid)]
        assert pollers, "no poller process found"
        request = urllib.request.Request(
            emulator.url + "/2015-03-31/functions/fn/invocations", data=json.dumps({"secret": secret}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            probe = json.loads(response.read())
        assert emulator.proc.pid in probe["ancestors"]  # it did look at the emulator's /proc entries
        assert probe["found_in"] == [], f"the secret is readable in /proc/{probe['found_in']}/environ"
        private_home = Path(probe["home"])
        assert private_home != home and not str(private_home).startswith(str(home))
        assert not probe["credentials_leaked"]
        assert private_home.is_dir()
        emulator.proc.send_signal(signal.SIGTERM)
        assert emulator.proc.wait(EXIT_WAIT_S) == 0
        assert not private_home.exists(), "the handlers' HOME was not removed at stop"


def test_the_control_plane_is_non_dumpable_and_its_environment_block_is_wiped() -> None:
    """What `emulator up` and the pytest fixtures do first, in a process of its own."""
    code = (
        "import ctypes, os, subprocess\n"
        "from emulator.execution.process_hardening import harden_control_plane\n"
        "harden_control_plane()\n"
        "block = open('/proc/self/environ', 'rb').read()\n"
        "child = subprocess.run(['sh', '-c', 'echo $PROBE_VALUE'], capture_output=True, text=True).stdout.strip()\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), len(block) > 0 and not any(block), os.environ['PROBE_VALUE'], child)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PROBE_VALUE": "still-here"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # Not dumpable; /proc/self/environ all zeros; os.environ and children keep every variable.
    assert done.stdout.split() == ["0", "True", "still-here", "still-here"]


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
