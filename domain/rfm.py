"""RFM: recency, frequency and monetary value per customer, scored in quintiles — pure.

The one implementation every read model and analysis uses. Given purchases
(customer, day, net amount), an as-of day and a period:

* **recency**: days from the customer's last purchase on or before the as-of day
  to the as-of day;
* **frequency**: purchases in the period (the ``period_days`` days ending on the
  as-of day, that day included);
* **monetary**: the sum of those purchases' net amounts.

Only customers with at least one purchase on or before the as-of day are
scored. Scores are quintiles 1–5 over the customers scored together, 5 the
best (most recent, most frequent, highest spend): a value's score is
``1 + ⌊5 × rank ÷ n⌋`` where ``rank`` is the number of customers with a
worse value (ties share the lower score, so equal values always score alike).
No clock: the as-of day is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class Purchase:
    customer_id: str
    on: date
    amount: Decimal


@dataclass(frozen=True)
class RfmScore:
    customer_id: str
    last_purchase: date
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int

    @property
    def code(self) -> str:
        """The usual three-digit cell, e.g. ``"545"``."""
        return f"{self.r}{self.f}{self.m}"


def quintiles(values: Mapping[str, Decimal | int], *, higher_is_better: bool = True
              ) -> dict[str, int]:
    """Quintile score 1–5 of each key's value (5: best); ties share the lower score."""
    n = len(values)
    ordered = sorted(values.values(), reverse=not higher_is_better)  # worst first
    first: dict[Decimal | int, int] = {}
    for rank, value in enumerate(ordered):
        first.setdefault(value, rank)
    return {key: 1 + (5 * first[value]) // n for key, value in values.items()}


def rfm(purchases: Iterable[Purchase], as_of: date, period_days: int) -> list[RfmScore]:
    """The RFM scores as of ``as_of`` over ``period_days``, one per customer, by customer id."""
    if period_days < 1:
        raise ValueError("period_days must be at least 1")
    start = as_of - timedelta(days=period_days - 1)
    last: dict[str, date] = {}
    frequency: dict[str, int] = {}
    monetary: dict[str, Decimal] = {}
    for p in purchases:
        if p.on > as_of:
            continue
        if p.customer_id not in last or p.on > last[p.customer_id]:
            last[p.customer_id] = p.on
        frequency.setdefault(p.customer_id, 0)
        monetary.setdefault(p.customer_id, Decimal(0))
        if p.on >= start:
            frequency[p.customer_id] += 1
            monetary[p.customer_id] += p.amount
    recency = {c: (as_of - d).days for c, d in last.items()}
    r = quintiles(recency, higher_is_better=False)
    f = quintiles(frequency)
    m = quintiles(monetary)
    return [RfmScore(c, last[c], recency[c], frequency[c], monetary[c], r[c], f[c], m[c])
            for c in sorted(last)]
