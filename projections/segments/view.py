"""Reading segments: definitions, counts and members on a given day (rules evaluated by
``domain.marketing.matches`` over the customer facts the projection keeps; RFM scores by
``domain.rfm`` as of that day over the configured period and currency)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from domain import marketing as mk
from domain.rfm import Purchase, rfm
from domain.sales import MINOR_UNITS
from projections.engine import Names
from projections.events import moment, us
from projections.segments.projection import SegmentsProjection
from projections.store import Db, ReadStore
from projections.views import LiveView


class SegmentsView(LiveView):
    projection = SegmentsProjection()

    def __init__(self, store: ReadStore, rfm_period_days: int = 365,
                 rfm_currency: str = "EUR") -> None:
        """``rfm_*``: the period and currency the ``rfm`` rule scores over (the sales
        settings' ``rfm_period_days`` and ``rfm_currency``)."""
        super().__init__(store)
        self.rfm_period_days, self.rfm_currency = rfm_period_days, rfm_currency

    def segments(self) -> list[dict[str, Any]]:
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT segment_id, name, rule, event_id FROM {t.segment} "
                          "ORDER BY name, segment_id LIMIT 1000")
            return [{"segment_id": r[0], "name": r[1], "rule": orjson.loads(r[2]),
                     "event_id": r[3]} for r in rows]
        return self.run(query)

    def segment(self, segment_id: str) -> dict[str, Any] | None:
        return next((s for s in self.segments() if s["segment_id"] == segment_id), None)

    def members(self, rule: dict[str, Any], as_of: datetime) -> list[str]:
        """Every customer id matching ``rule`` on ``as_of``, sorted."""
        mk.check_rule(rule)
        return [cid for cid, facts in self.facts(as_of).items()
                if mk.matches(rule, facts, as_of)]

    def facts(self, as_of: datetime | None = None) -> dict[str, mk.CustomerFacts]:
        """Every customer's facts; with ``as_of``, their RFM scores on that day too."""
        def query(db: Db, t: Names) -> dict[str, mk.CustomerFacts]:
            scores = {} if as_of is None else self._rfm(db, t, as_of)
            touches: dict[str, dict[str, int]] = {}
            last: dict[str, int] = {}
            for cid, channel, n, last_us in db.all(
                    f"SELECT customer_id, channel, touches, last_us FROM {t.activity}"):
                touches.setdefault(cid, {})[channel] = int(n)
                if last_us is not None and int(last_us) > last.get(cid, -(2**62)):
                    last[cid] = int(last_us)
            consents: dict[str, dict[str, datetime | None]] = {}
            for cid, topic, expires in db.all(
                    f"SELECT customer_id, topic, expires_us FROM {t.consent}"):
                consents.setdefault(cid, {})[topic] = moment(expires) if expires else None
            rows = db.all(f"SELECT customer_id, lifecycle_stage, partner_id FROM {t.facts} "
                          "ORDER BY customer_id")
            return {cid: mk.CustomerFacts(
                lifecycle_stage=stage, partner_id=partner,
                last_contact=moment(last[cid]) if cid in last else None,
                touches=touches.get(cid, {}), consents=consents.get(cid, {}),
                rfm=scores.get(cid))
                for cid, stage, partner in rows}
        return self.run(query)

    def _rfm(self, db: Db, t: Names, as_of: datetime) -> dict[str, tuple[int, int, int]]:
        """Scores on ``as_of``'s day of every customer with an order in the RFM currency by
        ``as_of`` (net of refunds made by then; orders cancelled by then left out)."""
        cutoff, digits = us(as_of), MINOR_UNITS.get(self.rfm_currency, 2)
        rows = db.all(
            f"SELECT p.customer_id, p.placed_us, p.total_minor - COALESCE((SELECT "
            f"SUM(r.amount_minor) FROM {t.purchase_refund} r WHERE r.order_number = "
            f"p.order_number AND r.at_us <= ?), 0) FROM {t.purchase} p WHERE p.currency=? "
            "AND p.placed_us <= ? AND (p.cancelled_us IS NULL OR p.cancelled_us > ?)",
            (cutoff, self.rfm_currency, cutoff, cutoff))
        purchases = [Purchase(str(c), moment(int(at)).date(), Decimal(int(net)).scaleb(-digits))
                     for c, at, net in rows]
        return {s.customer_id: (s.r, s.f, s.m)
                for s in rfm(purchases, as_of.date(), self.rfm_period_days)}


