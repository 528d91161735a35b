"""Reading orders: revenue, order count, average order value and returns per month or per
customer; RFM scores as of any day; a customer's orders; the events behind a figure.

Revenue is the placed orders' totals less their refunds, cancelled orders left
out; per currency, exact (integers of minor units summed in SQL). Returns are
counted in the month of the refund. RFM (``domain.rfm``) is computed here for the
requested day from the order facts (placed by then, not cancelled by then, less
the refunds made by then), so a past day reads as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from domain.rfm import Purchase, rfm
from domain.sales import MINOR_UNITS, from_minor
from projections.customers import group
from projections.engine import Names
from projections.events import iso, moment, us
from projections.orders.projection import OrdersProjection
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

MAX_PAGE = 500
# Orders and their totals, cancelled ones left out (a customer or month with only
# cancelled orders still has its row, with 0 orders).
_KEPT = ("SUM(CASE WHEN cancelled_us IS NULL THEN 1 ELSE 0 END), "
         "SUM(CASE WHEN cancelled_us IS NULL THEN total_minor ELSE 0 END)")


def _end_of(day: date) -> int:
    """Microseconds at the start of the next day (UTC): ``< _end_of(d)`` is "on or before d"."""
    return us(datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC))


def _aov(revenue_minor: int, count: int, currency: str) -> str | None:
    if not count:
        return None
    return from_minor(round(Decimal(int(revenue_minor)) / count), currency)


def _scope(t: Names, partner_id: str | None, column: str = "customer_id") -> tuple[str, list[Any]]:
    if partner_id is None:
        return "", []
    return (f" AND {column} IN (SELECT customer_id FROM {t.customer} WHERE partner_id=?)",
            [partner_id])


class OrdersView(LiveView):
    projection = OrdersProjection()

    def per_month(self, partner_id: str | None = None, from_month: str | None = None,
                  to_month: str | None = None) -> list[dict[str, Any]]:
        """Per month and currency: revenue (net of refunds), orders, AOV, returns."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = _scope(t, partner_id)
            for op, value in ((">=", from_month), ("<=", to_month)):
                if value is not None:
                    where += f" AND month {op} ?"
                    params.append(value)
            placed = db.all(
                f"SELECT month, currency, {_KEPT} FROM {t.sales_order} "
                f"WHERE 1=1{where} GROUP BY month, currency", params)
            refunds = db.all(
                f"SELECT month, currency, COUNT(*), SUM(amount_minor) FROM {t.refund} "
                f"WHERE 1=1{where} GROUP BY month, currency", params)
            return _merge(placed, refunds, "month")

        return self.run(query)

    def per_customer(self, partner_id: str | None = None, limit: int = 100,
                     after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Per customer and currency (a page of customers by id)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], str | None]:
            where, params = _scope(t, partner_id)
            if after is not None:
                where += " AND customer_id > ?"
                params.append(after)
            ids = [r[0] for r in db.all(
                f"SELECT DISTINCT customer_id FROM {t.sales_order} WHERE 1=1{where} "
                "ORDER BY customer_id LIMIT ?", [*params, limit + 1])]
            page = ids[:limit]
            if not page:
                return [], None
            marks = ",".join("?" * len(page))
            placed = db.all(
                f"SELECT customer_id, currency, {_KEPT} FROM {t.sales_order} "
                f"WHERE customer_id IN ({marks}) "
                "GROUP BY customer_id, currency", page)
            refunds = db.all(
                f"SELECT customer_id, currency, COUNT(*), SUM(amount_minor) FROM {t.refund} "
                f"WHERE customer_id IN ({marks}) GROUP BY customer_id, currency", page)
            return _merge(placed, refunds, "customer_id"), (page[-1] if len(ids) > limit else None)

        return self.run(query)

    def of_customer(self, root: str) -> list[dict[str, Any]]:
        """The orders of a customer and of those merged into it, newest first."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            members = group(db, t.customer, root)
            marks = ",".join("?" * len(members))
            rows = db.all(
                "SELECT order_number, customer_id, currency, total_minor, lines, placed_us, "
                "paid_minor, refunded_minor, shipped_us, cancelled_us, opportunity_id "
                f"FROM {t.sales_order} WHERE customer_id IN ({marks}) "
                "ORDER BY placed_us DESC, order_number", members)
            return [{"order_number": r[0], "customer_id": r[1], "currency": r[2],
                     "total": from_minor(r[3], r[2]), "lines": int(r[4]),
                     "placed_at": iso(r[5]), "paid": from_minor(r[6], r[2]),
                     "refunded": from_minor(r[7], r[2]), "shipped_at": iso(r[8]),
                     "cancelled_at": iso(r[9]), "opportunity_id": r[10],
                     "status": _status(r)} for r in rows]

        return self.run(query)

    def rfm(self, as_of: date, period_days: int, currency: str,
            partner_id: str | None = None) -> list[dict[str, Any]]:
        """RFM scores of every customer with an order in ``currency`` by ``as_of`` (merged
        customers scored as their root), scored among the customers in scope."""
        cutoff = _end_of(as_of)

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            roots = _roots(db.all(f"SELECT customer_id, merged_into FROM {t.customer}"))
            where, params = _scope(t, partner_id, "o.customer_id")
            orders = db.all(
                f"SELECT o.order_number, o.customer_id, o.placed_us, o.total_minor, "
                f"COALESCE((SELECT SUM(r.amount_minor) FROM {t.refund} r WHERE "
                "r.order_number=o.order_number AND r.at_us < ?), 0) "
                f"FROM {t.sales_order} o WHERE o.currency=? AND o.placed_us < ? "
                f"AND (o.cancelled_us IS NULL OR o.cancelled_us >= ?){where}",
                [cutoff, currency, cutoff, cutoff, *params])
            return _scores(orders, roots, as_of, period_days, currency)

        return self.run(query)

    def rfm_of(self, root: str, as_of: date, period_days: int, currency: str,
               partner_id: str | None = None) -> dict[str, Any] | None:
        """One customer's RFM scores (among all customers in scope)."""
        for row in self.rfm(as_of, period_days, currency, partner_id):
            if row["customer_id"] == root:
                return row
        return None

    def event_ids(self, *, partner_id: str | None = None, month: str | None = None,
                  customer_id: str | None = None, after: int = 0,
                  limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
        """The events of the orders placed in ``month`` and/or of ``customer_id``, in log
        order, a page after ``after``; the next page's ``after`` or None."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], int | None]:
            where, params = _scope(t, partner_id, "o.customer_id")
            if month is not None:
                where += " AND o.month=?"
                params.append(month)
            if customer_id is not None:
                members = group(db, t.customer, customer_id)
                where += f" AND o.customer_id IN ({','.join('?' * len(members))})"
                params.extend(members)
            rows = db.all(
                "SELECT e.event_id, e.order_number, e.customer_id, e.position, e.kind "
                f"FROM {t.event} e JOIN {t.sales_order} o ON o.order_number=e.order_number "
                f"WHERE e.position > ?{where} ORDER BY e.position LIMIT ?",
                [after, *params, limit + 1])
            page = [{"event_id": r[0], "order_number": r[1], "customer_id": r[2],
                     "position": int(r[3]), "kind": r[4]} for r in rows[:limit]]
            return page, (page[-1]["position"] if len(rows) > limit else None)

        return self.run(query)


def _status(r: Any) -> str:
    if r[9] is not None:
        return "cancelled"
    if r[7]:
        return "returned" if r[7] >= r[3] else "partly returned"
    if r[8] is not None:
        return "shipped"
    return "paid" if r[6] >= r[3] else "placed"


def _merge(placed: Iterable[Any], refunds: Iterable[Any], key: str) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[int]] = {}
    for k, cur, n, total in placed:
        rows.setdefault((k, cur), [0, 0, 0, 0])[0:2] = [int(n), int(total)]
    for k, cur, n, total in refunds:
        rows.setdefault((k, cur), [0, 0, 0, 0])[2:4] = [int(n), int(total)]
    out = []
    for (k, cur), (n, gross, returns, refunded) in sorted(rows.items()):
        revenue = gross - refunded
        out.append({key: k, "currency": cur, "orders": n, "gross": from_minor(gross, cur),
                    "returns": returns, "refunded": from_minor(refunded, cur),
                    "revenue": from_minor(revenue, cur), "average_order_value": _aov(
                        revenue, n, cur)})
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


def _scores(orders: Iterable[Any], roots: dict[str, str], as_of: date, period_days: int,
            currency: str) -> list[dict[str, Any]]:
    digits = MINOR_UNITS.get(currency, 2)
    purchases = [Purchase(roots.get(cid, cid), moment(placed).date(),
                          Decimal(int(total) - int(refunded)).scaleb(-digits))
                 for _, cid, placed, total, refunded in orders]
    return [{"customer_id": s.customer_id, "as_of": as_of.isoformat(),
             "last_purchase": s.last_purchase.isoformat(), "recency_days": s.recency_days,
             "frequency": s.frequency, "monetary": format(
                 s.monetary.quantize(Decimal(1).scaleb(-digits)), "f"),
             "currency": currency, "r": s.r, "f": s.f, "m": s.m, "rfm": s.code}
            for s in rfm(purchases, as_of, period_days)]
