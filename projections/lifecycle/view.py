"""Reading the lifecycle: a customer's stages over time, how many customers were in each
stage as of any day, the flows into each stage per month, and the events behind them.

Counts are of customers not merged into another (a merged customer's history is its
root's); ``partner_id`` restricts them to the customers assigned to that partner.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain.customer import LIFECYCLE_STAGES
from projections.customers import group
from projections.engine import Names
from projections.events import iso, us
from projections.lifecycle.projection import LifecycleProjection
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

MAX_PAGE = 500


def _scope(t: Names, partner_id: str | None) -> tuple[str, list[Any]]:
    if partner_id is None:
        return "", []
    return (f" AND customer_id IN (SELECT customer_id FROM {t.customer} WHERE partner_id=?)",
            [partner_id])


class LifecycleView(LiveView):
    projection = LifecycleProjection()

    def history(self, root: str) -> list[dict[str, Any]]:
        """The stage changes of a customer and of those merged into it, oldest first."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            members = group(db, t.customer, root)
            marks = ",".join("?" * len(members))
            rows = db.all(f"SELECT event_id, customer_id, at_us, from_stage, to_stage "
                          f"FROM {t.transition} WHERE customer_id IN ({marks}) "
                          "ORDER BY at_us, position", members)
            return [{"event_id": r[0], "customer_id": r[1], "at": iso(r[2]),
                     "from_stage": r[3], "to_stage": r[4]} for r in rows]

        return self.run(query)

    def counts(self, as_of: date, partner_id: str | None = None) -> dict[str, int]:
        """How many customers were in each stage at the end of ``as_of`` (UTC)."""
        cutoff = us(datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC))

        def query(db: Db, t: Names) -> dict[str, int]:
            where, params = _scope(t, partner_id)
            stage: dict[str, str] = {}
            for cid, to in db.all(
                    f"SELECT customer_id, to_stage FROM {t.transition} WHERE at_us < ? "
                    f"AND customer_id IN (SELECT customer_id FROM {t.customer} "
                    f"WHERE merged_into IS NULL){where} ORDER BY at_us, position",
                    [cutoff, *params]):
                stage[cid] = to
            out = dict.fromkeys(LIFECYCLE_STAGES, 0)
            for to in stage.values():
                out[to] = out.get(to, 0) + 1
            return out

        return self.run(query)

    def flows(self, partner_id: str | None = None, from_month: str | None = None,
              to_month: str | None = None) -> list[dict[str, Any]]:
        """Changes per month into each stage (registrations counted as entering it)."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = _scope(t, partner_id)
            for op, value in ((">=", from_month), ("<=", to_month)):
                if value is not None:
                    where += f" AND month {op} ?"
                    params.append(value)
            rows = db.all(f"SELECT month, to_stage, COUNT(*) FROM {t.transition} WHERE 1=1"
                          f"{where} GROUP BY month, to_stage ORDER BY month, to_stage", params)
            return [{"month": mo, "to_stage": to, "count": int(n)} for mo, to, n in rows]

        return self.run(query)

    def event_ids(self, *, partner_id: str | None = None, to_stage: str | None = None,
                  month: str | None = None, after: int = 0, limit: int = 100
                  ) -> tuple[list[dict[str, Any]], int | None]:
        """The stage changes behind a flow figure, in log order, a page after ``after``."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be 1–{MAX_PAGE}")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], int | None]:
            where, params = _scope(t, partner_id)
            for column, value in (("to_stage", to_stage), ("month", month)):
                if value is not None:
                    where += f" AND {column}=?"
                    params.append(value)
            rows = db.all(f"SELECT event_id, customer_id, position, from_stage FROM "
                          f"{t.transition} "
                          f"WHERE position > ?{where} ORDER BY position LIMIT ?",
                          [after, *params, limit + 1])
            page = [{"event_id": r[0], "customer_id": r[1], "position": int(r[2]),
                     "kind": "registered" if r[3] is None else "lifecycle_stage_changed"}
                    for r in rows[:limit]]
            return page, (page[-1]["position"] if len(rows) > limit else None)

        return self.run(query)
