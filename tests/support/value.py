"""Twelve customers over the first half of 2026, recorded through the write model, with
their cohorts, churn, CLV and tiers computed by hand (unit, contract and route tests).

With a churn window of 2 months, as of 2026-06-30 (months 1–6 are Jan–Jun):

=== ============================================== ======== ======================
 c  what happens                                   cohort   active in months
=== ============================================== ======== ======================
 a  buys 100 every month                           Jan      1 2 3 4 5 6
 b  buys 500 in Jan, then nothing                  Jan      1 2
 c  buys 200 in Jan; calls in (inbound) in May     Jan      1 2 . . 5 6 (returns)
 d  buys 50 in Jan; lost in Feb                    Jan      1
 e  registered current in Jan; no order            Jan      1 2
 f  buys 1000 in Feb and in Mar                    Feb      2 3 4
 g  buys 300 in Feb; lost in Mar; buys 300 in May  Feb      2 . . 5 6 (returns)
 h  buys 80 in Mar; we email it in Apr (outbound)  Mar      3 4 (3 4 5 with outbound)
 i  order of 2000 placed and cancelled in Mar      —        (no purchase)
 j  buys 400 in Apr; 100 refunded in May           Apr      4 5
 k  only writes emails (inbound)                   —        (no purchase)
 l  buys 150 in Jun                                Jun      6
=== ============================================== ======== ======================

Revenue (EUR): a 600, b 500, c 200, d 50, f 2000, g 600, h 80, j 300, l 150 — 4480 in
all. Tiers over all history (bands 50/80/95 %), highest first with the share the ones
before already make: f 0 → key; a 2000/4480 = .446 → key; g ties a → key; b 3200/4480 =
.714 → major; j .826, c .893, l .938 → ordinary; h .971, d .989 → small.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from commands import messages as m
from commands import sales as s
from commands.hub import Hub

NS = UUID("0f3c5a2e-7b41-4d8a-a2f6-5e9d1c3b7a10")
NAMES = tuple("abcdefghijkl")
AS_OF = date(2026, 6, 30)
WINDOW = 2


def at(month: int, day: int = 10) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def ids(tag: str = "") -> dict[str, str]:
    return {n: str(uuid5(NS, f"{tag}{n}")) for n in NAMES}


def _order(cid: UUID, number: str, total: str, when: datetime) -> s.PlaceOrder:
    return s.PlaceOrder(customer_id=cid, order_number=number, total=total, currency="EUR",
                        lines=[{"product_code": "P", "quantity": "1", "unit_price": total}],
                        occurred_at=when)


def seed_value(hub: Hub, tag: str = "") -> dict[str, str]:
    """Record the twelve customers' story; their ids by letter."""
    who = ids(tag)
    c = {n: UUID(v) for n, v in who.items()}
    for n in NAMES:
        hub.execute(m.RegisterCustomer(
            customer_id=c[n], name=f"Customer {n.upper()}", source_key=f"{tag}v-reg:{n}",
            lifecycle_stage="current" if n == "e" else "prospect", occurred_at=at(1, 2)))
    steps: list[Any] = [_order(c["a"], f"{tag}A-{k}", "100.00", at(k)) for k in range(1, 7)]
    steps += [
        _order(c["b"], f"{tag}B-1", "500.00", at(1)),
        _order(c["c"], f"{tag}C-1", "200.00", at(1)),
        m.LogCall(customer_id=c["c"], call_id=f"{tag}call-c", occurred_at=at(5)),
        _order(c["d"], f"{tag}D-1", "50.00", at(1)),
        m.ChangeLifecycleStage(customer_id=c["d"], to_stage="lost", occurred_at=at(2)),
        _order(c["f"], f"{tag}F-1", "1000.00", at(2)),
        _order(c["f"], f"{tag}F-2", "1000.00", at(3)),
        _order(c["g"], f"{tag}G-1", "300.00", at(2)),
        m.ChangeLifecycleStage(customer_id=c["g"], to_stage="lost", occurred_at=at(3)),
        _order(c["g"], f"{tag}G-2", "300.00", at(5)),
        _order(c["h"], f"{tag}H-1", "80.00", at(3)),
        m.RecordEmail(customer_id=c["h"], message_id=f"<{tag}h@hub>", direction="outbound",
                      from_address="sales@hub.example", subject="Offer", occurred_at=at(4)),
        _order(c["i"], f"{tag}I-1", "2000.00", at(3)),
        s.CancelOrder(customer_id=c["i"], order_number=f"{tag}I-1", occurred_at=at(3, 12)),
        _order(c["j"], f"{tag}J-1", "400.00", at(4)),
        s.ReturnOrder(customer_id=c["j"], order_number=f"{tag}J-1", amount="100.00",
                      return_id="r1", occurred_at=at(5)),
        m.RecordEmail(customer_id=c["k"], message_id=f"<{tag}k@mail>",
                      from_address="k@example.com", subject="Question", occurred_at=at(2)),
        _order(c["l"], f"{tag}L-1", "150.00", at(6)),
    ]
    for cmd in steps:
        hub.execute(cmd)
    return who


