"""HTTP handlers of the event source mapping API (thin: parse, call the SourceManager, serialise).

Paths and status codes from the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json):
create, update and delete answer 202, get and list 200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.errors import InvalidParameterValue
from emulator.api.routing import json_response, read_json_object

if TYPE_CHECKING:
    from emulator.sources.manager import SourceManager

BASE = "/2015-03-31/event-source-mappings"


class EsmApi:
    def __init__(self, manager: "SourceManager") -> None:
        self.manager = manager

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(BASE, self.create),
            web.post(BASE + "/", self.create),
            web.get(BASE, self.list),
            web.get(BASE + "/", self.list),
            web.get(BASE + "/{uuid}", self.get),
            web.put(BASE + "/{uuid}", self.update),
            web.delete(BASE + "/{uuid}", self.delete),
        ]

    async def create(self, request: web.Request) -> web.Response:
        return json_response(await self.manager.create(await read_json_object(request)), 202)

    async def get(self, request: web.Request) -> web.Response:
        return json_response(self.manager.get(request.match_info["uuid"]).to_api(), 200)

    async def update(self, request: web.Request) -> web.Response:
        return json_response(await self.manager.update(request.match_info["uuid"], await read_json_object(request)), 202)

    async def delete(self, request: web.Request) -> web.Response:
        return json_response(await self.manager.delete(request.match_info["uuid"]), 202)

    async def list(self, request: web.Request) -> web.Response:
        query = request.query
        raw = query.get("MaxItems")
        try:
            max_items = int(raw) if raw is not None else None
        except ValueError:
            raise InvalidParameterValue(f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
                                        "constraint: Member must be an integer") from None
        options: dict[str, Any] = {"function_name": query.get("FunctionName"),
                                   "event_source_arn": query.get("EventSourceArn"), "marker": query.get("Marker")}
        if max_items is not None:
            options["max_items"] = max_items
        return json_response(self.manager.list_mappings(**options), 200)
