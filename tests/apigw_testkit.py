"""Raw HTTP for the API Gateway scenario tests: http.client, so every header, status and byte of
the body is what the emulator sent."""

from __future__ import annotations

import functools
import http.client
import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def request(base_url: str, method: str, path: str, *, headers: dict[str, str] | None = None,
            body: bytes | None = None, host: str | None = None, timeout: float = 60.0) -> Reply:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if host is not None:
            sent["Host"] = host
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def gateway_metrics(handle: Any, api_id: str, stage: str) -> dict[str, Any]:
    return handle.metrics()["api_gateway"]["apis"][api_id]["Stages"][stage]


def fresh_gateway(handle: Any) -> Callable[..., Reply]:
    """`request` bound to the emulator's API Gateway endpoint, once the emulator is reset (its
    counters, throttling buckets and caches): what each API Gateway test starts from."""
    handle.reset()
    return functools.partial(request, handle.api_url)
