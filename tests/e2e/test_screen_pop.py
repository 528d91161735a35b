"""Screen-pop over the read models, in the real app with the projections running in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub


class Pop:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, route: str, body: dict[str, Any], role: str = "admin") -> Any:
        r = self.client.post(route, json=body, headers=self.auth(role))
        assert r.status_code in (200, 201), r.text
        return r.json()

    def pop(self, number: str, role: str = "agent", **params: Any) -> Any:
        return self.client.get("/screen-pop", params={"number": number, **params},
                               headers=self.auth(role))

    def pop_when(self, number: str, ready: Any, role: str = "agent") -> Any:
        """Poll (bounded) until the read models caught up with the writes."""
        deadline = time.monotonic() + 10
        while True:
            r = self.pop(number, role)
            if r.status_code == 200 and ready(r.json()):
                return r.json()
            assert time.monotonic() < deadline, r.text
            time.sleep(0.02)


@pytest.fixture
def app(sqlite_env: dict[str, str]) -> Iterator[Pop]:
    conf = settings_mod.load(sqlite_env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None, f"t-{role}")[1]
              for role in ("admin", "agent", "partner", "analyst")}
    routers = [read_routes, *channel_routers(conf)]
    deps = Dependencies(conf, hub=hub, keys=keys)
    try:
        with TestClient(create_app(deps, routers=routers,
                                   services=[ProjectionService(deps)])) as client:
            yield Pop(client, tokens)
    finally:
        deps.close()
        keys.close()
        hub.close()


def test_known_caller_in_any_format_pops_summary_and_last_touchpoints(app: Pop) -> None:
    cid = app.post("/commands/register-customer", {
        "name": "Grace Hopper", "company": "Navy",
        "contact_points": [{"kind": "phone", "value": "+44 20 7946 0111"}]})["customer_id"]
    for i in range(7):
        app.post("/commands/log-call", {"call_id": f"c{i}", "from_number": "020 7946 0111",
                                        "summary": f"call {i}",
                                        "occurred_at": f"2026-01-0{i + 1}T09:00:00+00:00"})
    app.post("/commands/add-note", {"customer_id": cid, "text": "VIP, internal only"})
    body = app.pop_when("020 7946 0111",
                        lambda b: b["known"] and b["matches"][0]["customer"]["events"] >= 9)
    assert body["number"] == "+442079460111"
    (match,) = body["matches"]
    assert match["customer"]["customer_id"] == cid and match["customer"]["name"] == "Grace Hopper"
    assert len(match["recent"]) == 5
    for spelling in ("+44 20 7946 0111", "0044 20 7946 0111", "tel:+442079460111",
                     "(020) 7946-0111"):
        again = app.pop(spelling).json()
        assert again["known"] and again["matches"][0]["customer"]["customer_id"] == cid, spelling
    assert len(app.pop("020 7946 0111", limit=2).json()["matches"][0]["recent"]) == 2


def test_unknown_caller_is_an_answer_not_an_error(app: Pop) -> None:
    app.post("/commands/register-customer", {"name": "Someone else"})
    r = app.pop_when("020 7946 0999", lambda b: True)
    assert r == {"number": "+442079460999", "known": False, "message": "unknown caller",
                 "matches": []}


def test_unusable_number_is_400_and_roles_are_enforced(app: Pop) -> None:
    app.post("/commands/register-customer", {"name": "Warm-up"})
    app.pop_when("020 7946 0999", lambda b: True)
    assert app.pop("not a number").status_code == 400
    assert app.client.get("/screen-pop", params={"number": "02079460111"}).status_code == 401
    assert app.pop("02079460111", role="analyst").status_code == 403


def test_partner_sees_only_its_customers_and_no_internal_notes(app: Pop) -> None:
    cid = app.post("/commands/register-customer", {
        "name": "Ada", "contact_points": [{"kind": "phone", "value": "020 7946 0222"}]}
    )["customer_id"]
    app.post("/commands/add-note", {"customer_id": cid, "text": "internal remark"})
    app.pop_when("020 7946 0222", lambda b: b["known"])
    assert app.pop("020 7946 0222", role="partner").json()["known"] is False
    app.post("/commands/assign-partner", {"customer_id": cid, "partner_id": "p-1"})
    body = app.pop_when("020 7946 0222", lambda b: b["known"], role="partner")
    match = body["matches"][0]
    assert match["customer"]["notes"] == {"shared": 0}
    assert all(not item["internal"] and item["actor"] is None for item in match["recent"])
