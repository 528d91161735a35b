"""The route index answers every request with the route FastAPI's own dispatch would
pick, trying only the routes that share the path's first segment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Host, Match, Mount, Router

from touchstream.route_index import ANY, RouteIndex, first_segment, segments_of
from touchstream.serve import build_app


def _scope(method: str, path: str, app: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "app": app,
            "headers": [], "query_string": b""}


def _first_full(routes: Any, scope: dict[str, Any]) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return route  # type: ignore[no-any-return]
    return None


def _leaf_paths(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, a concrete path) for every route of the app, parameters filled in."""
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        leaves = list(contexts()) if contexts else [route]
        for leaf in leaves:
            route_itself = getattr(leaf, "starlette_route", None) or leaf
            path = getattr(route_itself, "path", None)
            if path is None:
                continue
            if isinstance(route_itself, Mount):
                path += "/a-file.js"
            concrete = re.sub(r"\{[^}]+\}", "x1", path) or "/"
            for method in sorted(getattr(leaf, "methods", None) or {"GET"}):
                yield method, concrete


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    from touchstream.bootstrap import bootstrap

    deps = bootstrap({"TOUCHSTREAM_DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    try:
        yield build_app(deps, projections=False)
    finally:
        deps.close()


def test_every_route_of_the_served_app_is_found_among_its_segments_candidates(
        served: FastAPI) -> None:
    index = served.router.middleware_stack
    assert isinstance(index, RouteIndex)
    checked = 0
    for method, path in _leaf_paths(served):
        scope = _scope(method, path, served)
        expected = _first_full(served.router.routes, scope)
        assert expected is not None, (method, path)
        assert _first_full(index.candidates(path), scope) is expected, (method, path)
        checked += 1
    assert checked > 200


def test_health_is_tried_alone_and_a_timeline_page_without_the_command_routes(
        served: FastAPI) -> None:
    index = served.router.middleware_stack
    assert isinstance(index, RouteIndex)
    assert [getattr(r, "path", None) for r in index.candidates("/health")] == ["/health"]
    everything = len(served.router.routes)
    assert len(index.candidates("/customers/c-1/timeline")) < everything / 2


def test_first_segment_of_a_parameter_matches_anything() -> None:
    assert first_segment("/customers/{id}/timeline") == "customers"
    assert first_segment("/health") == "health"
    assert first_segment("/") == ""
    assert first_segment("/{tenant}/x") is ANY
    assert segments_of(Host("api.example", app=Router())) == {ANY}


def _app() -> FastAPI:
    app = FastAPI()
    first = APIRouter()

    @first.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"route": "item", "id": item_id}

    @first.post("/items")
    async def create() -> dict[str, str]:
        return {"route": "create"}

    tenant = APIRouter()

    @tenant.get("/{tenant}/items/{item_id}")
    async def tenant_item(tenant: str, item_id: str) -> dict[str, str]:
        return {"route": "tenant", "tenant": tenant}

    @tenant.get("/{tenant}/only")
    async def only(tenant: str) -> dict[str, str]:
        return {"route": "only", "tenant": tenant}

    app.include_router(first)
    app.include_router(tenant)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"route": "health"}

    RouteIndex.install(app.router)
    return app


@pytest.mark.parametrize(("method", "path", "status", "route"), [
    ("GET", "/items/7", 200, "item"),            # the first router, its own segment
    ("GET", "/acme/items/7", 200, "tenant"),     # a parameter-first route: in every bucket
    ("GET", "/items/items/7", 200, "tenant"),    # ... also among another router's segment
    ("GET", "/other/only", 200, "only"),         # a segment no route names
    ("GET", "/health", 200, "health"),
    ("POST", "/items", 200, "create"),
])
def test_requests_reach_the_route_fastapi_would_pick(method: str, path: str, status: int,
                                                      route: str) -> None:
    with TestClient(_app()) as client:
        answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.json()["route"] == route


def test_what_no_route_fully_matches_is_fastapis_own_answer() -> None:
    with TestClient(_app()) as client:
        wrong_method = client.delete("/items/7")
        slash = client.get("/health/", follow_redirects=False)
        missing = client.get("/nowhere/at/all")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"
    assert slash.status_code == 307 and slash.headers["location"].endswith("/health")
    assert missing.status_code == 404


def test_a_route_added_after_the_first_request_is_indexed() -> None:
    app = _app()
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200

        @app.get("/late")
        async def late() -> dict[str, str]:
            return {"route": "late"}

        assert client.get("/late").json() == {"route": "late"}
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    # the parameter-first router may match any path; the /items router is skipped
    assert [getattr(r, "path", "router") for r in index.candidates("/late")] == [
        "router", "/late"]


MISSES = [("GET", "/nope"), ("GET", "/nope/deeper/still"), ("POST", "/webhooks/cti/x"),
          ("GET", "/customers/"), ("GET", "/health/"), ("DELETE", "/health"),
          ("GET", "/commands"), ("PUT", "/customers/c-1/timeline"),
          ("GET", "/customers/c-1/timeline/"), ("GET", "/docs-assets")]


@pytest.mark.parametrize(("method", "path"), MISSES)
def test_a_miss_is_answered_as_fastapis_own_dispatch_answers_it(
        served: FastAPI, method: str, path: str) -> None:
    index = served.router.middleware_stack
    assert isinstance(index, RouteIndex)
    answers = []
    for dispatch in (index, index.fallback):
        served.router.middleware_stack = dispatch
        try:
            # no lifespan: the served app's shutdown would close the fixture's deps
            client = TestClient(served, raise_server_exceptions=False)
            answer = client.request(method, path, follow_redirects=False)
        finally:
            served.router.middleware_stack = index
        answers.append((answer.status_code, answer.headers.get("allow"),
                        answer.headers.get("location"), answer.content))
    assert answers[0] == answers[1]
    assert answers[0][0] in (404, 405, 307)


def test_front_end_routes_are_still_reached_when_no_other_route_matches(
        tmp_path: Any) -> None:
    (tmp_path / "app.js").write_text("console.log('hi')")
    (tmp_path / "index.html").write_text("<p>hi</p>")
    app = _app()
    front = APIRouter()
    front.frontend("/", directory=str(tmp_path))
    app.include_router(front)
    with TestClient(app) as client:
        script = client.get("/app.js")
        api = client.get("/items/7")
    assert script.status_code == 200 and "console.log" in script.text
    assert api.json()["route"] == "item"


def test_a_plain_miss_is_answered_without_fastapis_second_search(served: FastAPI) -> None:
    index = served.router.middleware_stack
    assert isinstance(index, RouteIndex)
    fallback, searched = index.fallback, []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        searched.append(scope["path"])
        await fallback(scope, receive, send)

    index.fallback = counting
    try:
        client = TestClient(served, raise_server_exceptions=False)
        assert client.get("/nope").status_code == 404
        assert client.get("/health/", follow_redirects=False).status_code == 307
        assert client.delete("/health").status_code == 405
    finally:
        index.fallback = fallback
    assert searched == ["/health/", "/health"]
