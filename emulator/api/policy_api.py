"""HTTP handlers for AddPermission, RemovePermission, GetPolicy, TagResource,
UntagResource and ListTags (thin: parse, call emulator/service/function_policies.py,
serialise). Paths and status codes from the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json).
"""

from __future__ import annotations

import json

from aiohttp import web

from emulator.api.routing import json_response, read_json_object
from emulator.service.function_policies import FunctionPolicies


class PolicyApi:
    def __init__(self, policies: FunctionPolicies) -> None:
        self.policies = policies

    def routes(self) -> list[web.RouteDef]:
        policy = "/2015-03-31/functions/{name}/policy"
        return [
            web.post(policy, self.add_permission),
            web.get(policy, self.get_policy),
            web.delete(policy + "/{sid}", self.remove_permission),
            web.post("/2017-03-31/tags/{arn}", self.tag),
            web.delete("/2017-03-31/tags/{arn}", self.untag),
            web.get("/2017-03-31/tags/{arn}", self.list_tags),
        ]

    async def add_permission(self, request: web.Request) -> web.Response:
        statement = self.policies.add_permission(request.match_info["name"], request.query.get("Qualifier"),
                                                 await read_json_object(request))
        return json_response({"Statement": json.dumps(statement, separators=(",", ":"))}, status=201)

    async def get_policy(self, request: web.Request) -> web.Response:
        policy = self.policies.get_policy(request.match_info["name"], request.query.get("Qualifier"))
        return json_response({"Policy": policy.document(), "RevisionId": policy.revision_id})

    async def remove_permission(self, request: web.Request) -> web.Response:
        self.policies.remove_permission(request.match_info["name"], request.query.get("Qualifier"),
                                        request.match_info["sid"], request.query.get("RevisionId"))
        return web.Response(status=204)

    async def tag(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        self.policies.tag(request.match_info["arn"], body.get("Tags"))
        return web.Response(status=204)

    async def untag(self, request: web.Request) -> web.Response:
        self.policies.untag(request.match_info["arn"], request.query.getall("tagKeys", []))
        return web.Response(status=204)

    async def list_tags(self, request: web.Request) -> web.Response:
        return json_response({"Tags": self.policies.list_tags(request.match_info["arn"])})
