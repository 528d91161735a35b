"""The demo's sales: a pipeline and orders over the years, deterministic by seed.

``sales_plan(commands, seed, until)`` is pure, like ``touchstream.demo.demo_plan``: for
each customer registered in ``commands`` (merged duplicates aside) its own
``Random`` decides whether it buys, its opportunities (moved along the default
pipeline, won, lost, some still open, a few reopened), the quotes sent, the orders
(from won opportunities and repeat orders), payments, shipments, returns and
cancellations. Every ``occurred_at`` lies between the customer's registration and
``until``; every command has a source key, so seeding twice records nothing new.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from commands import messages as m
from commands import sales as s
from commands.hub import NAMESPACE
from domain.sales import DEFAULT_PIPELINE, Line, text

PRODUCTS = (("BOILER-X2", "2400.00"), ("HEATPUMP-7", "8900.00"), ("SERVICE-1Y", "150.00"),
            ("FILTER-PK", "35.50"), ("THERMO-S", "219.00"), ("INSTALL-D", "480.00"),
            ("VALVE-22", "12.40"), ("SOLAR-KIT", "5600.00"))
OWNERS = ("mia", "omar", "lena", "raj")
LOSS_REASONS = ("price", "competitor", "no budget", "no decision", "timing")
TITLES = ("Boiler replacement", "Heat pump retrofit", "Service contract", "Office heating",
          "Solar installation", "Annual maintenance", "Spare parts framework")


class _Seller:
    """One customer's sales history; all randomness from its own ``Random``."""

    def __init__(self, seed: int, customer: UUID, registered: datetime, until: datetime,
                 currency: str) -> None:
        self.rng = random.Random(f"touchstream-demo-sales:{seed}:{customer}")
        self.customer, self.until, self.currency = customer, until, currency
        self.t = registered
        self.key = f"demo:{seed}:sales:{customer}"
        self.n = 0
        self.repeats = 0
        self.out: list[m.Command] = []

    def _at(self, max_days: float) -> datetime | None:
        """The next moment (None once past ``until``: the story stops there)."""
        self.t = self.t + timedelta(days=self.rng.uniform(0.5, max_days))
        return None if self.t >= self.until - timedelta(hours=1) else self.t.replace(
            microsecond=0)

    def _add(self, cmd_type: type[s.SalesCommand], at: datetime, **fields: Any) -> None:
        self.n += 1
        self.out.append(cmd_type(customer_id=self.customer, occurred_at=at, actor="demo-sales",
                                 source_key=f"{self.key}:{self.n}", **fields))

    def _lines(self, big: bool) -> list[dict[str, str]]:
        pool = PRODUCTS[:2] + PRODUCTS[7:] if big else PRODUCTS[2:7]
        picked = self.rng.sample(pool, k=min(len(pool), self.rng.randint(1, 3)))
        return [{"product_code": code, "quantity": str(self.rng.randint(1, 4)),
                 "unit_price": price, "discount": self.rng.choice(("0", "0", "5", "10"))}
                for code, price in picked]

    def _total(self, lines: Sequence[dict[str, str]]) -> str:
        return text(sum((Line(ln["product_code"], Decimal(ln["quantity"]),
                              Decimal(ln["unit_price"]), Decimal(ln["discount"])).total(
                                  self.currency) for ln in lines), Decimal(0)))

    def opportunity(self, k: int) -> None:
        opened = self._at(300)
        if opened is None:
            return
        oid = uuid5(NAMESPACE, f"{self.key}:opp{k}")
        lines = self._lines(big=True)
        total = self._total(lines)
        self._add(s.OpenOpportunity, opened, opportunity_id=oid,
                  title=self.rng.choice(TITLES), amount=total, currency=self.currency,
                  expected_close=(opened + timedelta(days=self.rng.randint(30, 120))).date(),
                  owner=self.rng.choice(OWNERS))
        if self.rng.random() < 0.3 and (at := self._at(10)) is not None:
            self._add(s.ChangeOpportunity, at, opportunity_id=oid,  # renegotiated, re-dated
                      amount=text((Decimal(total) * Decimal("0.9")).quantize(Decimal("0.01"))),
                      expected_close=(at + timedelta(days=self.rng.randint(20, 90))).date())
        stages = [st.name for st in DEFAULT_PIPELINE.stages]
        reach = self.rng.choices(range(len(stages)), weights=(3, 3, 3, 2))[0]
        for stage in stages[1:reach + 1]:
            at = self._at(25)
            if at is None:
                return  # still open at ``until``
            self._add(s.MoveOpportunityStage, at, opportunity_id=oid, to_stage=stage)
            if stage == "proposal":
                self._add(s.SendQuote, at, quote_id=f"Q-{oid.hex[:8]}", lines=lines,
                          currency=self.currency, opportunity_id=oid)
        at = self._at(30)
        if at is None:
            return  # still open at ``until``
        if self.until - at < timedelta(days=150) and self.rng.random() < 0.5:
            return  # recent: still being worked on
        if self.rng.random() < 0.4 + 0.12 * reach:
            number = f"SO-{oid.hex[:10].upper()}"
            self._add(s.WinOpportunity, at, opportunity_id=oid, order_reference=number)
            self._order(number, lines, oid)
        else:
            self._add(s.LoseOpportunity, at, opportunity_id=oid,
                      reason=self.rng.choice(LOSS_REASONS))
            if self.rng.random() < 0.1 and (again := self._at(60)) is not None:
                self._add(s.ReopenOpportunity, again, opportunity_id=oid, to_stage="proposal")

    def repeat_orders(self, count: int) -> None:
        for _ in range(count):
            self.repeats += 1
            number = f"SO-R{uuid5(NAMESPACE, f'{self.key}:r{self.repeats}').hex[:10].upper()}"
            self._order(number, self._lines(big=False), None, gap=200)

    def _order(self, number: str, lines: list[dict[str, str]], oid: UUID | None,
               gap: float = 5) -> None:
        placed = self._at(gap)
        if placed is None:
            return
        self._add(s.PlaceOrder, placed, order_number=number, lines=lines,
                  total=self._total(lines), currency=self.currency, opportunity_id=oid)
        if self.rng.random() < 0.05:
            if (at := self._at(3)) is not None:
                self._add(s.CancelOrder, at, order_number=number, reason="ordered twice")
            return
        for cmd in (s.PayOrder, s.ShipOrder):
            at = self._at(10)
            if at is None:
                return
            self._add(cmd, at, order_number=number)
        if self.rng.random() < 0.1 and (at := self._at(30)) is not None:
            first = lines[0]
            refund = Line(first["product_code"], Decimal(1), Decimal(first["unit_price"]),
                          Decimal(first["discount"])).total(self.currency)
            self._add(s.ReturnOrder, at, order_number=number, amount=text(refund),
                      return_id=f"RMA-{number}", reason="returned unused")


def sales_plan(commands: Sequence[m.Command], seed: int, until: datetime) -> list[m.Command]:
    """The sales commands of the demo customers registered in ``commands``."""
    merged = {c.source_id for c in commands if isinstance(c, m.MergeCustomers)}
    out: list[m.Command] = []
    for reg in commands:
        if not isinstance(reg, m.RegisterCustomer) or reg.customer_id in merged:
            continue
        assert reg.customer_id is not None and reg.occurred_at is not None
        pick = random.Random(f"touchstream-demo-sales:{seed}:{reg.customer_id}:who")
        if pick.random() < 0.4:
            continue  # never bought anything
        seller = _Seller(seed, reg.customer_id, reg.occurred_at, until,
                         "GBP" if pick.random() < 0.1 else "EUR")
        for k in range(seller.rng.randint(1, 3)):
            seller.opportunity(k)
            if seller.rng.random() < 0.4:
                seller.repeat_orders(seller.rng.randint(1, 2))
        out += seller.out
    return out
