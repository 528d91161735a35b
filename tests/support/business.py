"""A customer with one business object of every area (an open and a lost opportunity,
two orders, consent, an installed product with an active and an expired contract, an
open and a closed case, an open work order), some of them with hostile text, for the summary's business block and the console's panels."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from commands import dispatch as d
from commands import marketing as mk
from commands import messages as m
from commands import sales as s
from commands import service as sv
from commands.hub import Hub
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections.consent.view import ConsentView
from projections.contracts.view import ContractsView
from projections.dispatch.view import DispatchView
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from projections.service.view import ServiceView
from projections.store import ReadStore

HOSTILE_TITLE = '<b onmouseover="alert(\'deal\')">Fleet</b> renewal'
_NS = UUID("6b0e4a52-8f3c-4d1a-9e27-5c4b3a2f1e0d")


@dataclass(frozen=True)
class Business:
    customer_id: str
    open_opportunity: str
    lost_opportunity: str
    open_case: str
    closed_case: str
    work_order: str
    contract: str
    old_contract: str
    product: str


def _id(name: str) -> UUID:
    return uuid5(_NS, name)


def seed_business(hub: Hub, now: datetime | None = None) -> Business:
    """Bea, with every area's objects; idempotent (every command has a source key)."""
    now = now or datetime.now(UTC)
    start = now - timedelta(days=30)
    bea = hub.execute(m.RegisterCustomer(
        name="Bea Business", company="Business Objects Ltd", lifecycle_stage="current",
        contact_points=[m.ContactPointIn(kind="email", value="bea@example.com")],
        source_key="business-demo:bea", occurred_at=start)).customer_id
    cid = UUID(bea)
    won, lost = _id("opportunity-open"), _id("opportunity-lost")
    hub.execute(s.OpenOpportunity(
        customer_id=cid, opportunity_id=won, title=HOSTILE_TITLE, amount="12500.00",
        currency="EUR", expected_close=(now + timedelta(days=20)).date(), owner="sam",
        occurred_at=start + timedelta(days=1)))
    hub.execute(s.OpenOpportunity(
        customer_id=cid, opportunity_id=lost, title="Spare parts", amount="300.00",
        currency="EUR", expected_close=(now + timedelta(days=5)).date(), owner="sam",
        occurred_at=start + timedelta(days=2)))
    hub.execute(s.LoseOpportunity(customer_id=cid, opportunity_id=lost, reason="price",
                                  occurred_at=start + timedelta(days=3)))
    for n, day in (("BIZ-1001", 4), ("BIZ-1002", 6)):
        hub.execute(s.PlaceOrder(
            customer_id=cid, order_number=n, total="840.00", currency="EUR",
            lines=[s.LineIn(product_code="BOILER-S", quantity="1", unit_price="840.00")],
            occurred_at=start + timedelta(days=day)))
    hub.execute(mk.GiveConsent(
        customer_id=cid, consent_channel="email", purpose="newsletter",
        evidence_kind="form-submission", evidence_id="form-77",
        occurred_at=start + timedelta(days=5)))
    product, contract, old_contract = _id("product"), _id("contract"), _id("contract-old")
    hub.execute(sv.RecordInstalledProduct(
        customer_id=cid, product_id=product, product_code="BOILER-S", serial_number="BS-0043",
        installed_on=(start - timedelta(days=400)).date(), occurred_at=start))
    hub.execute(sv.AddContract(
        customer_id=cid, contract_id=old_contract, starts_on=(start - timedelta(days=400)).date(),
        ends_on=(start - timedelta(days=36)).date(), sla_policy="standard", visits_included=1,
        occurred_at=start))
    hub.execute(sv.AddContract(
        customer_id=cid, contract_id=contract, starts_on=(start - timedelta(days=35)).date(),
        ends_on=(now + timedelta(days=330)).date(), covered_products=["BOILER-S"],
        sla_policy="standard", visits_included=2, occurred_at=start))
    open_case, closed_case = _id("case-open"), _id("case-closed")
    hub.execute(sv.OpenCase(customer_id=cid, case_id=closed_case, category="billing",
                            subject="Invoice question", occurred_at=start + timedelta(days=7)))
    hub.execute(sv.ResolveCase(customer_id=cid, case_id=closed_case,
                               resolution_code="explained",
                               occurred_at=start + timedelta(days=8)))
    hub.execute(sv.CloseCase(customer_id=cid, case_id=closed_case,
                             occurred_at=start + timedelta(days=9)))
    hub.execute(sv.OpenCase(customer_id=cid, case_id=open_case, category="repair",
                            priority="high", subject="<i>Boiler</i> leaks",
                            occurred_at=now - timedelta(hours=2)))
    work_order = _id("work-order")
    hub.execute(d.CreateWorkOrder(
        customer_id=cid, work_order_id=work_order, case_id=open_case, skill="boiler",
        address="1 Mill Lane, Leeds", summary="Leak under the boiler", priority="high",
        occurred_at=now - timedelta(hours=1)))
    return Business(bea, str(won), str(lost), str(open_case), str(closed_case),
                    str(work_order), str(contract), str(old_contract), str(product))


def wait_for_business(store: ReadStore, head: int, timeout: float = 20) -> None:
    """Until every area view the business block reads has applied ``head``."""
    views = (PipelineView(store), OrdersView(store), ConsentView(store), DispatchView(store),
             ServiceView(store, config_from_mapping(DEFAULT_CONFIG)), ContractsView(store))
    deadline = time.monotonic() + timeout
    while min(v.position() for v in views) < head:
        if time.monotonic() > deadline:
            raise TimeoutError("the business read models did not catch up")
        time.sleep(0.01)
