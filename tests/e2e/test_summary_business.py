"""``GET /customers/{id}/summary``'s business block: each area's part for the roles that
area's per-customer route admits (null for the others), bounded, and exactly the shape
its schema documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from commands import dispatch as d
from commands import messages as m
from commands import sales as s
from commands import service as sv
from read_api.contracts import CustomerContractsPublic
from read_api.schemas import (
    BusinessCasePublic,
    BusinessConsentPublic,
    BusinessContractPublic,
    BusinessContractsPublic,
    BusinessDispatchPublic,
    BusinessOpportunityPublic,
    BusinessOrderPublic,
    BusinessPublic,
    BusinessSalesPublic,
    BusinessServicePublic,
    BusinessWorkOrderPublic,
    SummaryPublic,
)
from tests.support.business import HOSTILE_TITLE, Business, seed_business, wait_for_business
from tests.support.console import ConsoleHub, console_hub


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConsoleHub, Business]]:
    with console_hub(tmp_path_factory.mktemp("business") / "data", timeline_events=4) as ch:
        bea = seed_business(ch.hub)
        wait_for_business(ch.deps.read_views.store,
                          int(ch.hub.recorder.max_notification_id() or 0))
        ch.wait_for_read_models()
        yield ch, bea


def summary(world: tuple[ConsoleHub, Business], role: str, **params: Any) -> Any:
    ch, bea = world
    r = TestClient(ch.app).get(f"/customers/{bea.customer_id}/summary", params=params,
                               headers={"Authorization": f"Bearer {ch.tokens[role]}"})
    assert r.status_code == 200, r.text
    return r.json()


def same_shape(model: type[BaseModel], value: dict[str, Any]) -> None:
    assert set(value) == set(model.model_fields), model.__name__
    model.model_validate(value)


def test_the_block_has_exactly_the_documented_shape() -> None:
    """(The schema's own example is checked against it, the answers below against both.)"""
    example = SummaryPublic.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    SummaryPublic.model_validate(example)
    same_shape(BusinessPublic, example["business"])


def test_admin_sees_every_area_bounded_and_newest_first(
        world: tuple[ConsoleHub, Business]) -> None:
    _, bea = world
    answer = summary(world, "admin")
    SummaryPublic.model_validate(answer)
    block = answer["business"]
    same_shape(BusinessPublic, block)
    sales = block["sales"]
    same_shape(BusinessSalesPublic, sales)
    assert sales["open_opportunities"] == 1  # the lost one is not open
    [opportunity] = sales["opportunities"]
    same_shape(BusinessOpportunityPublic, opportunity)
    assert (opportunity["opportunity_id"], opportunity["title"], opportunity["amount"],
            opportunity["currency"]) == (bea.open_opportunity, HOSTILE_TITLE, "12500.00", "EUR")
    assert sales["orders"] == 2
    assert [o["order_number"] for o in sales["recent_orders"]] == ["BIZ-1002", "BIZ-1001"]
    same_shape(BusinessOrderPublic, sales["recent_orders"][0])
    [consent] = block["consent"]
    same_shape(BusinessConsentPublic, consent)
    assert (consent["consent_channel"], consent["purpose"], consent["state"],
            consent["valid"]) == ("email", "newsletter", "given", True)
    service = block["service"]
    same_shape(BusinessServicePublic, service)
    assert (service["open_cases"], service["cases_total"]) == (1, 2)
    [case] = service["cases"]
    same_shape(BusinessCasePublic, case)
    assert (case["case_id"], case["priority"], case["status"]) == (bea.open_case, "high", "open")
    assert case["sla_state"] in ("ok", "at_risk", "breached") and case["next_deadline"]
    dispatch = block["dispatch"]
    same_shape(BusinessDispatchPublic, dispatch)
    [order] = dispatch["work_orders"]
    same_shape(BusinessWorkOrderPublic, order)
    assert dispatch["open_work_orders"] == 1
    assert (order["work_order_id"], order["case_id"], order["stage"]) == (
        bea.work_order, bea.open_case, "new")
    contracts = block["contracts"]
    same_shape(BusinessContractsPublic, contracts)
    [contract] = contracts["contracts"]  # the expired one is not in force
    same_shape(BusinessContractPublic, contract)
    assert (contracts["active_contracts"], contracts["installed_products"]) == (1, 1)
    assert (contract["contract_id"], contract["covered_products"]) == (bea.contract,
                                                                       ["BOILER-S"])


@pytest.mark.parametrize(("role", "parts"), [
    ("sales", {"sales", "consent", "service"}),
    ("marketing", {"consent", "service"}),
    ("agent", {"consent", "service", "dispatch", "contracts"}),
    ("service", {"consent", "service", "dispatch", "contracts"}),
    ("dispatcher", {"service", "dispatch", "contracts"}),
    ("auditor", {"service"}),
])
def test_each_role_sees_the_areas_its_routes_admit(world: tuple[ConsoleHub, Business],
                                                   role: str, parts: set[str]) -> None:
    block = summary(world, role)["business"]
    same_shape(BusinessPublic, block)
    assert {k for k in ("sales", "consent", "service", "dispatch", "contracts")
            if block[k] is not None} == parts


def test_as_of_judges_the_sla_and_needs_an_offset(world: tuple[ConsoleHub, Business]) -> None:
    ch, bea = world
    late = summary(world, "service", as_of="2099-01-01T00:00:00+00:00")["business"]
    assert late["as_of"] == "2099-01-01T00:00:00+00:00"
    assert late["service"]["cases"][0]["sla_state"] == "breached"
    r = TestClient(ch.app).get(f"/customers/{bea.customer_id}/summary",
                               params={"as_of": "2099-01-01T00:00:00"},
                               headers={"Authorization": f"Bearer {ch.tokens['service']}"})
    assert r.status_code == 422 and "as_of" in r.text


def test_a_partner_cannot_read_another_partners_customer(
        world: tuple[ConsoleHub, Business]) -> None:
    ch, bea = world
    r = TestClient(ch.app).get(f"/customers/{bea.customer_id}/summary",
                               headers={"Authorization": f"Bearer {ch.tokens['partner']}"})
    assert r.status_code == 404


def test_a_customer_without_business_objects_has_empty_parts(
        world: tuple[ConsoleHub, Business]) -> None:
    ch, _ = world
    r = TestClient(ch.app).get(f"/customers/{ch.demo.duplicate}/summary",
                               headers={"Authorization": f"Bearer {ch.tokens['admin']}"})
    block = r.json()["business"]
    assert block["sales"] == {"open_opportunities": 0, "opportunities": [], "orders": 0,
                              "recent_orders": []}
    assert block["consent"] == []
    assert block["service"] == {"open_cases": 0, "cases_total": 0, "cases": []}
    assert block["dispatch"] == {"open_work_orders": 0, "work_orders": []}
    assert block["contracts"] == {"active_contracts": 0, "contracts": [],
                                  "installed_products": 0}
    assert datetime.fromisoformat(block["as_of"]) <= datetime.now(UTC)


def test_openapi_documents_the_block_with_an_example(
        world: tuple[ConsoleHub, Business]) -> None:
    ch, _ = world
    spec = TestClient(ch.app).get("/openapi.json").json()
    route = spec["paths"]["/customers/{customer_id}/summary"]["get"]
    assert "as_of" in {p["name"] for p in route["parameters"]}
    schema = spec["components"]["schemas"]["SummaryPublic"]
    assert "business" in schema["required"]
    assert schema["examples"][0]["business"]["service"]["cases"][0]["sla_state"] == "at_risk"
    assert "business" not in spec["components"]["schemas"]["SummaryCorePublic"]["properties"]


def get(ch: ConsoleHub, role: str, path: str, **params: Any) -> Any:
    return TestClient(ch.app).get(path, params=params,
                                  headers={"Authorization": f"Bearer {ch.tokens[role]}"})


def test_contracts_route_lists_contracts_and_installed_base(
        world: tuple[ConsoleHub, Business]) -> None:
    ch, bea = world
    r = get(ch, "service", f"/customers/{bea.customer_id}/contracts")
    assert r.status_code == 200, r.text
    body = CustomerContractsPublic.model_validate(r.json())
    assert {c.contract_id: c.state for c in body.contracts} == {
        bea.contract: "active", bea.old_contract: "expired"}
    [product] = body.products
    assert (product.product_id, product.serial_number, product.covered_by) == (
        bea.product, "BS-0043", [bea.contract])
    long_ago = get(ch, "agent", f"/customers/{bea.customer_id}/contracts", as_of="2000-01-01")
    assert {c["state"] for c in long_ago.json()["contracts"]} == {"upcoming"}
    assert get(ch, "sales", f"/customers/{bea.customer_id}/contracts").status_code == 403
    assert get(ch, "service", f"/customers/{uuid4()}/contracts").status_code == 404
    assert get(ch, "service", f"/customers/{bea.customer_id}/contracts",
               as_of="someday").status_code == 422
    spec = get(ch, "admin", "/openapi.json").json()
    assert spec["components"]["schemas"]["CustomerContractsPublic"]["examples"]


def test_a_merged_customers_business_objects_follow_the_survivor(
        world: tuple[ConsoleHub, Business]) -> None:
    """Cases, opportunities, orders, work orders and contracts of a merged-away customer
    are read under the survivor (and under the merged-away id, which reads the survivor)."""
    ch, _ = world
    hub = ch.hub
    cal = UUID(hub.execute(m.RegisterCustomer(name="Cal Merged", source_key="merge:cal"))
               .customer_id)
    dee = UUID(hub.execute(m.RegisterCustomer(name="Dee Survivor", source_key="merge:dee"))
               .customer_id)
    case, work_order, contract = uuid4(), uuid4(), uuid4()
    hub.execute(sv.OpenCase(customer_id=cal, case_id=case, category="repair", subject="Leak"))
    hub.execute(d.CreateWorkOrder(customer_id=cal, work_order_id=work_order, case_id=case,
                                  skill="boiler", address="2 Mill Lane", summary="Leak"))
    hub.execute(s.PlaceOrder(customer_id=cal, order_number="MERGE-1", total="10.00",
                             currency="EUR", lines=[s.LineIn(product_code="SEAL", quantity="1",
                                                             unit_price="10.00")]))
    today = datetime.now(UTC).date()
    hub.execute(sv.AddContract(customer_id=cal, contract_id=contract, starts_on=today,
                               ends_on=today + timedelta(days=30)))
    hub.execute(m.MergeCustomers(source_id=cal, target_id=dee))
    wait_for_business(ch.deps.read_views.store, int(hub.recorder.max_notification_id() or 0))
    ch.wait_for_read_models()
    for asked in (dee, cal):
        cases = get(ch, "admin", f"/customers/{asked}/cases").json()
        assert cases["customer_id"] == str(dee)
        assert [c["case_id"] for c in cases["cases"]] == [str(case)]
        assert [o["order_number"] for o in get(
            ch, "admin", f"/customers/{asked}/orders").json()["items"]] == ["MERGE-1"]
        assert [w["work_order_id"] for w in get(
            ch, "admin", f"/customers/{asked}/work-orders").json()["items"]] == [str(work_order)]
        assert [c["contract_id"] for c in get(
            ch, "admin", f"/customers/{asked}/contracts").json()["contracts"]] == [str(contract)]
        block = get(ch, "admin", f"/customers/{asked}/summary").json()["business"]
        assert (block["service"]["cases_total"], block["sales"]["orders"],
                block["dispatch"]["open_work_orders"], block["contracts"]["active_contracts"]
                ) == (1, 1, 1, 1)
