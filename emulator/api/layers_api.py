"""HTTP handlers for the template's layers: GetLayerVersion, GetLayerVersionByArn, ListLayers
and ListLayerVersions (read-only: layers come from the template). Paths, parameters and
shapes from the Lambda API model:
https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from emulator.api.routing import json_response
from emulator.errors import InvalidParameterValue, ResourceNotFound
from emulator.functions.registry import iso_timestamp
from emulator.template.specs import LayerSpec

# ListLayers / ListLayerVersions: MaxItems 1-50 (shape MaxLayerListItems), 50 by default.
MAX_LAYER_LIST_ITEMS = 50
_LAYER_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<version>\d+))?")


class LayersApi:
    def __init__(self, layers: Callable[[], Iterable[LayerSpec]]) -> None:
        self._layers = layers  # the prepared app's layers (emulator/functions/packages.py)
        self._created = time.time()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/2018-10-31/layers", self.list_layers),  # also GetLayerVersionByArn (?find=LayerVersion)
            web.get("/2018-10-31/layers/{name}/versions", self.list_layer_versions),
            web.get("/2018-10-31/layers/{name}/versions/{version}", self.get_layer_version),
        ]

    def _named(self, raw: str) -> list[LayerSpec]:
        match = _LAYER_ARN.fullmatch(raw)
        name = match["name"] if match else raw
        return [layer for layer in self._layers() if layer.name == name and (not match or layer.arn.startswith(raw))]

    def _item(self, layer: LayerSpec) -> dict[str, Any]:
        item: dict[str, Any] = {
            "LayerVersionArn": layer.arn, "Version": layer.version, "Description": layer.description,
            "CreatedDate": iso_timestamp(self._created),
            "CompatibleRuntimes": list(layer.compatible_runtimes),
            "CompatibleArchitectures": list(layer.compatible_architectures),
        }
        if layer.license_info is not None:
            item["LicenseInfo"] = layer.license_info
        return item

    def _version(self, layer: LayerSpec) -> dict[str, Any]:
        return {**self._item(layer), "LayerArn": layer.arn.rsplit(":", 1)[0],
                "Content": {"CodeSize": layer.size}}

    async def get_layer_version(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        for layer in self._named(request.match_info["name"]):
            if str(layer.version) == version:
                return json_response(self._version(layer))
        raise ResourceNotFound("The resource you requested does not exist.")

    async def list_layers(self, request: web.Request) -> web.Response:
        if request.query.get("find") == "LayerVersion":
            return await self._get_by_arn(request.query.get("Arn", ""))
        runtime, architecture = request.query.get("CompatibleRuntime"), request.query.get("CompatibleArchitecture")
        chosen = [layer for layer in self._layers()
                  if (runtime is None or runtime in layer.compatible_runtimes)
                  and (architecture is None or architecture in layer.compatible_architectures)]
        page, marker = _page(sorted(chosen, key=lambda layer: layer.name), request)
        body: dict[str, Any] = {"Layers": [
            {"LayerName": layer.name, "LayerArn": layer.arn.rsplit(":", 1)[0], "LatestMatchingVersion": self._item(layer)}
            for layer in page]}
        if marker:
            body["NextMarker"] = marker
        return json_response(body)

    async def _get_by_arn(self, arn: str) -> web.Response:
        match = _LAYER_ARN.fullmatch(arn)
        if match is None or match["version"] is None:
            raise InvalidParameterValue(f"1 validation error detected: Value '{arn}' at 'arn' failed to satisfy "
                                        "constraint: Member must be a layer version ARN")
        for layer in self._layers():
            if layer.arn == arn:
                return json_response(self._version(layer))
        raise ResourceNotFound("The resource you requested does not exist.")

    async def list_layer_versions(self, request: web.Request) -> web.Response:
        runtime = request.query.get("CompatibleRuntime")
        chosen = [layer for layer in self._named(request.match_info["name"])
                  if runtime is None or runtime in layer.compatible_runtimes]
        page, marker = _page(chosen, request)
        body: dict[str, Any] = {"LayerVersions": [self._item(layer) for layer in page]}
        if marker:
            body["NextMarker"] = marker
        return json_response(body)


def _page(layers: list[LayerSpec], request: web.Request) -> tuple[list[LayerSpec], str | None]:
    try:
        max_items = int(request.query.get("MaxItems", MAX_LAYER_LIST_ITEMS))
    except ValueError:
        max_items = 0
    if not 1 <= max_items <= MAX_LAYER_LIST_ITEMS:
        raise InvalidParameterValue(f"1 validation error detected: Value '{request.query.get('MaxItems')}' at "
                                    f"'maxItems' failed to satisfy constraint: Member must have value between 1 and "
                                    f"{MAX_LAYER_LIST_ITEMS}")
    start = 0
    marker = request.query.get("Marker")
    if marker:
        names = [layer.arn for layer in layers]
        if marker not in names:
            raise InvalidParameterValue(f"Invalid marker: {marker}")
        start = names.index(marker)
    end = start + max_items
    return layers[start:end], layers[end].arn if end < len(layers) else None
