"""Dispatch end to end in the real app: every work-order route with its roles, the signature
upload, the board, a work order's history, a customer's pages and the call-centre figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from channels.web.dispatch_commands import signature_router
from read_api.dispatch import CALL_CENTRE_ROLES, CUSTOMER_ORDER_ROLES, DISPATCH_ROLES
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

DAY = datetime(2026, 9, 21, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"signature pixels"


class Client:
    def __init__(self, client: TestClient, tokens: dict[str, str], deps: Dependencies) -> None:
        self.client, self.tokens, self.deps = client, tokens, deps
        self.position = 0

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def command(self, name: str, body: dict[str, Any], role: str = "dispatcher",
                status: int = 201) -> Any:
        r = self.client.post(f"/commands/{name}", json=body, headers=self.headers(role))
        assert r.status_code == status, (name, r.status_code, r.text)
        if r.status_code in (200, 201):
            self.position = max(self.position, r.json()["position"] or 0)
        return r.json()

    def get(self, path: str, role: str = "dispatcher", status: int = 200, **params: Any) -> Any:
        r = self.client.get(path, params={"min_position": self.position, **params},
                            headers=self.headers(role))
        assert r.status_code == status, (path, role, r.status_code, r.text)
        return r.json()


@pytest.fixture
def api(sqlite_env: dict[str, str]) -> Iterator[Client]:
    conf = settings_mod.load(sqlite_env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None, f"t-{role}")[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[
        read_routes, lambda ctx: signature_router(ctx.authorize, lambda: ctx.deps.blobs)],
        services=[ProjectionService(deps)])
    try:
        with TestClient(app) as client:
            yield Client(client, tokens, deps)
    finally:
        deps.close()
        keys.close()
        hub.close()


def _at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).isoformat()


def test_every_transition_over_http_and_the_board_that_shows_them(api: Client) -> None:
    cid = api.command("register-customer", {"name": "Ada Lovelace"}, role="admin")[
        "customer_id"]
    jonas, priya = str(uuid4()), str(uuid4())
    api.command("register-technician", {"technician_id": jonas, "handle": "jonas",
                                        "skills": ["boiler"]})
    api.command("register-technician", {"technician_id": priya, "handle": "priya",
                                        "skills": ["gas"]})
    api.command("change-technician-skills", {"technician_id": priya,
                                             "skills": ["boiler", "gas"]})
    wo, other = str(uuid4()), str(uuid4())
    order = {"customer_id": cid, "work_order_id": wo}
    step = {**order, "technician_id": jonas}
    api.command("create-work-order", {**order, "skill": "boiler", "address": "1 Mill Lane",
                                      "summary": "no hot water"}, role="service")
    api.command("create-work-order", {**order, "skill": "boiler", "address": "1 Mill Lane",
                                      "summary": "no hot water"}, role="service",
                status=200)  # the same work order id again: a duplicate
    api.command("schedule-work-order", {**order, "window_start": _at(9), "window_end": _at(11)})
    api.command("assign-technician", step)
    api.command("create-work-order", {"customer_id": cid, "work_order_id": other,
                                      "skill": "boiler", "address": "2 Mill Lane",
                                      "window_start": _at(10), "window_end": _at(12)})
    api.command("schedule-work-order", {"customer_id": cid, "work_order_id": other,
                                        "window_start": _at(10), "window_end": _at(12)})
    refused = api.command("assign-technician", {"customer_id": cid, "work_order_id": other,
                                                "technician_id": jonas}, status=409)
    assert "overlaps" in refused["detail"] and wo in refused["detail"]
    api.command("assign-technician", {"customer_id": cid, "work_order_id": other,
                                      "technician_id": str(uuid4())}, status=404)
    api.command("schedule-work-order", {**order, "window_start": _at(11),
                                        "window_end": _at(10)}, status=422)
    api.command("accept-work-order", {**order, "technician_id": priya}, role="adapter",
                status=409)
    api.command("accept-work-order", step, role="adapter")
    api.command("start-travel", {**step, "eta": _at(9)}, role="adapter")
    assert api.client.post("/dispatch/signatures", content=b"GIF89a",
                           headers={**api.headers("adapter"), "Content-Type": "image/png"}
                           ).status_code == 415
    assert api.client.post("/dispatch/signatures", content=PNG,
                           headers={**api.headers("agent"), "Content-Type": "image/png"}
                           ).status_code == 403
    stored = api.client.post("/dispatch/signatures", content=PNG,
                             headers={**api.headers("adapter"), "Content-Type": "image/png"})
    assert stored.status_code == 201, stored.text
    signature = stored.json()["signature_ref"]
    assert api.deps.blobs.get(signature) == PNG
    api.command("record-arrival", {**step, "occurred_at": _at(9.25)}, role="adapter")
    api.command("record-work-done", {**step, "minutes_spent": 80, "signature_ref": signature,
                                     "parts": [{"part": "valve", "quantity": 1}]},
                role="adapter")
    api.command("close-work-order", {**order, "reason": "invoiced"})
    api.command("cancel-work-order", order, status=409)  # closed: nothing more

    second = {"customer_id": cid, "work_order_id": other}
    api.command("assign-technician", {**second, "technician_id": priya})
    api.command("decline-work-order", {**second, "technician_id": priya, "reason": "ill"},
                role="adapter")
    api.command("reassign-technician", {**second, "technician_id": jonas}, status=409)
    api.command("assign-technician", {**second, "technician_id": jonas})
    api.command("reassign-technician", {**second, "technician_id": priya})
    api.command("cancel-work-order", {**second, "reason": "customer away"}, role="service")

    board = api.get("/dispatch/board", **{"from": DAY.date().isoformat(), "days": 1,
                                          "now": _at(12)})
    days = {t["handle"]: t["days"][0] for t in board["technicians"]}
    assert [o["work_order_id"] for o in days["jonas"]["orders"]] == [wo]
    assert days["jonas"]["worked_minutes"] == 80 and days["priya"]["orders"] == []
    detail = api.get(f"/dispatch/work-orders/{wo}", now=_at(12))
    assert [h["action"] for h in detail["history"]] == [
        "created", "scheduled", "assigned", "accepted", "en_route", "arrived", "done", "closed"]
    assert detail["address"] == "1 Mill Lane" and detail["arrived_at"] == _at(9.25)
    assert all(UUID(h["event_id"]) for h in detail["history"])
    history = api.get(f"/dispatch/work-orders/{other}")["history"]
    assert [(h["action"], h["technician_id"]) for h in history][2:] == [
        ("assigned", priya), ("declined", priya), ("assigned", jonas), ("assigned", priya),
        ("cancelled", priya)]
    api.get(f"/dispatch/work-orders/{uuid4()}", status=404)

    first = api.get(f"/customers/{cid}/work-orders", role="agent", limit=1)
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = api.get(f"/customers/{cid}/work-orders", role="agent", limit=1,
                   cursor=first["next_cursor"])
    assert {first["items"][0]["work_order_id"], rest["items"][0]["work_order_id"]} == {wo, other}
    assert rest["next_cursor"] is None
    api.get(f"/customers/{uuid4()}/work-orders", role="agent", status=400,
            cursor=first["next_cursor"])
    api.get(f"/customers/{uuid4()}/work-orders", role="agent", status=404)
    api.get("/dispatch/board", status=422, **{"from": "2026-09-21", "days": 40})
    api.get("/dispatch/attention", now="yesterday", status=422)


def test_call_centre_figures_and_every_read_route_by_role(api: Client) -> None:
    cid = api.command("register-customer", {"name": "Bob"}, role="admin")["customer_id"]
    for i, (outcome, wait) in enumerate([("answered", 5), ("answered", 30), ("abandoned", 50)]):
        api.command("log-call", {"customer_id": cid, "call_id": f"c{i}", "queue": "support",
                                 "outcome": outcome, "wait_s": wait, "duration_s": 100,
                                 "occurred_at": _at(9 + i / 10)}, role="agent")
    rows = api.get("/call-centre/figures", role="agent", **{"from": _at(0)})
    assert [(r["queue"], r["offered"], r["answered"], r["abandoned"], r["service_level"])
            for r in rows] == [("support", 3, 2, 1, 0.5)]
    api.get("/call-centre/figures", role="agent", status=400,
            **{"from": _at(5), "to": _at(1)})
    routes = {
        "/dispatch/board": (DISPATCH_ROLES, {"from": "2026-09-21"}),
        "/dispatch/attention": (DISPATCH_ROLES, {}),
        f"/customers/{cid}/work-orders": (CUSTOMER_ORDER_ROLES, {}),
        "/call-centre/figures": (CALL_CENTRE_ROLES, {"from": _at(0)}),
    }
    for path, (admitted, params) in routes.items():
        for role in ROLES:
            if role == "partner":
                continue
            ok = role == "admin" or role in admitted
            api.get(path, role=role, status=200 if ok else 403, **params)
    spec = api.client.get("/openapi.json").json()
    for path in ("/dispatch/board", "/dispatch/attention", "/dispatch/work-orders/{work_order_id}",
                 "/customers/{customer_id}/work-orders", "/call-centre/figures",
                 "/dispatch/signatures"):
        assert path in spec["paths"], path
    for schema in ("BoardPublic", "WorkOrderPublic", "CallFiguresPublic",
                   "SignatureStoredPublic"):
        assert spec["components"]["schemas"][schema].get("examples"), schema
