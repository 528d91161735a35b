"""The demo's repeat buyers: runs of regular orders, silences, and some who come back.

``retention_plan(commands, seed, until)`` is pure, like ``touchstream.demo.demo_plan``:
about a third of the demo customers registered in ``commands`` (merged duplicates
aside) become repeat buyers of consumables — a run of orders a month or two apart,
then a silence of eight to twenty months (longer than the default churn window, so
they churn), after which a third of them buy again (and a few a third time). Each
customer's own ``Random`` decides; every ``occurred_at`` lies between its
registration and ``until``, every command has a source key, so seeding twice records
nothing new. The cohorts, churn, CLV and tiers of ``touchstream analytics`` are then
non-trivial on the demo.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid5

from commands import messages as m
from commands import sales as s
from commands.hub import NAMESPACE
from domain.sales import Line, text

CONSUMABLES = (("FILTER-PK", "35.50"), ("SERVICE-1Y", "150.00"), ("THERMO-S", "219.00"),
               ("VALVE-22", "12.40"), ("SALT-25", "18.90"))
SHARE = 0.3          # of the customers buy regularly
COMEBACK = 0.35      # of them return after a silence (and as many again a third time)


def retention_plan(commands: Sequence[m.Command], seed: int, until: datetime
                   ) -> list[m.Command]:
    """The repeat buyers' orders (placed and paid) of the customers registered in
    ``commands``."""
    merged = {c.source_id for c in commands if isinstance(c, m.MergeCustomers)}
    out: list[m.Command] = []
    for reg in commands:
        if not isinstance(reg, m.RegisterCustomer) or reg.customer_id in merged:
            continue
        assert reg.customer_id is not None and reg.occurred_at is not None
        rng = random.Random(f"touchstream-demo-value:{seed}:{reg.customer_id}")
        if rng.random() >= SHARE:
            continue
        key = f"demo:{seed}:value:{reg.customer_id}"
        last = until - timedelta(hours=1)
        t = reg.occurred_at + timedelta(days=rng.uniform(5, 90))
        runs = 1 + (rng.random() < COMEBACK) + (rng.random() < COMEBACK / 3)
        n = 0
        for _ in range(runs):
            for _ in range(rng.randint(2, 9)):
                if t >= last:
                    break  # the story stops at ``until``
                n += 1
                at = t.replace(microsecond=0)
                number = f"SUB-{uuid5(NAMESPACE, f'{key}:{n}').hex[:10].upper()}"
                lines = [{"product_code": code, "quantity": str(rng.randint(1, 3)),
                          "unit_price": price, "discount": "0"}
                         for code, price in rng.sample(CONSUMABLES, k=rng.randint(1, 2))]
                out += [
                    s.PlaceOrder(customer_id=reg.customer_id, order_number=number, lines=lines,
                                 total=_total(lines), currency="EUR", occurred_at=at,
                                 actor="demo-erp", source_key=f"{key}:{n}:placed"),
                    s.PayOrder(customer_id=reg.customer_id, order_number=number,
                               occurred_at=min(at + timedelta(days=3), last.replace(
                                   microsecond=0)),
                               actor="demo-erp", source_key=f"{key}:{n}:paid")]
                t += timedelta(days=rng.uniform(20, 75))
            t += timedelta(days=rng.uniform(240, 600))  # silent: churned
    return out


def _total(lines: Sequence[dict[str, str]]) -> str:
    return text(sum((Line(ln["product_code"], Decimal(ln["quantity"]), Decimal(ln["unit_price"]),
                          Decimal(0)).total("EUR") for ln in lines), Decimal(0)))
