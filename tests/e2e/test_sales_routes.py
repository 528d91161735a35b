"""Sales end to end over HTTP: every sales command route records its event, invalid moves
and bad money answer 409/422, a partner key writes opportunities of its own customers only
(another partner's answer 404 and record nothing), and the read routes serve the figures,
partner-scoped, with drill-down and OpenAPI examples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from channels.web.sales_commands import COMMANDS
from tests.conftest import store_env
from tests.support.api import Api
from tests.support.sales import seed_sales
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

OPP = "5d1e8c2a-7b3f-4e19-9c60-2a8f4b1d7e33"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app with its read routes and the projection runner in-process."""
    conf = settings_mod.load(store_env("sqlite", tmp_path_factory.mktemp("sales") / "data"))
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None, f"t-{role}")[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    try:
        app = create_app(deps, routers=[read_routes], services=[deps, ProjectionService(deps)])
        with TestClient(app) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()


def _types(api: Api, customer_id: str) -> list[str]:
    return [type(e).__name__ for e in api.hub.stream(UUID(customer_id))]


def _register(api: Api, partner: str | None = None) -> str:
    r = api.post("/commands/register-customer", {"name": "Ada", "source_key": str(uuid4())})
    cid = str(r.json()["customer_id"])
    if partner:
        assert api.post("/commands/assign-partner",
                        {"customer_id": cid, "partner_id": partner}).status_code == 201
    return cid


def test_each_sales_route_records_its_event(api: Api) -> None:
    cid = _register(api)
    opp = str(uuid4())
    lines = [{"product_code": "A", "quantity": "2", "unit_price": "10.00", "discount": "10"}]
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("open-opportunity", {"opportunity_id": opp, "title": "Boilers", "amount": "100.00",
                              "currency": "EUR", "expected_close": "2027-01-31",
                              "owner": "mia"}, "OpportunityOpened"),
        ("move-opportunity-stage", {"opportunity_id": opp, "to_stage": "proposal"},
         "OpportunityStageMoved"),
        ("change-opportunity", {"opportunity_id": opp, "amount": "120.00"},
         "OpportunityChanged"),
        ("lose-opportunity", {"opportunity_id": opp, "reason": "price"}, "OpportunityLost"),
        ("reopen-opportunity", {"opportunity_id": opp}, "OpportunityReopened"),
        ("win-opportunity", {"opportunity_id": opp, "order_reference": "E-1"},
         "OpportunityWon"),
        ("send-quote", {"quote_id": "Q-1", "lines": lines, "currency": "EUR"}, "QuoteSent"),
        ("place-order", {"order_number": "E-1", "lines": lines, "total": "18.00",
                         "currency": "EUR", "opportunity_id": opp}, "OrderPlaced"),
        ("pay-order", {"order_number": "E-1"}, "OrderPaid"),
        ("ship-order", {"order_number": "E-1"}, "OrderShipped"),
        ("return-order", {"order_number": "E-1", "amount": "9.00", "return_id": "R-1"},
         "OrderReturned"),
    ]
    assert {name for name, *_ in steps} | {"cancel-order"} == set(COMMANDS)
    for name, body, event in steps:
        r = api.post(f"/commands/{name}", {"customer_id": cid, **body}, role="sales")
        assert r.status_code == 201, (name, r.text)
        assert _types(api, cid)[r.json()["versions"][-1]] == event, name
    again = api.post("/commands/place-order", {"customer_id": cid, "order_number": "E-1",
                                               "lines": lines, "total": "18.00",
                                               "currency": "EUR"}, role="adapter")
    assert again.status_code == 200 and again.json()["duplicate"]  # the ERP retried
    r = api.post("/commands/cancel-order", {"customer_id": cid, "order_number": "E-1"})
    assert r.status_code == 409 and "record a return instead" in r.json()["detail"]


def test_bad_moves_and_bad_money_are_refused_with_a_reason(api: Api) -> None:
    cid = _register(api)
    body = {"customer_id": cid, "title": "x", "amount": "10", "currency": "EUR",
            "expected_close": "2027-01-31", "owner": "mia"}
    r = api.post("/commands/open-opportunity", {**body, "amount": 10.5})
    assert r.status_code == 422 and "amount" in r.text  # a JSON number is not money
    r = api.post("/commands/open-opportunity", {**body, "stage": "won"})
    assert r.status_code == 409 and "use win/lose" in r.json()["detail"]
    r = api.post("/commands/place-order", {
        "customer_id": cid, "order_number": "BAD-1", "currency": "EUR", "total": "5.00",
        "lines": [{"product_code": "A", "quantity": "1", "unit_price": "4.00"}]})
    assert r.status_code == 422 and "sum to 4.00 EUR" in r.json()["detail"]
    r = api.post("/commands/open-opportunity", {**body, "amount": "10.001"})
    assert r.status_code == 422 and "more decimals than EUR allows" in r.json()["detail"]
    assert not [t for t in _types(api, cid) if t.startswith(("Opportunity", "Order"))]


