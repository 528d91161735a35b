"""Reading the value read model: cohorts, historic CLV, value tiers and RFM as of any day.

Every figure is computed here, at read time, by the pure rules (``domain.value``,
``domain.rfm``) from the facts that occurred by the end of the day asked (``until``,
UTC) — and, with ``known_before_us``, were also recorded before that moment ("as we
knew it then"; the routes' ``as_of``).
Merged customers count as their root. Revenue is orders placed less refunds,
cancelled orders (cancelled by then) left out, in one currency; an order in any
currency is a purchase for the cohorts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from domain import value as rules
from domain.rfm import Purchase, rfm
from domain.sales import MINOR_UNITS, from_minor
from projections.customers import roots
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
    """Which facts count: those that occurred by the end of ``until`` and, when
    ``known_before_us`` is given, were recorded before it ("as we knew it then")."""

    until: date
    known_before_us: int | None = None

    @property
    def occurred(self) -> int:
        return end_of(self.until)

    @property
    def recorded(self) -> int:
        return _FAR if self.known_before_us is None else self.known_before_us


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

    def revenues(self, currency: str) -> list[rules.Revenue]:
        digits = MINOR_UNITS.get(currency, 2)
        out = [rules.Revenue(c, moment(at), Decimal(m).scaleb(-digits), o)
               for c, at, cur, m, o in self.purchases if cur == currency]
        out += [rules.Revenue(c, moment(at), -Decimal(m).scaleb(-digits), o)
                for c, at, cur, m, o in self.refunds if cur == currency]
        return out


def _money(amount: Decimal, currency: str) -> str:
    return format(amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))), "f")


class ValueView(LiveView):
    projection = ValueProjection()

    # -- loading -------------------------------------------------------------
    def _book(self, db: Db, t: Names, cut: Cut, count_outbound: bool) -> Book:
        root_of = roots(db, t.customer)
        root = lambda c: root_of.get(c, c)
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
    def cohorts(self, cut: Cut, policy: rules.ValuePolicy, since: date | None = None
                ) -> rules.Cohorts:
        """The cohort triangle (``domain.value.cohorts``) as of the cut; with ``since``,
        only the cells of cohorts from that day's month on."""
        found = rules.cohorts(self.book(cut, policy.count_outbound).activities(), cut.until,
                              policy.churn_window_months)
        if since is not None:
            first = rules.month_of(since)
            found.cells[:] = [c for c in found.cells if c.cohort >= first]
        return found

    def clv(self, cut: Cut, policy: rules.ValuePolicy) -> list[dict[str, Any]]:
        """Per customer with a purchase in the policy's currency: orders, revenue, margin
        and historic CLV as of the cut, highest CLV first (then by customer id)."""
        currency = policy.currency
        revenues = self.book(cut).revenues(currency)
        values = rules.historic_clv(revenues, cut.until, policy.margin, policy.discount_rate,
                                    MINOR_UNITS.get(currency, 2))
        orders: dict[str, set[str]] = {}
        revenue: dict[str, Decimal] = {}
        first: dict[str, datetime] = {}
        for r in revenues:
            revenue[r.customer_id] = revenue.get(r.customer_id, Decimal(0)) + r.amount
            if r.amount >= 0 and r.ref is not None:
                orders.setdefault(r.customer_id, set()).add(r.ref)
                first[r.customer_id] = min(first.get(r.customer_id, r.at), r.at)
        ranked = sorted(values, key=lambda c: (-values[c], c))
        return [{"customer_id": c, "currency": currency, "orders": len(orders.get(c, ())),
                 "first_purchase": first[c].date().isoformat() if c in first else None,
                 "revenue": _money(revenue[c], currency),
                 "margin": _money(revenue[c] * policy.margin, currency),
                 "clv": _money(values[c], currency)} for c in ranked]

    def tiers(self, cut: Cut, since: date, policy: rules.ValuePolicy
              ) -> tuple[list[rules.TierSummary], dict[str, str], dict[str, Decimal]]:
        """The value pyramid on the revenue from ``since`` to the cut: the per-tier
        summary, each customer's tier and revenue."""
        revenue: dict[str, Decimal] = {}
        for r in self.book(cut).revenues(policy.currency):
            if r.at.date() >= since:
                revenue[r.customer_id] = revenue.get(r.customer_id, Decimal(0)) + r.amount
        tiers = rules.pyramid(revenue, policy.bands)
        return rules.tier_summary(revenue, tiers), tiers, revenue

    def rfm(self, cut: Cut, since: date, currency: str) -> list[dict[str, Any]]:
        """RFM scores (``domain.rfm``) as of the cut over the days from ``since``, per
        customer with an order in ``currency``; each order net of the refunds made by the cut."""
        book = self.book(cut)
        refunded: dict[str, int] = {}
        for _, _, cur, minor, order in book.refunds:
            if cur == currency:
                refunded[order] = refunded.get(order, 0) + minor
        digits = MINOR_UNITS.get(currency, 2)
        purchases = [Purchase(c, moment(at).date(),
                              Decimal(minor - refunded.get(o, 0)).scaleb(-digits))
                     for c, at, cur, minor, o in book.purchases if cur == currency]
        period = (cut.until - since).days + 1
        return [{"customer_id": s.customer_id, "last_purchase": s.last_purchase.isoformat(),
                 "recency_days": s.recency_days, "frequency": s.frequency,
                 "monetary": _money(s.monetary, currency), "currency": currency,
                 "r": s.r, "f": s.f, "m": s.m, "rfm": s.code}
                for s in rfm(purchases, cut.until, period)]

    # -- drill-down ----------------------------------------------------------
    def events(self, customers: Sequence[str], cut: Cut, after: int, limit: int, *,
               kinds: Sequence[str] = (), since: date | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` facts of ``customers`` (and those merged into them) up to the
        cut, of ``kinds`` (all when empty), from ``since`` on, in log order after ``after``
        (the drill-down's page; ``role`` is the fact's kind)."""
        if not 1 <= limit <= MAX_PAGE + 1:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            wanted = set(customers)
            all_roots = roots(db, t.customer)
            members = sorted(c for c, r in all_roots.items() if r in wanted) or [""]
            conds = [f"customer_id IN ({','.join('?' * len(members))})",
                     "occurred_us < ?", "recorded_us < ?", "position > ?"]
            params: list[Any] = [*members, cut.occurred, cut.recorded, after]
            if kinds:
                conds.append(f"kind IN ({','.join('?' * len(kinds))})")
                params.extend(kinds)
            if since is not None:
                conds.append("occurred_us >= ?")
                params.append(end_of(since - timedelta(days=1)))
            rows = db.all(
                "SELECT event_id, customer_id, position, kind, occurred_us, recorded_us, "
                "order_number, currency, amount_minor, stage, channel, direction "
                f"FROM {t.fact} WHERE {' AND '.join(conds)} ORDER BY position LIMIT ?",
                [*params, limit])
            return [{"event_id": r[0], "customer_id": all_roots.get(r[1], r[1]),
                     "position": int(r[2]), "occurred_at": iso(r[4]),
                     "recorded_at": iso(r[5]), "role": r[3],
                     "detail": _detail(r, all_roots.get(r[1], r[1]))}
                    for r in rows]

        return self.run(query)


def _detail(r: Sequence[Any], root: str) -> dict[str, Any]:
    out: dict[str, Any] = {} if r[1] == root else {"merged_from": r[1]}
    if r[6] is not None:
        out["order_number"] = r[6]
    if r[7] is not None and r[8] is not None:
        out.update(currency=r[7], amount=from_minor(int(r[8]), r[7]))
    for key, value in (("stage", r[9]), ("channel", r[10]), ("direction", r[11])):
        if value is not None:
            out[key] = value
    return out
