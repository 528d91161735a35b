"""Reading the value read model: cohorts, historic CLV, value tiers and RFM as of any day.

Every figure is computed here, at read time, by the pure rules (``domain.value``,
``domain.rfm``) from the facts that occurred by the end of the as-of day (UTC)
— and, with ``known_at``, were also recorded by then ("as we knew it then").
Merged customers count as their root. Revenue is orders placed less refunds,
cancelled orders (cancelled by then) left out, in one currency; an order in any
currency is a purchase for the cohorts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from domain import value as rules
from domain.rfm import Purchase, rfm
from domain.sales import MINOR_UNITS
from projections.engine import Names
from projections.events import iso, moment, us
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.value.projection import ValueProjection
from projections.views import LiveView

MAX_PAGE = 500
_FAR = 2**62
ORDER_KINDS = ("order_placed", "order_paid", "order_returned", "order_cancelled")
DRILL_STATUSES = ("all", "active", "churned", "returned", "inactive")


def end_of(day: date) -> int:
    """Microseconds at the start of the next day (UTC): ``< end_of(d)`` is "on or before d"."""
    return us(datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC))


@dataclass(frozen=True)
class Cut:
    """Which facts count: occurred before ``occurred`` and recorded before ``recorded``."""

    as_of: date
    known_at: datetime | None = None

    @property
    def occurred(self) -> int:
        return end_of(self.as_of)

    @property
    def recorded(self) -> int:
        return us(self.known_at) if self.known_at is not None else _FAR


@dataclass
class Book:
    """The facts of every customer up to a cut, by root customer."""

    purchases: list[tuple[str, int, str, int, str]]  # root, at_us, currency, minor, order
    refunds: list[tuple[str, int, str, int, str]]    # root, at_us, currency, minor, order
    interactions: list[rules.Activity]
    stages: list[rules.Activity]

    def activities(self) -> list[rules.Activity]:
        bought = [rules.Activity(c, moment(at), rules.PURCHASE, ref=o)
                  for c, at, _, _, o in self.purchases]
        return [*bought, *self.interactions, *self.stages]

    def revenues(self, currency: str, since_month: str | None = None) -> list[rules.Revenue]:
        digits = MINOR_UNITS.get(currency, 2)
        out = [rules.Revenue(c, moment(at), Decimal(m).scaleb(-digits), o)
               for c, at, cur, m, o in self.purchases if cur == currency]
        out += [rules.Revenue(c, moment(at), -Decimal(m).scaleb(-digits), o)
                for c, at, cur, m, o in self.refunds if cur == currency]
        if since_month is not None:
            out = [r for r in out if rules.month_of(r.at) >= since_month]
        return out


def _roots(rows: Iterable[Any]) -> dict[str, str]:
    parent = {c: m for c, m in rows}
    roots: dict[str, str] = {}
    for c in parent:
        current, hops = c, 0
        while parent.get(current) and hops < 10:
            current, hops = parent[current], hops + 1
        roots[c] = current
    return roots


def _money(amount: Decimal, currency: str) -> str:
    return format(amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))), "f")


class ValueView(LiveView):
    projection = ValueProjection()

    # -- loading -------------------------------------------------------------
    def _book(self, db: Db, t: Names, cut: Cut, count_outbound: bool) -> Book:
        roots = _roots(db.all(f"SELECT customer_id, merged_into FROM {t.customer}"))
        root = lambda c: roots.get(c, c)
        known = "occurred_us < ? AND recorded_us < ?"
        bounds = (cut.occurred, cut.recorded)
        not_cancelled = (f"NOT EXISTS (SELECT 1 FROM {t.fact} c WHERE "
                         "c.kind='order_cancelled' AND c.order_number=f.order_number AND "
                         "c.occurred_us < ? AND c.recorded_us < ?)")
        placed = db.all(
            f"SELECT customer_id, occurred_us, currency, amount_minor, order_number "
            f"FROM {t.fact} f WHERE kind='order_placed' AND {known} AND {not_cancelled}",
            (*bounds, *bounds))
        refunds = db.all(
            f"SELECT customer_id, occurred_us, currency, amount_minor, order_number "
            f"FROM {t.fact} f WHERE kind='order_returned' AND {known} AND {not_cancelled}",
            (*bounds, *bounds))
        outbound = "" if count_outbound else " AND (direction<>'outbound' OR channel='visit')"
        touched = db.all(
            f"SELECT customer_id, month, MIN(occurred_us) FROM {t.fact} WHERE "
            f"kind='interaction' AND {known}{outbound} GROUP BY customer_id, month", bounds)
        stages = db.all(
            f"SELECT customer_id, occurred_us, stage, event_id FROM {t.fact} "
            f"WHERE kind='stage' AND {known} ORDER BY occurred_us, position", bounds)
        return Book(
            purchases=[(root(c), int(at), cur, int(m), o) for c, at, cur, m, o in placed],
            refunds=[(root(c), int(at), cur, int(m), o) for c, at, cur, m, o in refunds],
            interactions=[rules.Activity(root(c), moment(int(at)), rules.INTERACTION)
                          for c, _, at in touched],
            stages=[rules.Activity(root(c), moment(int(at)), rules.STAGE, stage=s, ref=e)
                    for c, at, s, e in stages])

    def book(self, cut: Cut, count_outbound: bool = False) -> Book:
        return self.run(lambda db, t: self._book(db, t, cut, count_outbound))

    # -- figures -------------------------------------------------------------
    def cohorts(self, cut: Cut, window_months: int, count_outbound: bool = False
                ) -> rules.Cohorts:
        """The cohort triangle (``domain.value.cohorts``) as of the cut."""
        return rules.cohorts(self.book(cut, count_outbound).activities(), cut.as_of,
                             window_months)

    def clv(self, cut: Cut, margin: Decimal, annual_rate: Decimal, currency: str
            ) -> list[dict[str, Any]]:
        """Per customer with a purchase in ``currency``: orders, revenue, margin and
        historic CLV as of the cut, by customer id."""
        revenues = self.book(cut).revenues(currency)
        values = rules.historic_clv(revenues, cut.as_of, margin, annual_rate,
                                    MINOR_UNITS.get(currency, 2))
        orders: dict[str, set[str]] = {}
        revenue: dict[str, Decimal] = {}
        first: dict[str, datetime] = {}
        for r in revenues:
            revenue[r.customer_id] = revenue.get(r.customer_id, Decimal(0)) + r.amount
            if r.amount >= 0 and r.ref is not None:
                orders.setdefault(r.customer_id, set()).add(r.ref)
                first[r.customer_id] = min(first.get(r.customer_id, r.at), r.at)
        return [{"customer_id": c, "as_of": cut.as_of.isoformat(), "currency": currency,
                 "orders": len(orders.get(c, ())), "first_purchase": first[c].date().isoformat()
                 if c in first else None, "revenue": _money(revenue[c], currency),
                 "margin": _money(revenue[c] * margin, currency),
                 "clv": _money(values[c], currency)} for c in values]

    def tiers(self, cut: Cut, months: int, bands: Sequence[tuple[str, Decimal]],
              currency: str) -> tuple[list[rules.TierSummary], dict[str, str],
                                      dict[str, Decimal]]:
        """The value pyramid on the revenue of ``months`` months up to the as-of month (0:
        all history): the per-tier summary, each customer's tier and revenue."""
        since = None if months == 0 else rules.month_at(
            rules.month_index(rules.month_of(cut.as_of)) - months + 1)
        revenue: dict[str, Decimal] = {}
        for r in self.book(cut).revenues(currency, since):
            revenue[r.customer_id] = revenue.get(r.customer_id, Decimal(0)) + r.amount
        tiers = rules.pyramid(revenue, bands)
        return rules.tier_summary(revenue, tiers), tiers, revenue

    def rfm(self, cut: Cut, period_days: int, currency: str) -> list[dict[str, Any]]:
        """RFM scores (``domain.rfm``) per customer with an order in ``currency``: each order
        net of the refunds made by the cut."""
        book = self.book(cut)
        refunded: dict[str, int] = {}
        for _, _, cur, minor, order in book.refunds:
            if cur == currency:
                refunded[order] = refunded.get(order, 0) + minor
        digits = MINOR_UNITS.get(currency, 2)
        purchases = [Purchase(c, moment(at).date(),
                              Decimal(minor - refunded.get(o, 0)).scaleb(-digits))
                     for c, at, cur, minor, o in book.purchases if cur == currency]
        return [{"customer_id": s.customer_id, "as_of": cut.as_of.isoformat(),
                 "last_purchase": s.last_purchase.isoformat(), "recency_days": s.recency_days,
                 "frequency": s.frequency, "monetary": _money(s.monetary, currency),
                 "currency": currency, "r": s.r, "f": s.f, "m": s.m, "rfm": s.code}
                for s in rfm(purchases, cut.as_of, period_days)]

    # -- drill-down ----------------------------------------------------------
    def event_ids(self, roots: Sequence[str], cut: Cut, *, kinds: Sequence[str] = (),
                  from_month: str | None = None, after: int = 0, limit: int = 100
                  ) -> tuple[list[dict[str, Any]], int | None]:
        """The facts of ``roots`` (and the customers merged into them) up to the cut, of
        ``kinds`` (all when empty) from ``from_month`` on, in log order after ``after``;
        the next page's ``after`` or None."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], int | None]:
            wanted = set(roots)
            all_roots = _roots(db.all(f"SELECT customer_id, merged_into FROM {t.customer}"))
            members = sorted(c for c, r in all_roots.items() if r in wanted) or [""]
            conds = [f"customer_id IN ({','.join('?' * len(members))})",
                     "occurred_us < ?", "recorded_us < ?", "position > ?"]
            params: list[Any] = [*members, cut.occurred, cut.recorded, after]
            if kinds:
                conds.append(f"kind IN ({','.join('?' * len(kinds))})")
                params.extend(kinds)
            if from_month is not None:
                conds.append("month >= ?")
                params.append(from_month)
            rows = db.all(
                "SELECT event_id, customer_id, position, kind, occurred_us, recorded_us, "
                f"order_number, stage FROM {t.fact} WHERE {' AND '.join(conds)} "
                "ORDER BY position LIMIT ?", [*params, limit + 1])
            page = [{"event_id": r[0], "customer_id": all_roots.get(r[1], r[1]),
                     "position": int(r[2]), "kind": r[3], "occurred_at": iso(r[4]),
                     "recorded_at": iso(r[5]), "order_number": r[6], "stage": r[7]}
                    for r in rows[:limit]]
            return page, (page[-1]["position"] if len(rows) > limit else None)

        return self.run(query)