# Hand-computed (see the module docstring): (cohort, period) → (active, churned,
# returned, churn_rate, retention_rate, share).
TRIANGLE: dict[tuple[str, int], tuple[int, int, int, float | None, float | None, float]] = {
    ("2026-01", 0): (5, 0, 0, None, None, 1.0),
    ("2026-01", 1): (4, 1, 0, 0.2, 0.8, 0.8),
    ("2026-01", 2): (1, 3, 0, 0.75, 0.25, 0.2),
    ("2026-01", 3): (1, 0, 0, 0.0, 1.0, 0.2),
    ("2026-01", 4): (2, 0, 1, 0.0, 1.0, 0.4),
    ("2026-01", 5): (2, 0, 0, 0.0, 1.0, 0.4),
    ("2026-02", 0): (2, 0, 0, None, None, 1.0),
    ("2026-02", 1): (1, 1, 0, 0.5, 0.5, 0.5),
    ("2026-02", 2): (1, 0, 0, 0.0, 1.0, 0.5),
    ("2026-02", 3): (1, 1, 1, 1.0, 0.0, 0.5),
    ("2026-02", 4): (1, 0, 0, 0.0, 1.0, 0.5),
    ("2026-03", 0): (1, 0, 0, None, None, 1.0),
    ("2026-03", 1): (1, 0, 0, 0.0, 1.0, 1.0),
    ("2026-03", 2): (0, 1, 0, 1.0, 0.0, 0.0),
    ("2026-03", 3): (0, 0, 0, None, None, 0.0),
    ("2026-04", 0): (1, 0, 0, None, None, 1.0),
    ("2026-04", 1): (1, 0, 0, 0.0, 1.0, 1.0),
    ("2026-04", 2): (0, 1, 0, 1.0, 0.0, 0.0),
    ("2026-06", 0): (1, 0, 0, None, None, 1.0),
}
SIZES = {"2026-01": 5, "2026-02": 2, "2026-03": 1, "2026-04": 1, "2026-06": 1}
REVENUE = {"a": "600.00", "b": "500.00", "c": "200.00", "d": "50.00", "f": "2000.00",
           "g": "600.00", "h": "80.00", "j": "300.00", "l": "150.00"}
TIERS = {"f": "key", "a": "key", "g": "key", "b": "major", "j": "ordinary", "c": "ordinary",
         "l": "ordinary", "h": "small", "d": "small"}
# customers, revenue, share of 4480
TIER_SUMMARY = {"key": (3, "3200.00", 0.7143), "major": (1, "500.00", 0.1116),
                "ordinary": (3, "650.00", 0.1451), "small": (2, "130.00", 0.029)}


def clv_at_zero_rate(margin: Decimal) -> dict[str, str]:
    """At a 0 % rate the CLV is the margin on the revenue."""
    return {n: format((Decimal(v) * margin).quantize(Decimal("0.01")), "f")
            for n, v in REVENUE.items()}
