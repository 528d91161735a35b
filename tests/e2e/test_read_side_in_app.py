"""The whole read side inside the real app: API keys, command routes, projections in-process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from projections import registry
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
             for role in ("admin", "agent", "partner", "sales")}

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
    finally:
        keys.close()
        hub.close()
