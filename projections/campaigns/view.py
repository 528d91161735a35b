"""Reading campaigns: their definitions, performance figures, attributions, and the events
behind each figure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.sales import from_minor
from projections.campaigns.projection import CampaignsProjection
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.views import LiveView

#: Figures a drill-down can name.
METRICS = ("queued", "sent", "delivered", "failed", "bounced", "suppressed", "unsubscribed",
           "response", "first_touch", "last_touch", "opportunity", "order",
           "first_touch_opportunity", "first_touch_order")
#: Which touch an attribution model credits: ``last_touch`` (the headline figures) and
#: ``first_touch`` (the ``first_touch_*`` figures); both kept for every order and opportunity.
MODELS = {"last_touch": "last_campaign_id", "first_touch": "first_campaign_id"}
_COLUMNS = ("campaign_id, name, channel, purpose, budget, currency, starts_on, ends_on, "
            "segment_id, code, tracked_number, window_days, state")


def _campaign(row: Any) -> dict[str, Any]:
    keys = [k.strip() for k in _COLUMNS.split(",")]
    found = dict(zip(keys, row, strict=True))
    found["window_days"] = int(found["window_days"])
    return found


class CampaignsView(LiveView):
    projection = CampaignsProjection()

    def campaigns(self, limit: int = 100, after: str | None = None) -> list[dict[str, Any]]:
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT {_COLUMNS} FROM {t.campaign} WHERE campaign_id > ? "
                          "ORDER BY campaign_id LIMIT ?", (after or "", limit))
            return [_campaign(r) for r in rows]
        return self.run(query)

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        def query(db: Db, t: Names) -> dict[str, Any] | None:
            row = db.one(f"SELECT {_COLUMNS} FROM {t.campaign} WHERE campaign_id=?",
                         (campaign_id,))
            return None if row is None else _campaign(row)
        return self.run(query)

    def performance(self, campaign_id: str) -> dict[str, Any] | None:
        """Sent, delivered, bounced, suppressed, unsubscribed, responses by channel, credited
        first/last touches, cost per response (budget / responses; None without any), the
        opportunities, orders and revenue (per currency) credited to it, and ROI (``roi``),
        under the last-touch model and (``first_touch_*``) the first-touch model."""
        def query(db: Db, t: Names) -> dict[str, Any] | None:
            found = db.one(f"SELECT {_COLUMNS} FROM {t.campaign} WHERE campaign_id=?",
                           (campaign_id,))
            if found is None:
                return None
            campaign = _campaign(found)
            counts = dict(db.all(f"SELECT metric, COUNT(*) FROM {t.fact} WHERE campaign_id=? "
                                 "GROUP BY metric", (campaign_id,)))
            by_channel = dict(db.all(
                f"SELECT channel, COUNT(*) FROM {t.fact} WHERE campaign_id=? AND "
                "metric='response' GROUP BY channel", (campaign_id,)))
            delivered = db.scalar(_delivered_sql(t, "COUNT(*)"), (campaign_id,))
            first = db.scalar(f"SELECT COUNT(*) FROM {t.attribution} WHERE first_campaign_id=? "
                              "AND kind='response'", (campaign_id,))
            last = db.scalar(f"SELECT COUNT(*) FROM {t.attribution} WHERE last_campaign_id=? "
                             "AND kind='response'", (campaign_id,))
            credited = {model: _credited(db, t, campaign_id, model) for model in MODELS}
            opportunities, orders, revenue = credited["last_touch"]
            first_opportunities, first_orders, first_revenue = credited["first_touch"]
            responses = int(counts.get("response", 0))
            budget = Decimal(campaign["budget"])
            return {
                "campaign_id": campaign_id, "name": campaign["name"],
                "state": campaign["state"], "budget": campaign["budget"],
                "currency": campaign["currency"],
                **{m: int(counts.get(m, 0)) for m in ("queued", "sent", "failed", "bounced",
                                                       "suppressed", "unsubscribed")},
                "delivered": int(delivered or 0),
                "responses": responses,
                "responses_by_channel": {c: int(n) for c, n in sorted(by_channel.items())},
                "first_touch_responses": int(first or 0),
                "last_touch_responses": int(last or 0),
                "cost_per_response": (str((budget / responses).quantize(Decimal("0.01")))
                                      if responses else None),
                "opportunities_attributed": opportunities,
                "orders_attributed": orders,
                "revenue_attributed": revenue,
                **roi(budget, campaign["currency"], revenue),
                "first_touch_opportunities": first_opportunities,
                "first_touch_orders": first_orders,
                "first_touch_revenue": first_revenue,
                "first_touch_roi": roi(budget, campaign["currency"], first_revenue)["roi"],
            }
        return self.run(query)

    def events(self, campaign_id: str, metric: str, limit: int = 100,
               after: str | None = None) -> list[dict[str, Any]]:
        """The events behind one figure, in event-id order (``after``: the last one seen)."""
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}; one of: {', '.join(METRICS)}")

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            args: tuple[Any, ...] = (campaign_id, after or "", limit)
            if metric == "delivered":
                sql = _delivered_sql(t, "f.event_id, f.customer_id, f.channel, f.at_us") + \
                    " AND f.event_id > ? ORDER BY f.event_id LIMIT ?"
            elif metric in ("first_touch", "last_touch"):
                column = "first_campaign_id" if metric == "first_touch" else "last_campaign_id"
                sql = (f"SELECT event_id, customer_id, channel, at_us FROM {t.attribution} "
                       f"WHERE {column}=? AND kind='response' AND event_id > ? "
                       "ORDER BY event_id LIMIT ?")
            elif metric.removeprefix("first_touch_") in ("opportunity", "order"):
                model = "first_touch" if metric.startswith("first_touch_") else "last_touch"
                sql = (_opportunities_sql if metric.endswith("opportunity") else _orders_sql)(
                    t, "a.event_id, a.customer_id, a.channel, a.at_us", model) + \
                    " AND a.event_id > ? ORDER BY a.event_id LIMIT ?"
            else:
                sql = (f"SELECT event_id, customer_id, channel, at_us FROM {t.fact} "
                       "WHERE campaign_id=? AND metric=? AND event_id > ? "
                       "ORDER BY event_id LIMIT ?")
                args = (campaign_id, metric, after or "", limit)
            return [{"event_id": r[0], "customer_id": r[1], "channel": r[2],
                     "occurred_at": iso(int(r[3]))} for r in db.all(sql, args)]
        return self.run(query)

    def attributions(self, customer_id: str) -> list[dict[str, Any]]:
        """A customer's attributed events with their own, first-touch and last-touch campaigns."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT event_id, kind, channel, at_us, campaign_id, "
                          f"first_campaign_id, last_campaign_id FROM {t.attribution} "
                          "WHERE customer_id=? ORDER BY at_us, event_id LIMIT 1000",
                          (customer_id,))
            return [{"event_id": r[0], "kind": r[1], "channel": r[2],
                     "occurred_at": iso(int(r[3])), "campaign_id": r[4],
                     "first_touch_campaign_id": r[5], "last_touch_campaign_id": r[6]}
                    for r in rows]
        return self.run(query)


