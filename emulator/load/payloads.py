"""What each request carries: a fixed payload, lines of a file, a template with variables, or
a function of yours.

    payload: {"name": "x"}                     the same JSON every time
    payload_file: events.jsonl                 one line per request, in turn (a .json file: the whole file)
    template: '{"order": {{sequence}}, "id": "{{uuid}}", "at": {{time_ms}}, "qty": {{random_int:1:9}}}'
    generator: mymodule:make_event             make_event(index, rng) -> dict, list, str or bytes

Template variables: `{{sequence}}` (the request's number in the run, from 0), `{{worker}}`,
`{{uuid}}`, `{{random}}` (a float in [0, 1)), `{{random_int:LOW:HIGH}}`, `{{time}}` (epoch
seconds), `{{time_ms}}`, `{{iso_time}}`. The RNG is seeded per worker from the scenario's
seed, so a run can be repeated. A template is split once; each request joins its parts.
"""

from __future__ import annotations

import importlib
import json
import random
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\{\{\s*([a-z_]+)(?::(-?\d+):(-?\d+))?\s*\}\}")
VARIABLES = ("sequence", "worker", "uuid", "random", "random_int", "time", "time_ms", "iso_time")


class PayloadError(ValueError):
    """A payload source that cannot be used; the message says why."""


@dataclass(frozen=True)
class PayloadSpec:
    """Picklable: each worker process builds its own `PayloadSource` from it."""

    kind: str  # "fixed", "lines", "template", "generator"
    value: Any  # bytes (fixed), list of bytes (lines), str (template), "module:function" (generator)
    base_dir: str = "."  # where a generator's module is looked for first


def payload_spec(settings: dict[str, Any], base_dir: Path) -> PayloadSpec:
    """From a scenario's target settings (`payload`, `payload_file`, `template`, `generator`)."""
    given = [key for key in ("payload", "payload_file", "template", "generator") if settings.get(key) is not None]
    if len(given) > 1:
        raise PayloadError(f"give one of payload, payload_file, template, generator (got {', '.join(given)})")
    if not given:
        return PayloadSpec("fixed", b"{}")
    key = given[0]
    raw = settings[key]
    if key == "payload":
        return PayloadSpec("fixed", raw.encode() if isinstance(raw, str) else json.dumps(raw).encode())
    if key == "payload_file":
        path = (base_dir / str(raw)).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PayloadError(f"payload_file {path}: {exc.strerror or exc}") from None
        if path.suffix in (".jsonl", ".ndjson", ".txt"):
            lines = [line for line in data.splitlines() if line.strip()]
            if not lines:
                raise PayloadError(f"payload_file {path} has no lines")
            return PayloadSpec("lines", lines)
        return PayloadSpec("fixed", data)
    if key == "template":
        text = str(raw)
        for match in _VARIABLE.finditer(text):
            if match.group(1) not in VARIABLES:
                raise PayloadError(f"template: unknown variable {{{{{match.group(1)}}}}} (known: {', '.join(VARIABLES)})")
            if match.group(1) == "random_int" and match.group(2) is None:
                raise PayloadError("template: write {{random_int:LOW:HIGH}}")
        return PayloadSpec("template", text)
    text = str(raw)
    if ":" not in text:
        raise PayloadError(f"generator must be 'module:function', got {text!r}")
    return PayloadSpec("generator", text, str(base_dir))


class PayloadSource:
    """Makes request bodies in a worker: `static` is the one body when every request has the
    same (the generator then builds that request once)."""

    def __init__(self, spec: PayloadSpec, worker: int, seed: int | None) -> None:
        self.spec = spec
        self.worker = worker
        self.rng = random.Random(None if seed is None else seed * 1_000_003 + worker)
        self.static: bytes | None = spec.value if spec.kind == "fixed" else None
        self._make: Callable[[int], bytes] = self._compile()

    def __call__(self, index: int) -> bytes:
        return self._make(index)

    def _compile(self) -> Callable[[int], bytes]:
        spec = self.spec
        if spec.kind == "fixed":
            body = spec.value
            return lambda index: body
        if spec.kind == "lines":
            lines = spec.value
            return lambda index: lines[index % len(lines)]
        if spec.kind == "template":
            return self._template(spec.value)
        return self._generator(spec.value, spec.base_dir)

    def _template(self, text: str) -> Callable[[int], bytes]:
        parts: list[Any] = []
        position = 0
        for match in _VARIABLE.finditer(text):
            parts.append(text[position:match.start()])
            parts.append(self._variable(match.group(1), match.group(2), match.group(3)))
            position = match.end()
        parts.append(text[position:])
        pieces = tuple(parts)

        def render(index: int) -> bytes:
            return "".join(part if isinstance(part, str) else part(index) for part in pieces).encode()

        return render

    def _variable(self, name: str, low: str | None, high: str | None) -> Callable[[int], str]:
        rng = self.rng
        worker = str(self.worker)
        if name == "sequence":
            return str
        if name == "worker":
            return lambda index: worker
        if name == "uuid":
            return lambda index: str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if name == "random":
            return lambda index: repr(rng.random())
        if name == "random_int":
            a, b = int(low or 0), int(high or 0)
            return lambda index: str(rng.randint(min(a, b), max(a, b)))
        if name == "time":
            return lambda index: f"{time.time():.6f}"
        if name == "time_ms":
            return lambda index: str(int(time.time() * 1000))
        return lambda index: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"

    def _generator(self, target: str, base_dir: str) -> Callable[[int], bytes]:
        module_name, _, function_name = target.partition(":")
        if base_dir not in sys.path:
            sys.path.insert(0, base_dir)
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as exc:
            raise PayloadError(f"generator {target}: {exc}") from None
        rng = self.rng

        def make(index: int) -> bytes:
            value = function(index, rng)
            if isinstance(value, bytes):
                return value
            if isinstance(value, str):
                return value.encode()
            return json.dumps(value).encode()

        return make
