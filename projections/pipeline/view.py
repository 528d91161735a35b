"""Reading the pipeline: open opportunities by stage/owner/close month, the weighted
forecast, stage conversion and days in stage, win rate and sales cycle, and the events
behind each figure.

Amounts are summed per currency as integers of minor units (exact) and returned as
decimal strings. The weighted amount is Σ amount × probability / 100 with the
probability recorded when the opportunity entered its stage. ``partner_id``
restricts every figure to the customers assigned to that partner.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.sales import MINOR_UNITS, from_minor
from projections.customers import group
from projections.engine import Names
from projections.events import iso
from projections.pipeline.projection import PipelineProjection
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

GROUPINGS = {"stage": "stage", "owner": "owner", "close_month": "close_month"}
_DAY_US = 86_400_000_000
MAX_PAGE = 500


def weighted(total_weighted_minor: int, currency: str) -> str:
    """Σ amount_minor × probability, as an amount (÷ 100, rounded half up to the minor unit)."""
    digits = MINOR_UNITS.get(currency, 2)
    value = (Decimal(int(total_weighted_minor)) / 100).scaleb(-digits)
    return format(value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP), "f")


def _scope(t: Names, partner_id: str | None, column: str = "customer_id") -> tuple[str, list[Any]]:
    if partner_id is None:
        return "", []
    return (f" AND {column} IN (SELECT customer_id FROM {t.customer} WHERE partner_id=?)",
            [partner_id])


def _days(micros: Any) -> float | None:
    return None if micros is None else round(float(micros) / _DAY_US, 2)


class PipelineView(LiveView):
    projection = PipelineProjection()

    def open_by(self, by: str, partner_id: str | None = None) -> list[dict[str, Any]]:
        """Open opportunities grouped by ``stage``, ``owner`` or ``close_month`` (and currency)."""
        if by not in GROUPINGS:
            raise InvalidQueryError(f"by must be one of {', '.join(GROUPINGS)}")
        column = GROUPINGS[by]

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = _scope(t, partner_id)
            rows = db.all(
                f"SELECT {column}, currency, COUNT(*), SUM(amount_minor), "
                f"SUM(amount_minor * probability) FROM {t.opportunity} WHERE status='open'"
                f"{where} GROUP BY {column}, currency ORDER BY {column}, currency", params)
            return [{by: key, "currency": cur, "count": int(n),
                     "amount": from_minor(total, cur), "weighted": weighted(w, cur)}
                    for key, cur, n, total, w in rows]

        return self.run(query)

    def forecast(self, partner_id: str | None = None, owner: str | None = None,
                 from_month: str | None = None, to_month: str | None = None
                 ) -> list[dict[str, Any]]:
        """Weighted forecast of open opportunities per expected close month and owner."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = _scope(t, partner_id)
            for column, op, value in (("owner", "=", owner), ("close_month", ">=", from_month),
                                      ("close_month", "<=", to_month)):
                if value is not None:
                    where += f" AND {column} {op} ?"
                    params.append(value)
            rows = db.all(
                f"SELECT close_month, owner, currency, COUNT(*), SUM(amount_minor), "
                f"SUM(amount_minor * probability) FROM {t.opportunity} WHERE status='open'"
                f"{where} GROUP BY close_month, owner, currency "
                "ORDER BY close_month, owner, currency", params)
            return [{"close_month": month, "owner": who, "currency": cur, "count": int(n),
                     "amount": from_minor(total, cur), "weighted": weighted(w, cur)}
                    for month, who, cur, n, total, w in rows]

        return self.run(query)

    def stages(self, partner_id: str | None = None) -> list[dict[str, Any]]:
        """Per stage: visits, how many left it, how many advanced (to a stage of higher
        probability, won included), the conversion rate and the average days in it."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = "", []
            if partner_id is not None:
                where = (f" AND opportunity_id IN (SELECT opportunity_id FROM {t.opportunity} "
                         f"WHERE customer_id IN (SELECT customer_id FROM {t.customer} "
                         "WHERE partner_id=?))")
                params = [partner_id]
            rows = db.all(
                f"SELECT stage, MIN(probability), COUNT(*), COUNT(left_us), "
                "SUM(CASE WHEN next_probability > probability THEN 1 ELSE 0 END), "
                f"AVG(left_us - entered_us) FROM {t.visit} WHERE 1=1{where} "
                "GROUP BY stage ORDER BY MIN(probability), stage", params)
            return [{"stage": stage, "probability": int(p), "entered": int(n),
                     "left": int(left), "advanced": int(adv or 0),
                     "conversion_rate": round(int(adv or 0) / int(left), 4) if left else None,
                     "average_days": _days(avg)}
                    for stage, p, n, left, adv, avg in rows]

        return self.run(query)

    def outcomes(self, partner_id: str | None = None) -> dict[str, Any]:
        """Open, won and lost counts, the win rate (won ÷ closed) and the average sales cycle
        (days from open to won)."""
        def query(db: Db, t: Names) -> dict[str, Any]:
            where, params = _scope(t, partner_id)
            counts = dict(db.all(f"SELECT status, COUNT(*) FROM {t.opportunity} WHERE 1=1"
                                 f"{where} GROUP BY status", params))
            cycle = db.scalar(f"SELECT AVG(closed_us - opened_us) FROM {t.opportunity} "
                              f"WHERE status='won'{where}", params)
            won, lost = int(counts.get("won", 0)), int(counts.get("lost", 0))
            return {"open": int(counts.get("open", 0)), "won": won, "lost": lost,
                    "win_rate": round(won / (won + lost), 4) if won + lost else None,
                    "average_sales_cycle_days": _days(cycle)}

        return self.run(query)

    def of_customer(self, root: str) -> list[dict[str, Any]]:
        """The opportunities of a customer and of those merged into it, newest first."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            members = group(db, t.customer, root)
            marks = ",".join("?" * len(members))
            rows = db.all(
                f"SELECT opportunity_id, customer_id, title, status, stage, probability, "
                "amount_minor, currency, owner, expected_close, opened_us, stage_since_us, "
                "closed_us, source_campaign_id, account_id, order_reference, loss_reason "
                f"FROM {t.opportunity} WHERE customer_id IN ({marks}) "
                "ORDER BY opened_us DESC, opportunity_id", members)
            return [{"opportunity_id": r[0], "customer_id": r[1], "title": r[2],
                     "status": r[3], "stage": r[4], "probability": int(r[5]),
                     "amount": from_minor(r[6], r[7]), "currency": r[7], "owner": r[8],
                     "expected_close": r[9], "opened_at": iso(r[10]),
                     "stage_since": iso(r[11]), "closed_at": iso(r[12]),
                     "source_campaign_id": r[13], "account_id": r[14],
                     "order_reference": r[15], "loss_reason": r[16]} for r in rows]

        return self.run(query)

    def event_ids(self, *, partner_id: str | None = None, status: str | None = "open",
                  stage: str | None = None, owner: str | None = None,
                  close_month: str | None = None, after: int = 0,
                  limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
        """The events behind a figure: every event of the opportunities matching the filters,
        in log order, a page after position ``after``; the next page's ``after`` or None."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], int | None]:
            where, params = _scope(t, partner_id, "o.customer_id")
            for column, value in (("status", status), ("stage", stage), ("owner", owner),
                                  ("close_month", close_month)):
                if value is not None:
                    where += f" AND o.{column}=?"
                    params.append(value)
            rows = db.all(
                f"SELECT e.event_id, e.opportunity_id, e.customer_id, e.position, e.kind "
                f"FROM {t.event} e JOIN {t.opportunity} o ON o.opportunity_id=e.opportunity_id "
                f"WHERE e.position > ?{where} ORDER BY e.position LIMIT ?",
                [after, *params, limit + 1])
            page = [{"event_id": r[0], "opportunity_id": r[1], "customer_id": r[2],
                     "position": int(r[3]), "kind": r[4]} for r in rows[:limit]]
            return page, (page[-1]["position"] if len(rows) > limit else None)

        return self.run(query)
