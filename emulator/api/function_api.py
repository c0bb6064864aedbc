"""HTTP handlers for CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration,
DeleteFunction, and the download GetFunction's `Code.Location` points at (thin: parse,
call emulator/service/function_lifecycle.py, serialise).

Paths and status codes from the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from emulator.api.routing import json_response, read_json_object
from emulator.api.shapes import function_configuration
from emulator.functions.registry import LATEST, FunctionVersion
from emulator.functions.zip_package import MAX_UPLOAD_REQUEST_BYTES, zip_folder
from emulator.service.function_lifecycle import FunctionLifecycle

CODE_PATH = "/_emulator/code/{name}"


def code_url(request: web.Request, version: FunctionVersion) -> str:
    """Where GetFunction's Code.Location points: this emulator, as the caller reached it."""
    return (f"{request.scheme}://{request.host}" + CODE_PATH.format(name=quote(version.name, safe=""))
            + f"?Qualifier={quote(version.version, safe='')}")


class FunctionApi:
    def __init__(self, lifecycle: FunctionLifecycle, downloads_dir: Path) -> None:
        self.lifecycle = lifecycle
        self.downloads_dir = downloads_dir
        self._zipping: dict[Path, asyncio.Future[Path]] = {}

    def routes(self) -> list[web.RouteDef]:
        fn = "/2015-03-31/functions/{name}"
        upload = {"max_body": (MAX_UPLOAD_REQUEST_BYTES, "CreateFunction")}
        return [
            web.post("/2015-03-31/functions", self.create, **upload),
            web.post("/2015-03-31/functions/", self.create, **upload),
            web.put(fn + "/code", self.update_code, max_body=(MAX_UPLOAD_REQUEST_BYTES, "UpdateFunctionCode")),
            web.put(fn + "/configuration", self.update_configuration),
            web.delete(fn, self.delete),
            web.get(CODE_PATH, self.download_code),
        ]

    async def create(self, request: web.Request) -> web.Response:
        function, version = await self.lifecycle.create(await read_json_object(request))
        lifecycle = function.lifecycle if version.version == LATEST else None
        return json_response(function_configuration(version, lifecycle), status=201)

    async def update_code(self, request: web.Request) -> web.Response:
        function, version = await self.lifecycle.update_code(request.match_info["name"], await read_json_object(request))
        return json_response(function_configuration(version, function.lifecycle if version.version == LATEST else None))

    async def update_configuration(self, request: web.Request) -> web.Response:
        function, version = await self.lifecycle.update_configuration(request.match_info["name"],
                                                                      await read_json_object(request))
        return json_response(function_configuration(version, function.lifecycle))

    async def delete(self, request: web.Request) -> web.Response:
        await self.lifecycle.delete(request.match_info["name"], request.query.get("Qualifier"))
        return web.Response(status=204)

    async def download_code(self, request: web.Request) -> web.StreamResponse:
        version = self.lifecycle.registry.resolve(request.match_info["name"], request.query.get("Qualifier"))
        path = version.package if version.package is not None else await self._zipped(version)
        return web.FileResponse(path, headers={"Content-Type": "application/zip"})

    async def _zipped(self, version: FunctionVersion) -> Path:
        """A .zip of a template function's folder, made off the event loop once per code."""
        key = hashlib.sha256(f"{version.key}#{version.code_sha256}#{version.spec.code_dir}".encode()).hexdigest()
        target = self.downloads_dir / f"{key}.zip"
        if target.exists():
            return target
        pending = self._zipping.get(target)
        if pending is None:
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            pending = self._zipping[target] = asyncio.ensure_future(asyncio.to_thread(zip_folder, version.spec.code_dir, target))
            pending.add_done_callback(lambda _: self._zipping.pop(target, None))
        return await asyncio.shield(pending)
