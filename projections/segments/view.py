"""Reading segments: definitions, counts and members on a given day (rules evaluated by
``domain.marketing.matches`` over the customer facts the projection keeps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from domain import marketing as mk
from projections.engine import Names
from projections.events import moment
from projections.segments.projection import SegmentsProjection
from projections.store import Db
from projections.views import LiveView


class SegmentsView(LiveView):
    projection = SegmentsProjection()

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
        return [cid for cid, facts in self.facts().items() if mk.matches(rule, facts, as_of)]

    def facts(self) -> dict[str, mk.CustomerFacts]:
        def query(db: Db, t: Names) -> dict[str, mk.CustomerFacts]:
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
                touches=touches.get(cid, {}), consents=consents.get(cid, {}))
                for cid, stage, partner in rows}
        return self.run(query)


