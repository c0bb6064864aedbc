"""`inline_function`'s code folders (emulator/pytest_plugin.py) go when the process that made
them exits, not before (a forked child exiting normally leaves them), and not one of them
stays behind in the temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from emulator.pytest_plugin import inline_function

    folders = [inline_function("def handler(e, c):\\n    return e\\n")["Properties"]["CodeUri"] for _ in range(3)]
    folders.append(inline_function("def main(e, c):\\n    return 1\\n", handler="pkg.app.main")["Properties"]["CodeUri"])
    child = os.fork()
    if child == 0:
        sys.exit(0)  # runs the child's exit handlers: they must leave the parent's folders alone
    os.waitpid(child, 0)
    present = [Path(f).is_dir() for f in folders] + [(Path(folders[-1]) / "pkg" / "app.py").is_file()]
    print(json.dumps({"folders": folders, "present": present}))
""")


def test_the_code_folders_live_as_long_as_the_process_and_then_go(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                         env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert all(result["present"])  # while the process ran, after its forked child had exited
    assert len(set(result["folders"])) == 4
    assert all(Path(folder).is_relative_to(tmp_path) for folder in result["folders"])
    assert not any(Path(folder).exists() for folder in result["folders"])
    assert list(tmp_path.iterdir()) == []  # nothing left in the temporary folder