def _credited(db: Db, t: Names, campaign_id: str, model: str
              ) -> tuple[int, int, dict[str, str]]:
    """Opportunities, orders and revenue (per currency) credited to a campaign under
    ``model``."""
    opportunities = db.scalar(_opportunities_sql(t, "COUNT(*)", model), (campaign_id,))
    orders = db.scalar(_orders_sql(t, "COUNT(*)", model), (campaign_id,))
    revenue = {str(c): from_minor(int(n), str(c)) for c, n in db.all(
        _orders_sql(t, "o.currency, SUM(o.total_minor - o.refunded_minor)", model)
        + " GROUP BY o.currency ORDER BY o.currency", (campaign_id,))}
    return int(opportunities or 0), int(orders or 0), revenue


def _opportunities_sql(t: Names, columns: str, model: str = "last_touch") -> str:
    """Opportunities credited to a campaign: their source campaign, else their last (or
    first) touch."""
    return (f"SELECT {columns} FROM {t.attribution} a WHERE a.kind='opportunity' "
            f"AND COALESCE(a.campaign_id, a.{MODELS[model]})=?")


def _orders_sql(t: Names, columns: str, model: str = "last_touch") -> str:
    """Orders credited to a campaign (their last, or first, touch), cancelled ones left
    out."""
    return (f"SELECT {columns} FROM {t.attribution} a JOIN {t.sale_order} o ON "
            f"o.event_id = a.event_id WHERE a.kind='order' AND a.{MODELS[model]}=? "
            "AND o.cancelled_us IS NULL")


def roi(budget: Decimal, currency: str, revenue: dict[str, str]) -> dict[str, str | None]:
    """ROI = (revenue − budget) / budget, to 4 decimals, when it can be computed honestly:
    without a budget, or with revenue in a currency other than the budget's (the hub keeps
    no exchange rates), ``roi`` is None and ``roi_note`` says why."""
    others = sorted(c for c in revenue if c != currency)
    if others:
        return {"roi": None, "roi_note": f"revenue in {', '.join(others)}, budget in "
                f"{currency}: no exchange rates"}
    if budget == 0:
        return {"roi": None, "roi_note": "no budget"}
    gained = Decimal(revenue.get(currency, "0"))
    return {"roi": str(((gained - budget) / budget).quantize(Decimal("0.0001"))),
            "roi_note": None}


def _delivered_sql(t: Names, columns: str) -> str:
    """Sent campaign emails of a campaign that no permanent failure report came back for."""
    return (f"SELECT {columns} FROM {t.fact} f WHERE f.campaign_id=? AND f.metric='sent' "
            f"AND NOT EXISTS (SELECT 1 FROM {t.fact} b WHERE b.metric='bounced' "
            "AND b.message_id = f.message_id)")
