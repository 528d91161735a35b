"""Reading the commissions read model: won amount × rate per owner, period and currency."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from domain.work import CommissionRates, commission
from projections.commissions.projection import CommissionsProjection
from projections.engine import Names
from projections.events import moment, us
from projections.store import Db
from projections.views import LiveView

PERIODS = ("month", "quarter", "year")


def period_of(when: datetime, period: str) -> str:
    if period == "month":
        return f"{when.year}-{when.month:02d}"
    if period == "quarter":
        return f"{when.year}-Q{(when.month - 1) // 3 + 1}"
    return str(when.year)


class CommissionsView(LiveView):
    projection = CommissionsProjection()

    def commissions(self, start: datetime, end: datetime, period: str,
                    rates: CommissionRates, owner: str | None = None) -> dict[str, Any]:
        """Per period, owner and currency: deals won in [start, end), their total, the rate
        in force and the commission (periods in UTC)."""
        def query(db: Db, t: Names) -> list[Any]:
            where, params = "won_us >= ? AND won_us < ?", [us(start), us(end)]
            if owner is not None:
                where += " AND owner = ?"
                params.append(owner)
            return db.all(f"SELECT owner, currency, amount, won_us FROM {t.won} WHERE {where} "
                          "ORDER BY won_us, opportunity_id", params)

        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for who, currency, amount, won_us in self.run(query):
            groups[(period_of(moment(int(won_us)), period), who, currency)].append(amount)
        items = []
        for (when, who, currency), amounts in sorted(groups.items()):
            rate = rates.rate(who)
            total, earned = commission(amounts, rate)
            items.append({"period": when, "owner": who, "currency": currency,
                          "deals": len(amounts), "won_amount": f"{total:.2f}",
                          "rate": str(rate), "commission": f"{earned:.2f}"})
        return {"from": start.isoformat(), "to": end.isoformat(), "period": period,
                "items": items}
