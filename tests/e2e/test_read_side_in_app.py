"""The whole read side inside the real app: API keys, command routes, projections in-process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from projections import registry
from read_api.fast_route import FastReadRoute, plan_of
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_write_is_readable_with_its_position_through_real_keys(
        kind: str, request: pytest.FixtureRequest) -> None:
    env = request.getfixturevalue(f"{kind}_env")
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    token = {role: keys.create(role, "p-1" if role == "partner" else None)[1]
             for role in ("admin", "agent", "partner", "sales", "analyst")}
    revoked = keys.create("agent")
    keys.revoke(revoked[0].id)
    token["revoked"] = revoked[1]

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token[role]}"}

    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[read_routes], services=[ProjectionService(deps)])
    try:
        with TestClient(app) as client:
            made = client.post("/commands/register-customer", headers=auth("admin"), json={
                "name": "Grace Hopper", "contact_points": [{"kind": "phone",
                                                            "value": "+44 20 7946 0111"}]})
            assert made.status_code == 201, made.text
            cid = made.json()["customer_id"]
            call = client.post("/commands/log-call", headers=auth("agent"), json={
                "call_id": "app-1", "from_number": "020 7946 0111", "summary": "screen pop"})
            assert call.status_code == 201, call.text
            pos = call.json()["position"]
            page = client.get(f"/customers/{cid}/timeline", headers=auth("agent"),
                              params={"min_position": pos})
            assert page.status_code == 200, page.text
            assert page.json()["items"][0]["summary"] == "screen pop"
            pop = client.get("/customers/lookup", headers=auth("agent"),
                             params={"phone": "020 7946 0111", "min_position": pos})
            assert [c["customer_id"] for c in pop.json()["items"]] == [cid]
            assert client.get(f"/customers/{cid}/summary",
                              headers=auth("partner")).status_code == 404
            assigned = client.post("/commands/assign-partner", headers=auth("sales"),
                                   json={"customer_id": cid, "partner_id": "p-1"})
            assert assigned.status_code == 201, assigned.text
            mine = client.get(f"/customers/{cid}/summary", headers=auth("partner"),
                              params={"min_position": assigned.json()["position"]})
            assert mine.status_code == 200 and mine.json()["channels"]["phone"]["touches"] == 1
            assert client.get(f"/customers/{cid}/timeline").status_code == 401
            assert client.get("/projections/status",
                              headers=auth("agent")).status_code == 403
            status = client.get("/projections/status", headers=auth("admin")).json()["items"]
            assert {s["name"] for s in status} == set(registry.PROJECTIONS)
            _answers_alike_with_and_without_plans(app, client, cid, token)
    finally:
        keys.close()
        hub.close()


#: answer headers that must agree (the request id differs by design)
_HEADERS = ("content-type", "www-authenticate", "retry-after")


def _answers_alike_with_and_without_plans(app: FastAPI, client: TestClient, cid: str,
                                           token: dict[str, str]) -> None:
    """The timeline route answers by its compiled plan (``read_api.fast_route``) exactly as
    FastAPI's own handler does: every request asked both ways (``dependency_overrides`` in
    force hands every request to FastAPI)."""
    timeline = [r for r in _routes(app.routes) if r.path == "/customers/{customer_id}/timeline"]
    assert timeline and all(isinstance(r, FastReadRoute) for r in timeline)
    assert all(plan_of(r.dependant, r.endpoint, None) is not None for r in timeline)
    page = f"/customers/{cid}/timeline"
    agent = {"Authorization": f"Bearer {token['agent']}"}
    asked = [
        (page, agent), (f"{page}?limit=1", agent), (f"{page}?limit=1&min_position=1", agent),
        (f"{page}?channel=phone&channel=email&kind=call", agent),
        (f"{page}?q=screen&since=2000-01-01T00:00:00Z", agent),
        (page, {"X-API-Key": token["agent"]}),
        (page, {"Authorization": f"Bearer {token['partner']}"}),
        (f"/customers/{uuid.UUID(int=7)}/timeline", agent),  # 404
        (page, {"Authorization": f"Bearer {token['analyst']}"}),  # 403
        (page, {"Authorization": f"Bearer {token['revoked']}"}),  # 401
        (page, {"Authorization": "Bearer tsk_unknown"}), (page, {"Authorization": "Basic x"}),
        (page, {}), (f"{page}?limit=0", {}),  # 401 before 422, as FastAPI orders them
        (f"{page}?limit=0", agent), (f"{page}?limit=1&limit=2", agent), (f"{page}?limit=", agent),
        (f"{page}?bogus=1", agent), (f"{page}?channel=pigeon", agent),  # 422
        (f"{page}?cursor=forged", agent),  # 400
        (f"{page}?min_position={2**62}", agent),  # 409
        ("/customers/not-a-uuid/timeline", agent),  # 422
    ]
    fast = _answers(client, asked)
    assert {answer[1] for answer in fast} == {200, 400, 401, 403, 404, 409, 422}
    app.dependency_overrides[_unused] = _unused
    try:
        assert _answers(client, asked) == fast
    finally:
        app.dependency_overrides.clear()


def _unused() -> None:
    """Never called: overriding it only switches the compiled plans off."""


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every route, included routers walked into (FastAPI keeps them as included)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)


def _answers(client: TestClient, asked: list[tuple[str, dict[str, str]]]) -> list[Any]:
    out = []
    for path, headers in asked:
        r = client.get(path, headers=headers)
        out.append((path, r.status_code, r.content, {h: r.headers.get(h) for h in _HEADERS}))
    return out
