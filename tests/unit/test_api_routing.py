"""Stage and route selection (emulator/apigateway/routing.py): most specific first, as
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html describes."""

from __future__ import annotations

from emulator.apigateway.routing import Catalogue, RouteMatch, RouteMiss, api_id_of_host
from emulator.template.api_specs import HTTP, REST, ApiSpec, IntegrationSpec, RouteSpec, StageSpec

FN = IntegrationSpec("fn", None, "1.0", 29_000)


def route(key: str) -> RouteSpec:
    if key == "$default":
        return RouteSpec("ANY", "$default", FN)
    method, path = key.split(" ")
    return RouteSpec(method, path, FN)


def api(kind: str, routes: list[str], stages: tuple[str, ...], api_id: str = "a1") -> ApiSpec:
    return ApiSpec(f"Api{api_id}", api_id, kind, f"api-{api_id}", tuple(route(r) for r in routes),
                   tuple(StageSpec(s) for s in stages))


def hit(catalogue: Catalogue, method: str, path: str, host: str = "127.0.0.1:3000") -> RouteMatch:
    found = catalogue.lookup(host, method, path)
    assert isinstance(found, RouteMatch), found
    return found


REST_ROUTES = ["GET /pets", "GET /pets/{id}", "GET /pets/dog", "ANY /pets/{id}/toys", "ANY /{proxy+}", "GET /"]


def test_rest_needs_its_stage_as_the_first_segment() -> None:
    catalogue = Catalogue([api(REST, REST_ROUTES, ("Prod",))])
    match = hit(catalogue, "GET", "/Prod/pets")
    assert (match.stage.name, match.route.key, match.path) == ("Prod", "GET /pets", "/pets")
    miss = catalogue.lookup("h", "GET", "/pets")  # no stage: the API's own 403
    assert isinstance(miss, RouteMiss) and miss.api is not None and miss.stage is None
    assert hit(catalogue, "GET", "/Prod").route.key == "GET /"


def test_literal_before_variable_before_greedy() -> None:
    catalogue = Catalogue([api(REST, REST_ROUTES, ("Prod",))])
    assert hit(catalogue, "GET", "/Prod/pets/dog").route.key == "GET /pets/dog"
    cat = hit(catalogue, "GET", "/Prod/pets/cat")
    assert (cat.route.key, cat.path_parameters) == ("GET /pets/{id}", {"id": "cat"})
    deep = hit(catalogue, "GET", "/Prod/a/b/c")
    assert (deep.route.key, deep.path_parameters) == ("ANY /{proxy+}", {"proxy": "a/b/c"})


def test_the_method_decides_between_equally_specific_paths_and_falls_back_to_greedy() -> None:
    catalogue = Catalogue([api(REST, REST_ROUTES, ("Prod",))])
    assert hit(catalogue, "DELETE", "/Prod/pets/7/toys").route.key == "ANY /pets/{id}/toys"
    # POST /pets/7 matches no method of /pets/{id}: the greedy ANY route takes it.
    post = hit(catalogue, "POST", "/Prod/pets/7")
    assert (post.route.key, post.path_parameters) == ("ANY /{proxy+}", {"proxy": "pets/7"})


def test_greedy_needs_a_segment_and_trailing_slashes_do_not_count() -> None:
    catalogue = Catalogue([api(REST, ["ANY /{proxy+}"], ("Prod",))])
    assert isinstance(catalogue.lookup("h", "GET", "/Prod"), RouteMiss)
    assert isinstance(catalogue.lookup("h", "GET", "/Prod/"), RouteMiss)
    assert hit(catalogue, "GET", "/Prod/x/").path_parameters == {"proxy": "x"}


def test_path_parameters_are_decoded_and_paths_are_case_sensitive() -> None:
    catalogue = Catalogue([api(REST, ["GET /pets/{id}"], ("Prod",))])
    match = hit(catalogue, "GET", "/Prod/pets/a%20b%2Fc")
    assert match.path_parameters == {"id": "a b/c"}
    assert match.raw_path == "/Prod/pets/a%20b%2Fc"
    assert isinstance(catalogue.lookup("h", "GET", "/Prod/Pets/1"), RouteMiss)
    assert isinstance(catalogue.lookup("h", "GET", "/prod/pets/1"), RouteMiss)


def test_http_api_default_stage_needs_no_prefix_and_default_route_is_last() -> None:
    catalogue = Catalogue([api(HTTP, ["GET /pets", "$default"], ("$default",))])
    assert hit(catalogue, "GET", "/pets").route.key == "GET /pets"
    fallback = hit(catalogue, "POST", "/pets")
    assert (fallback.route.key, fallback.stage.name, fallback.path_parameters) == ("$default", "$default", None)


def test_http_api_named_stage_is_a_prefix_and_without_default_route_it_is_a_miss() -> None:
    catalogue = Catalogue([api(HTTP, ["GET /pets"], ("dev",))])
    assert hit(catalogue, "GET", "/dev/pets").stage.name == "dev"
    miss = catalogue.lookup("h", "GET", "/pets")
    assert isinstance(miss, RouteMiss) and miss.stage is None
    miss = catalogue.lookup("h", "PUT", "/dev/pets")
    assert isinstance(miss, RouteMiss) and miss.stage is not None and miss.stage.name == "dev"


def test_execute_api_host_selects_the_api() -> None:
    first, second = api(REST, ["GET /x"], ("Prod",), "aaaa"), api(REST, ["GET /x"], ("Prod",), "bbbb")
    catalogue = Catalogue([first, second])
    assert hit(catalogue, "GET", "/Prod/x").api.api_id == "aaaa"  # template order without a host
    assert hit(catalogue, "GET", "/Prod/x", "bbbb.execute-api.localhost:3000").api.api_id == "bbbb"
    unknown = catalogue.lookup("zzzz.execute-api.localhost:3000", "GET", "/Prod/x")
    assert isinstance(unknown, RouteMiss) and unknown.unknown_api


def test_host_parsing() -> None:
    assert api_id_of_host("abc123.execute-api.localhost:3000") == "abc123"
    assert api_id_of_host("ABC.execute-api.us-east-1.amazonaws.com") == "abc"
    assert api_id_of_host("127.0.0.1:3000") is None
    assert api_id_of_host(".execute-api.localhost") is None
    assert api_id_of_host("[::1]:3000") is None


def test_the_first_api_whose_stage_matched_answers_a_miss() -> None:
    catalogue = Catalogue([api(REST, ["GET /x"], ("Prod",), "r1"), api(HTTP, ["GET /y"], ("dev",), "h1")])
    miss = catalogue.lookup("h", "GET", "/dev/nothing")
    assert isinstance(miss, RouteMiss) and miss.api is not None and miss.api.api_id == "h1"
    assert hit(catalogue, "GET", "/dev/y").api.api_id == "h1"
