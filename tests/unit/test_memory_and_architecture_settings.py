"""`Architectures` in templates and `--memory-sizes` over the template's MemorySize."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.server import StartupError, with_memory_sizes
from emulator.template.loader import TemplateError, parse_template


def app(tmp_path: Path, **props: object):
    doc = {"Resources": {"F": {"Type": "AWS::Serverless::Function",
                               "Properties": {"FunctionName": "f", "InlineCode": "def handler(e, c): pass",
                                              "Handler": "index.handler", "Runtime": "python3.11", **props}}}}
    return parse_template(doc, base_dir=tmp_path)


def test_architecture_defaults_to_x86_64_and_reads_arm64(tmp_path: Path) -> None:
    assert app(tmp_path).functions["f"].architecture == "x86_64"
    assert app(tmp_path, Architectures=["arm64"]).functions["f"].architecture == "arm64"


@pytest.mark.parametrize("value", [["sparc"], ["x86_64", "arm64"], "arm64"])
def test_a_bad_architecture_is_a_template_error(tmp_path: Path, value: object) -> None:
    with pytest.raises(TemplateError, match="Architectures"):
        app(tmp_path, Architectures=value)


def test_memory_sizes_override_the_template(tmp_path: Path) -> None:
    spec = app(tmp_path, MemorySize=128)
    assert with_memory_sizes(spec, {"f": "1769"}).functions["f"].memory_mb == 1769
    assert with_memory_sizes(spec, {}) is spec
    with pytest.raises(StartupError, match="no function 'g'"):
        with_memory_sizes(spec, {"g": "256"})
    with pytest.raises(StartupError, match="128 to 10240"):
        with_memory_sizes(spec, {"f": "64"})
