"""A small sales story recorded through the write model, with figures computed by hand
(the contract, rebuild and route tests check the read models against them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from commands import messages as m
from commands import sales as s
from commands.hub import Hub

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
NS = UUID("6a1d0c55-0d7e-4b8e-9a43-2f5f3b7f1c01")
OPPS = {name: str(uuid5(NS, name)) for name in ("o1", "o2", "o3", "o4")}


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def _line(code: str, qty: str, price: str, discount: str = "0") -> dict[str, str]:
    return {"product_code": code, "quantity": qty, "unit_price": price, "discount": discount}


def seed_sales(hub: Hub, tag: str = "") -> dict[str, str]:
    """Three customers (ada assigned to partner p-1), four opportunities, four orders."""
    ids = {n: str(uuid5(NS, f"{tag}{n}")) for n in ("ada", "bob", "cy")}
    opp = {k: str(uuid5(NS, f"{tag}{v}")) for k, v in OPPS.items()}
    for name, cid in ids.items():
        hub.execute(m.RegisterCustomer(customer_id=UUID(cid), name=name.title(),
                                       source_key=f"{tag}reg:{name}", occurred_at=at(0)))
    hub.execute(m.AssignPartner(customer_id=UUID(ids["ada"]), partner_id="p-1",
                                source_key=f"{tag}partner:ada"))
    ada, bob, cy = (UUID(ids[n]) for n in ("ada", "bob", "cy"))
    o1, o2, o3, o4 = (UUID(opp[k]) for k in ("o1", "o2", "o3", "o4"))
    steps: list[Any] = [
        s.OpenOpportunity(customer_id=ada, opportunity_id=o1, title="Boilers for Leeds",
                          amount="1000", currency="EUR", expected_close="2026-03-15",
                          owner="mia", occurred_at=at(0)),
        s.OpenOpportunity(customer_id=ada, opportunity_id=o2, title="Heat pumps",
                          amount="2000.00", currency="EUR", expected_close="2026-03-20",
                          owner="jo", occurred_at=at(0)),
        s.OpenOpportunity(customer_id=bob, opportunity_id=o3, title="Service plan",
                          amount="400", currency="EUR", expected_close="2026-04-01",
                          owner="mia", occurred_at=at(0)),
        s.OpenOpportunity(customer_id=bob, opportunity_id=o4, title="Spare parts",
                          amount="300.50", currency="USD", expected_close="2026-03-01",
                          owner="mia", occurred_at=at(0)),
        s.MoveOpportunityStage(customer_id=ada, opportunity_id=o2, to_stage="needs analysis",
                               occurred_at=at(5)),
        s.MoveOpportunityStage(customer_id=bob, opportunity_id=o4, to_stage="negotiation",
                               occurred_at=at(3)),
        s.MoveOpportunityStage(customer_id=ada, opportunity_id=o1, to_stage="proposal",
                               occurred_at=at(10)),
        s.MoveOpportunityStage(customer_id=ada, opportunity_id=o2, to_stage="proposal",
                               occurred_at=at(15)),
        s.LoseOpportunity(customer_id=bob, opportunity_id=o3, reason="competitor",
                          occurred_at=at(20)),
        s.WinOpportunity(customer_id=ada, opportunity_id=o2, order_reference="SO-2",
                         occurred_at=at(25)),
        s.PlaceOrder(customer_id=ada, order_number=f"{tag}SO-1", total="200.00",
                     currency="EUR", lines=[_line("A", "2", "100")], occurred_at=at(9)),
        s.PayOrder(customer_id=ada, order_number=f"{tag}SO-1", occurred_at=at(10)),
        s.ShipOrder(customer_id=ada, order_number=f"{tag}SO-1", occurred_at=at(11)),
        s.ReturnOrder(customer_id=ada, order_number=f"{tag}SO-1", amount="50",
                      return_id="R1", reason="one broken", occurred_at=at(19)),
        s.PlaceOrder(customer_id=ada, order_number=f"{tag}SO-2", total="2000.00",
                     currency="EUR", lines=[_line("HP", "1", "2000")], opportunity_id=o2,
                     occurred_at=at(35)),
        s.PlaceOrder(customer_id=bob, order_number=f"{tag}SO-3", total="30.00",
                     currency="EUR", lines=[_line("X", "3", "10")], occurred_at=at(37)),
        s.CancelOrder(customer_id=bob, order_number=f"{tag}SO-3", occurred_at=at(38)),
        s.PlaceOrder(customer_id=cy, order_number=f"{tag}SO-4", total="99.99",
                     currency="EUR", lines=[_line("Y", "1", "99.99")], occurred_at=at(50)),
    ]
    for cmd in steps:
        hub.execute(cmd)
    return {**ids, **opp}
