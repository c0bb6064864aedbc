"""HTTP handlers for concurrency, versions, aliases, provisioned concurrency and event
invoke configuration (paths and status codes from the Lambda API model:
https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.service.async_queue import EventInvokeConfig
from emulator.service.function_admin import FunctionAdmin, ProvisionedConfig
from emulator.functions.registry import iso_timestamp
from emulator.api.routing import json_response, read_json_object
from emulator.api.shapes import function_configuration


def _provisioned_shape(config: ProvisionedConfig, with_arn: str | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": config.allocated,
        "AllocatedProvisionedConcurrentExecutions": config.allocated,
        "Status": config.status,
        "LastModified": iso_timestamp(config.last_modified),
    }
    if config.status_reason:
        shape["StatusReason"] = config.status_reason
    if with_arn:
        shape["FunctionArn"] = with_arn
    return shape


def _event_invoke_shape(arn: str, config: EventInvokeConfig) -> dict[str, Any]:
    destinations: dict[str, Any] = {}
    if config.on_success:
        destinations["OnSuccess"] = {"Destination": config.on_success}
    if config.on_failure:
        destinations["OnFailure"] = {"Destination": config.on_failure}
    return {
        "LastModified": config.last_modified,
        "FunctionArn": arn,
        "MaximumRetryAttempts": config.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": config.maximum_event_age_s,
        "DestinationConfig": destinations,
    }


class LambdaConfigApi:
    def __init__(self, admin: FunctionAdmin) -> None:
        self.admin = admin

    def routes(self) -> list[web.RouteDef]:
        fn = "/functions/{name}"
        return [
            web.put("/2017-10-31" + fn + "/concurrency", self.put_concurrency),
            web.get("/2019-09-30" + fn + "/concurrency", self.get_concurrency),
            web.delete("/2017-10-31" + fn + "/concurrency", self.delete_concurrency),
            web.get("/2016-08-19/account-settings", self.account_settings),
            web.get("/2016-08-19/account-settings/", self.account_settings),
            web.post("/2015-03-31" + fn + "/versions", self.publish_version),
            web.get("/2015-03-31" + fn + "/versions", self.list_versions),
            web.post("/2015-03-31" + fn + "/aliases", self.create_alias),
            web.get("/2015-03-31" + fn + "/aliases", self.list_aliases),
            web.get("/2015-03-31" + fn + "/aliases/{alias}", self.get_alias),
            web.put("/2015-03-31" + fn + "/aliases/{alias}", self.update_alias),
            web.delete("/2015-03-31" + fn + "/aliases/{alias}", self.delete_alias),
            web.put("/2019-09-30" + fn + "/provisioned-concurrency", self.put_provisioned),
            web.get("/2019-09-30" + fn + "/provisioned-concurrency", self.get_provisioned),
            web.delete("/2019-09-30" + fn + "/provisioned-concurrency", self.delete_provisioned),
            web.put("/2019-09-25" + fn + "/event-invoke-config", self.put_event_invoke_config),
            web.post("/2019-09-25" + fn + "/event-invoke-config", self.update_event_invoke_config),
            web.get("/2019-09-25" + fn + "/event-invoke-config", self.get_event_invoke_config),
            web.delete("/2019-09-25" + fn + "/event-invoke-config", self.delete_event_invoke_config),
            web.get("/2019-09-25" + fn + "/event-invoke-config/list", self.list_event_invoke_configs),
        ]

    # -- concurrency ---------------------------------------------------------------------
    async def put_concurrency(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        value = self.admin.put_concurrency(request.match_info["name"], body.get("ReservedConcurrentExecutions"))
        return json_response({"ReservedConcurrentExecutions": value})

    async def get_concurrency(self, request: web.Request) -> web.Response:
        value = self.admin.get_concurrency(request.match_info["name"])
        return json_response({} if value is None else {"ReservedConcurrentExecutions": value})

    async def delete_concurrency(self, request: web.Request) -> web.Response:
        self.admin.delete_concurrency(request.match_info["name"])
        return web.Response(status=204)

    async def account_settings(self, request: web.Request) -> web.Response:
        ledger = self.admin.service.ledger
        functions = self.admin.registry.functions
        return json_response(
            {
                "AccountLimit": {
                    # Code-size quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
                    "TotalCodeSize": 80_530_636_800,
                    "CodeSizeUnzipped": 262_144_000,
                    "CodeSizeZipped": 52_428_800,
                    "ConcurrentExecutions": ledger.account_limit,
                    "UnreservedConcurrentExecutions": ledger.unreserved_limit,
                },
                "AccountUsage": {
                    "TotalCodeSize": sum(f.latest.code_size for f in functions.values()),
                    "FunctionCount": len(functions),
                },
            }
        )

    # -- versions and aliases ------------------------------------------------------------
    async def publish_version(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        version = await self.admin.publish_version(request.match_info["name"], body.get("Description"), body.get("CodeSha256"))
        return json_response(function_configuration(version), status=201)

    async def list_versions(self, request: web.Request) -> web.Response:
        function = self.admin.function(request.match_info["name"])
        versions = [function.latest] + [function.versions[v] for v in sorted(function.versions, key=int)]
        return json_response({"Versions": [function_configuration(v) for v in versions]})

    async def create_alias(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        shape = self.admin.create_alias(
            request.match_info["name"], str(body.get("Name", "")), str(body.get("FunctionVersion", "")), body.get("Description", "")
        )
        return json_response(shape, status=201)

    async def list_aliases(self, request: web.Request) -> web.Response:
        function = self.admin.function(request.match_info["name"])
        version = request.query.get("FunctionVersion")
        aliases = [a for a in sorted(function.aliases) if version is None or function.aliases[a] == version]
        return json_response({"Aliases": [self.admin.alias_configuration(function, a) for a in aliases]})

    async def get_alias(self, request: web.Request) -> web.Response:
        return json_response(self.admin.get_alias(request.match_info["name"], request.match_info["alias"]))

    async def update_alias(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        shape = self.admin.update_alias(
            request.match_info["name"], request.match_info["alias"], body.get("FunctionVersion"), body.get("Description")
        )
        return json_response(shape)

    async def delete_alias(self, request: web.Request) -> web.Response:
        self.admin.delete_alias(request.match_info["name"], request.match_info["alias"])
        return web.Response(status=204)

    # -- provisioned concurrency ---------------------------------------------------------
    async def put_provisioned(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        config = self.admin.put_provisioned(
            request.match_info["name"], request.query.get("Qualifier"), body.get("ProvisionedConcurrentExecutions")
        )
        return json_response(_provisioned_shape(config), status=202)

    async def get_provisioned(self, request: web.Request) -> web.Response:
        if request.query.get("List") == "ALL":
            return await self.list_provisioned(request)
        config = self.admin.get_provisioned(request.match_info["name"], request.query.get("Qualifier"))
        return json_response(_provisioned_shape(config))

    async def list_provisioned(self, request: web.Request) -> web.Response:
        function = self.admin.function(request.match_info["name"])
        configs = self.admin.list_provisioned(function.name)
        return json_response(
            {"ProvisionedConcurrencyConfigs": [_provisioned_shape(c, f"{function.latest.function_arn}:{c.qualifier}") for c in configs]}
        )

    async def delete_provisioned(self, request: web.Request) -> web.Response:
        self.admin.delete_provisioned(request.match_info["name"], request.query.get("Qualifier"))
        return web.Response(status=204)

    # -- event invoke config -------------------------------------------------------------
    async def put_event_invoke_config(self, request: web.Request) -> web.Response:
        arn, config = self.admin.put_event_invoke_config(request.match_info["name"], request.query.get("Qualifier"), await read_json_object(request), merge=False)
        return json_response(_event_invoke_shape(arn, config))

    async def update_event_invoke_config(self, request: web.Request) -> web.Response:
        arn, config = self.admin.put_event_invoke_config(request.match_info["name"], request.query.get("Qualifier"), await read_json_object(request), merge=True)
        return json_response(_event_invoke_shape(arn, config))

    async def get_event_invoke_config(self, request: web.Request) -> web.Response:
        arn, config = self.admin.get_event_invoke_config(request.match_info["name"], request.query.get("Qualifier"))
        return json_response(_event_invoke_shape(arn, config))

    async def delete_event_invoke_config(self, request: web.Request) -> web.Response:
        self.admin.delete_event_invoke_config(request.match_info["name"], request.query.get("Qualifier"))
        return web.Response(status=204)

    async def list_event_invoke_configs(self, request: web.Request) -> web.Response:
        configs = self.admin.list_event_invoke_configs(request.match_info["name"])
        return json_response({"FunctionEventInvokeConfigs": [_event_invoke_shape(arn, c) for arn, c in configs]})