def test_a_partner_writes_opportunities_of_its_own_customers_only(api: Api) -> None:
    mine, theirs, nobody = _register(api, "p-1"), _register(api, "p-2"), _register(api)
    body = {"title": "Via partner", "amount": "500", "currency": "EUR",
            "expected_close": "2027-02-28", "owner": "partner-p-1"}
    r = api.post("/commands/open-opportunity", {"customer_id": mine, **body},
                 role="partner", **{"Idempotency-Key": "p1-open"})
    assert r.status_code == 201, r.text
    retry = api.post("/commands/open-opportunity", {"customer_id": mine, **body},
                     role="partner", **{"Idempotency-Key": "p1-open"})
    assert retry.status_code == 200 and retry.json()["event_ids"] == r.json()["event_ids"]
    opp = next(e.opportunity_id for e in api.hub.stream(UUID(mine))
               if type(e).__name__ == "OpportunityOpened")
    assert api.post("/commands/move-opportunity-stage", {
        "customer_id": mine, "opportunity_id": opp, "to_stage": "proposal"},
        role="partner").status_code == 201
    for other in (theirs, nobody, str(uuid4())):
        before = _types(api, other) if other in (theirs, nobody) else None
        for route, extra in (("open-opportunity", body),
                             ("move-opportunity-stage", {"opportunity_id": opp,
                                                         "to_stage": "proposal"})):
            r = api.post(f"/commands/{route}", {"customer_id": other, **extra}, role="partner")
            assert r.status_code == 404, (route, r.text)
            assert r.json()["detail"] == f"no customer {other}"
        if before is not None:
            assert _types(api, other) == before
    # a key recorded on another partner's customer shows nothing of it
    staff = api.post("/commands/open-opportunity", {"customer_id": theirs, **body,
                                                    "source_key": "shared-key"}, role="sales")
    assert staff.status_code == 201
    r = api.post("/commands/open-opportunity", {"customer_id": theirs, **body,
                                                "source_key": "shared-key"}, role="partner")
    assert r.status_code == 404
    for route in ("place-order", "send-quote"):
        assert api.post(f"/commands/{route}", {}, role="partner").status_code == 403


def test_read_routes_serve_the_figures_scoped_and_drillable(api: Api) -> None:
    ids = seed_sales(api.hub, tag="read-")
    head = int(api.hub.recorder.max_notification_id() or 0)
    r = api.client.get("/sales/pipeline", params={"min_position": head, "by": "owner"},
                       headers=api.auth("sales"))
    assert r.status_code == 200, r.text
    mia = [g for g in r.json()["items"] if g["owner"] == "mia"]
    assert {(g["currency"], g["weighted"]) for g in mia} >= {("USD", "240.40")}
    assert api.client.get("/sales/forecast", headers=api.auth("analyst")).status_code == 200
    stages = api.client.get("/sales/stages", headers=api.auth("sales")).json()
    assert stages["outcomes"]["won"] >= 1
    drill = api.client.get("/sales/pipeline/events", headers=api.auth("sales"),
                           params={"status": "won", "limit": 2}).json()
    assert len(drill["items"]) == 2 and drill["next_after"] is not None
    rest = api.client.get("/sales/pipeline/events", headers=api.auth("sales"),
                          params={"status": "won", "after": drill["next_after"]}).json()
    assert rest["items"] and rest["items"][0]["position"] > drill["next_after"]
    month = api.client.get("/sales/revenue/monthly", headers=api.auth("sales"),
                           params={"from_month": "2026-01", "to_month": "2026-01"}).json()
    assert month["items"][0]["revenue"] == "150.00"
    rfm = api.client.get("/sales/rfm", headers=api.auth("marketing"),
                         params={"as_of": "2026-02-28", "currency": "EUR"}).json()
    assert {i["customer_id"]: i["rfm"] for i in rfm["items"]} == {ids["ada"]: "133",
                                                                  ids["cy"]: "311"}
    one = api.client.get(f"/customers/{ids['ada']}/rfm", headers=api.auth("sales"),
                         params={"as_of": "2026-01-15"})
    assert one.status_code == 200 and one.json()["monetary"] == "200.00"
    opps = api.client.get(f"/customers/{ids['ada']}/opportunities", headers=api.auth("partner"))
    assert opps.status_code == 200 and len(opps.json()["items"]) == 2  # ada is p-1's
    assert api.client.get(f"/customers/{ids['bob']}/orders",
                          headers=api.auth("partner")).status_code == 404
    orders = api.client.get(f"/customers/{ids['bob']}/orders", headers=api.auth("sales")).json()
    assert [o["status"] for o in orders["items"]] == ["cancelled"]
    scoped = api.client.get("/sales/revenue/customers", headers=api.auth("partner")).json()
    assert ids["bob"] not in {i["customer_id"] for i in scoped["items"]}
    life = api.client.get("/sales/lifecycle", headers=api.auth("marketing"),
                          params={"as_of": "2026-02-01"}).json()
    assert life["counts"]["prospect"] >= 3 and life["flows"]
    history = api.client.get(f"/customers/{ids['ada']}/lifecycle", headers=api.auth("sales"))
    assert [h["to_stage"] for h in history.json()["items"]] == ["prospect"]
    flow = api.client.get("/sales/lifecycle/events", headers=api.auth("analyst"),
                          params={"to_stage": "prospect", "month": "2026-01"}).json()
    assert {e["customer_id"] for e in flow["items"]} >= {ids["ada"], ids["bob"], ids["cy"]}
    assert api.client.get("/sales/pipeline", headers=api.auth("agent")).status_code == 403
    assert api.client.get("/sales/rfm", headers=api.auth("sales"),
                          params={"as_of": "2026-13-01"}).status_code == 422


def test_openapi_documents_the_sales_routes_with_examples(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path in ("/sales/pipeline", "/sales/forecast", "/sales/stages", "/sales/rfm",
                 "/sales/revenue/monthly", "/sales/pipeline/events", "/sales/orders/events",
                 "/customers/{customer_id}/opportunities", "/customers/{customer_id}/orders",
                 "/customers/{customer_id}/rfm", "/sales/lifecycle",
                 "/customers/{customer_id}/lifecycle", "/sales/lifecycle/events"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    for name in ("OpportunityPublic", "RfmPublic", "ForecastRowPublic", "RevenueRowPublic"):
        assert schemas[name].get("examples"), name
