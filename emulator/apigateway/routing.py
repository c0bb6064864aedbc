"""Which API, stage and route a request is for. Pure: no I/O, no clock.

Stage first: a REST API's stage is always the first path segment
(`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}/...`,
https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html). An HTTP
API's request goes to the stage its first segment names, else to its `$default` stage,
else nowhere (404). Then the route, most specific first: literal segments before path
variables before a greedy `{proxy+}`, the exact method before `ANY`, and `$default` last
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html#http-api-develop-routes.evaluation).
A greedy variable needs at least one segment: `/{proxy+}` does not match `/`.

Without an `{api-id}.execute-api.` host, the APIs are tried in template order and the first
whose stage and route match serves the request (README 'Choices').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import unquote

from emulator.template.api_ids import derived_id, root_resource_id
from emulator.template.api_specs import ANY_METHOD, DEFAULT_ROUTE, HTTP, REST, ApiSpec, RouteSpec, StageSpec

EXECUTE_API_LABEL = ".execute-api."
LOOKUP_MEMO = 4096


@dataclass(slots=True)
class _Node:
    """One path segment of an API's route tree."""

    literals: dict[str, "_Node"] = field(default_factory=dict)
    variable: "_Node | None" = None
    variable_name: str = ""
    greedy: "_Node | None" = None
    greedy_name: str = ""
    methods: dict[str, RouteSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    api: ApiSpec
    stage: StageSpec
    route: RouteSpec
    path: str  # the path after the stage prefix (REST `path`), decoded
    raw_path: str  # the request's path as received, stage included, still encoded
    path_parameters: dict[str, str] | None
    resource_id: str  # REST: the id of the matched resource


@dataclass(frozen=True, slots=True)
class RouteMiss:
    """No route: `api` and `stage` are what did match, for the answer and the metrics."""

    api: ApiSpec | None
    stage: StageSpec | None
    unknown_api: bool = False  # an execute-api host naming no API of this template


class ServedApi:
    """One API's stages and compiled route tree."""

    def __init__(self, spec: ApiSpec) -> None:
        self.spec = spec
        self.stages = {stage.name: stage for stage in spec.stages}
        self.default_stage = self.stages.get(DEFAULT_ROUTE) if spec.kind == HTTP else None
        self.root = _Node()
        self.default_route: RouteSpec | None = None
        # REST resource ids, computed once (a hash each): requestContext.resourceId.
        self.resource_ids = {route.path: resource_id(spec, route.path) for route in spec.routes} if spec.kind == REST else {}
        for route in spec.routes:
            if route.path == DEFAULT_ROUTE:
                self.default_route = route
            else:
                self._add(route)

    def _add(self, route: RouteSpec) -> None:
        node = self.root
        for segment in _segments(route.path):
            if segment.startswith("{") and segment.endswith("+}"):
                if node.greedy is None:
                    node.greedy, node.greedy_name = _Node(), segment[1:-2]
                node = node.greedy
            elif segment.startswith("{") and segment.endswith("}"):
                if node.variable is None:
                    node.variable, node.variable_name = _Node(), segment[1:-1]
                node = node.variable
            else:
                node = node.literals.setdefault(segment, _Node())
        node.methods[route.method] = route

    def select_stage(self, segments: list[str]) -> tuple[StageSpec, int] | None:
        """The stage and how many leading segments name it."""
        if segments and segments[0] in self.stages and segments[0] != DEFAULT_ROUTE:
            return self.stages[segments[0]], 1
        if self.default_stage is not None:
            return self.default_stage, 0
        return None

    def match_route(self, method: str, segments: list[str]) -> tuple[RouteSpec, dict[str, str]] | None:
        for node, parameters in _walk(self.root, segments, 0, {}):
            route = node.methods.get(method) or node.methods.get(ANY_METHOD)
            if route is not None:
                return route, parameters
        if self.default_route is not None:
            return self.default_route, {}
        return None


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _walk(node: _Node, segments: list[str], index: int, parameters: dict[str, str]) -> Iterator[tuple[_Node, dict[str, str]]]:
    """Nodes the path reaches, most specific first."""
    if index == len(segments):
        yield node, parameters
        return
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        yield from _walk(child, segments, index + 1, parameters)
    if node.variable is not None:
        yield from _walk(node.variable, segments, index + 1, {**parameters, node.variable_name: segment})
    if node.greedy is not None:
        yield node.greedy, {**parameters, node.greedy_name: "/".join(segments[index:])}


def resource_id(api: ApiSpec, path: str) -> str:
    """A REST resource's id (stable, like the API's); the root is the API's RootResourceId."""
    if path == "/":
        return root_resource_id(api.logical_id)
    return derived_id("resource-path", f"{api.api_id}:{path}", 6)


class Catalogue:
    """Every API served on the gateway's port."""

    def __init__(self, apis: list[ApiSpec]) -> None:
        self.apis = [ServedApi(api) for api in apis]
        self.by_id = {api.spec.api_id: api for api in self.apis}
        self._memo: dict[tuple[str | None, str, str], RouteMatch | RouteMiss] = {}

    def lookup(self, host: str, method: str, raw_path: str) -> RouteMatch | RouteMiss:
        """The route of a request; the answers for the last LOOKUP_MEMO distinct (API, method,
        path) are remembered (a load test repeats a few paths; the memo is emptied when full)."""
        key = (api_id_of_host(host), method, raw_path)
        found = self._memo.get(key)
        if found is None:
            found = self._lookup(key[0], method, raw_path)
            if len(self._memo) >= LOOKUP_MEMO:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _lookup(self, api_id: str | None, method: str, raw_path: str) -> RouteMatch | RouteMiss:
        candidates = self.apis
        if api_id is not None:
            served = self.by_id.get(api_id)
            if served is None:
                return RouteMiss(None, None, unknown_api=True)
            candidates = [served]
        decoded = [unquote(segment) for segment in _segments(raw_path)]
        first_miss: RouteMiss | None = None
        for served in candidates:
            stage = served.select_stage(decoded)
            if stage is None:
                continue
            stage_spec, skip = stage
            rest = decoded[skip:]
            found = served.match_route(method, rest)
            if found is None:
                first_miss = first_miss or RouteMiss(served.spec, stage_spec)
                continue
            route, parameters = found
            path = "/" + "/".join(rest)
            resource = served.resource_ids.get(route.path, "")
            return RouteMatch(served.spec, stage_spec, route, path, raw_path, parameters or None, resource)
        if first_miss is not None:
            return first_miss
        return RouteMiss(candidates[0].spec if candidates else None, None)


def api_id_of_host(host: str) -> str | None:
    """`{api-id}.execute-api.localhost:3000` (or any `{api-id}.execute-api.` host) -> api-id."""
    name = host.split(":", 1)[0].lower() if not host.startswith("[") else ""
    index = name.find(EXECUTE_API_LABEL)
    if index <= 0:
        return None
    return name[:index]
