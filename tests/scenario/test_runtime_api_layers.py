"""Layers reach functions run by a runtime interface client, as a local process
(`--execution process-runtime-api`) and in a container (`--execution container`, where they
are mounted at /opt): merged in layer order, a later layer's files replacing an earlier
one's, found where AWS's base images search them (Python: python/lib/python3.X/site-packages
and python/; Node.js: nodejs/nodeNN/node_modules and nodejs/node_modules; bin/ on PATH):
https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html#packaging-layers-paths.
The fork backend's layers are tested in test_real_app_templates.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import call
from execution_testkit import (
    CONTAINER, PROCESS, PYTHON_RUNTIME, _NO_ENGINE, _no_awslambdaric, node_ric_command, node_runtime_image, settings,
)
from emulator.pytest_plugin import EmulatorHandle, running_emulator

pytestmark = pytest.mark.scenario

NODE_RUNTIME = "nodejs20.x"
PYTHON_HANDLER = """\
import os, subprocess

def handler(event, context):
    import common, extras_pkg, shared_utils
    marker = open("/opt/marker.txt").read() if os.path.exists("/opt/marker.txt") else None
    return {"shared": shared_utils.WHO, "common": common.WHO, "extras": extras_pkg.WHO, "marker": marker,
            "tool": subprocess.run(["greet"], capture_output=True, text=True).stdout.strip(),
            "ld": os.environ.get("LD_LIBRARY_PATH", "")}
"""
NODE_HANDLER = """\
const fs = require('fs');
const { execFileSync } = require('child_process');
exports.handler = async () => ({
  shared: require('shared-js').WHO, common: require('common-js').WHO, extras: require('extras-js').WHO,
  marker: fs.existsSync('/opt/marker.txt') ? fs.readFileSync('/opt/marker.txt', 'utf8') : null,
  tool: execFileSync('greet').toString().trim(), ld: process.env.LD_LIBRARY_PATH || '',
});
"""
LAYER_FILES = {
    "shared": {
        "python/shared_utils.py": "WHO = 'shared'\n",
        "python/common.py": "WHO = 'shared'\n",
        "nodejs/node_modules/shared-js/index.js": "exports.WHO = 'shared';\n",
        "nodejs/node_modules/common-js/index.js": "exports.WHO = 'shared';\n",
        "bin/greet": "#!/bin/sh\necho hello from a layer\n",
        "marker.txt": "shared",
    },
    "extras": {
        f"python/lib/{PYTHON_RUNTIME}/site-packages/extras_pkg/__init__.py": "WHO = 'extras'\n",
        "python/common.py": "WHO = 'extras'\n",
        "nodejs/node20/node_modules/extras-js/index.js": "exports.WHO = 'extras';\n",
        "nodejs/node_modules/common-js/index.js": "exports.WHO = 'extras';\n",
        "marker.txt": "extras",
    },
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _template(root: Path, runtime: str) -> dict[str, Any]:
    for layer, files in LAYER_FILES.items():
        _write(root / layer, files)
    (root / "shared" / "bin" / "greet").chmod(0o755)
    handler = "app.handler"
    _write(root / "code", {"app.py": PYTHON_HANDLER} if runtime == PYTHON_RUNTIME else {"app.js": NODE_HANDLER})
    return {"Resources": {
        "Shared": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"LayerName": "shared", "ContentUri": str(root / "shared")}},
        "Extras": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"LayerName": "extras", "Content": str(root / "extras")}},
        "Layered": {"Type": "AWS::Serverless::Function", "Properties": {
            "CodeUri": str(root / "code"), "Handler": handler, "Runtime": runtime, "MemorySize": 1024, "Timeout": 30,
            "Layers": [{"Ref": "Shared"}, {"Ref": "Extras"}]}},
    }}


_needs_engine = pytest.mark.skipif(_NO_ENGINE is not None, reason=f"no container engine: {_NO_ENGINE}")
_needs_awslambdaric = pytest.mark.skipif(_no_awslambdaric, reason="awslambdaric is not installed: pip install awslambdaric")


@pytest.fixture(scope="module", params=[
    pytest.param((PYTHON_RUNTIME, PROCESS), id="python-process", marks=_needs_awslambdaric),
    pytest.param((PYTHON_RUNTIME, CONTAINER), id="python-container", marks=_needs_engine),
    pytest.param((NODE_RUNTIME, PROCESS), id="node-process"),
    pytest.param((NODE_RUNTIME, CONTAINER), id="node-container", marks=_needs_engine),
])
def emu(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    runtime, execution = request.param
    config: dict[str, Any] = {"execution": execution}
    if runtime == NODE_RUNTIME:
        command, reason = node_ric_command()
        if command is None:
            pytest.skip(f"Node's runtime interface client is not available: {reason}")
        if execution == PROCESS:
            config["runtime_command"] = ((NODE_RUNTIME, command),)
        else:
            config = {**settings(CONTAINER), "runtime_image": ((NODE_RUNTIME, node_runtime_image()),)}
    elif execution == CONTAINER:
        config = settings(CONTAINER)
    with running_emulator(_template(tmp_path_factory.mktemp("layers"), runtime), backend="none", **config) as handle:
        yield handle


def test_layers_are_found_in_order_where_the_runtime_searches_them(emu: EmulatorHandle) -> None:
    result = call(emu.lambda_client, "Layered", {})
    assert result.function_error is None, result.payload
    payload = result.payload
    assert (payload["shared"], payload["common"], payload["extras"]) == ("shared", "extras", "extras")  # the later layer wins
    assert payload["tool"] == "hello from a layer"  # bin/ on PATH
    if emu.config.execution == CONTAINER:
        assert payload["marker"] == "extras"  # /opt is the merged layers
        assert "/opt/lib" in payload["ld"].split(":")  # the image's own, not the host's folder
    else:
        assert payload["ld"].endswith("/lib") and "/opt/lib" not in payload["ld"].split(":")  # the merged folder's lib/
