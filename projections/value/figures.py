"""The value figures as documents (rows plus what they were computed with), the one shape
the routes (``read_api.analytics_value``) and the CLI (``touchstream analytics``) answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from domain import value as rules
from domain.analytics import Window
from projections.value.view import Cut, ValueView

COHORT_COLUMNS = ("cohort", "period", "month", "size", "active", "churned", "returned",
                  "churn_rate", "retention_rate", "share")
VALUE_COLUMNS = ("customer_id", "currency", "orders", "first_purchase", "revenue", "margin",
                 "clv")
TIER_COLUMNS = ("tier", "up_to_share", "customers", "revenue", "share")
RFM_COLUMNS = ("customer_id", "last_purchase", "recency_days", "frequency", "monetary",
               "currency", "r", "f", "m", "rfm")


def cut_of(w: Window) -> Cut:
    return Cut(w.until, w.known_before_us)


def _head(figure: str, w: Window) -> dict[str, Any]:
    return {"figure": figure, "from": w.start.isoformat(), "until": w.until.isoformat(),
            "as_of": w.as_of.isoformat() if w.as_of else None}


def month_end(month: str) -> date:
    first = date.fromisoformat(f"{month}-01")
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def cohorts_doc(view: ValueView, w: Window, policy: rules.ValuePolicy) -> dict[str, Any]:
    """The cohort triangle as the route and the CLI answer it."""
    found = view.cohorts(cut_of(w), policy, since=w.start)
    return {**_head("cohorts", w), "churn_window_months": policy.churn_window_months,
            "rows": [c.__dict__ for c in found.cells]}


def value_doc(view: ValueView, w: Window, policy: rules.ValuePolicy, offset: int = 0,
              limit: int = 100) -> dict[str, Any]:
    """A page of customers by historic CLV (highest first)."""
    rows = view.clv(cut_of(w), policy)
    doc = _head("value", w)
    del doc["from"]  # all history up to ``until``
    return {**doc, "currency": policy.currency, "margin": format(policy.margin, "f"),
            "discount_rate": format(policy.discount_rate, "f"), "total": len(rows),
            "rows": rows[offset:offset + limit],
            "next_offset": offset + limit if offset + limit < len(rows) else None}


def tiers_doc(view: ValueView, w: Window, policy: rules.ValuePolicy) -> dict[str, Any]:
    """The value pyramid on the window's revenue."""
    bands = dict(policy.bands)
    summary, _, _ = view.tiers(cut_of(w), w.start, policy)
    return {**_head("tiers", w), "currency": policy.currency, "rows": [
        {"tier": s.tier, "up_to_share": float(bands[s.tier]) if s.tier in bands else None,
         "customers": s.customers, "revenue": format(s.revenue, "f"), "share": s.share}
        for s in summary]}


def rfm_doc(view: ValueView, w: Window, currency: str, offset: int = 0, limit: int = 100
            ) -> dict[str, Any]:
    """A page of RFM scores over the window, by customer id."""
    rows = view.rfm(cut_of(w), w.start, currency)
    return {**_head("rfm", w), "period_days": (w.until - w.start).days + 1,
            "currency": currency, "total": len(rows), "rows": rows[offset:offset + limit],
            "next_offset": offset + limit if offset + limit < len(rows) else None}


