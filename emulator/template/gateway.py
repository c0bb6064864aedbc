"""API Gateway in a template, into a `GatewaySpec`: the two calls the loader makes.

`prepare_gateway` (before anything is read) plays SAM's transform for APIs; `read_gateway`
(after the functions are read) collects every API, route, stage, usage plan and key: SAM's
APIs first (emulator.template.apis), then CloudFormation's own resources
(emulator.template.api_resources), then functions' events, then usage plans.
"""

from __future__ import annotations

from collections.abc import Mapping

from emulator.template import api_ids
from emulator.template.api_resources import read_declared_apis, read_usage_plans
from emulator.template.api_specs import GatewaySpec
from emulator.template.apis import (
    GatewayBuilder, ReadDocument, prepare_gateway, read_function_events, read_sam_apis, read_sam_usage_plans,
)
from emulator.template.intrinsics import StackScope
from emulator.template.specs import FunctionSpec

__all__ = ["GATEWAY_TYPES", "prepare_gateway", "read_gateway"]

# Every type read here; the loader keeps them out of its other resources.
GATEWAY_TYPES = frozenset({
    api_ids.SAM_API, api_ids.SAM_HTTP_API, api_ids.REST_API, api_ids.REST_RESOURCE, api_ids.REST_METHOD,
    api_ids.REST_STAGE, api_ids.REST_DEPLOYMENT, api_ids.USAGE_PLAN, api_ids.USAGE_PLAN_KEY, api_ids.API_KEY,
    api_ids.V2_API, api_ids.V2_INTEGRATION, api_ids.V2_ROUTE, api_ids.V2_STAGE, api_ids.V2_DEPLOYMENT,
    api_ids.REST_AUTHORIZER, api_ids.V2_AUTHORIZER,
})


def read_gateway(stack: StackScope, functions: Mapping[str, FunctionSpec], read_document: ReadDocument) -> GatewaySpec:
    builder = GatewayBuilder(stack, functions, read_document)
    included = [logical_id for logical_id in stack.types if stack.included(logical_id)]
    read_sam_apis(builder, included)
    read_declared_apis(builder, included)
    for spec in functions.values():
        read_function_events(builder, spec)
    read_sam_usage_plans(builder, included)
    read_usage_plans(builder, included)
    return builder.spec()
