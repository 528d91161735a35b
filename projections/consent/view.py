"""Reading consent: a customer's consents (valid or not on a given day), totals, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.consent.projection import ConsentProjection
from projections.engine import Names
from projections.events import iso, us
from projections.store import Db
from projections.views import LiveView


def _valid(state: str, expires_us: int | None, as_of_us: int) -> bool:
    return state == "given" and (expires_us is None or as_of_us < expires_us)


class ConsentView(LiveView):
    projection = ConsentProjection()

    def of_customer(self, customer_id: str, as_of: datetime) -> list[dict[str, Any]]:
        at = us(as_of)

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT consent_channel, purpose, state, evidence_kind, evidence_id, "
                          f"expires_us, changed_us, event_id FROM {t.state} WHERE customer_id=? "
                          "ORDER BY consent_channel, purpose", (customer_id,))
            return [{"consent_channel": r[0], "purpose": r[1], "state": r[2],
                     "valid": _valid(r[2], r[5], at), "evidence_kind": r[3],
                     "evidence_id": r[4], "expires_at": iso(r[5]), "changed_at": iso(r[6]),
                     "event_id": r[7]} for r in rows]
        return self.run(query)

    def totals(self, as_of: datetime) -> list[dict[str, Any]]:
        """Per channel and purpose: customers whose consent is valid, withdrawn, expired."""
        at = us(as_of)

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT consent_channel, purpose, "
                          "SUM(CASE WHEN state='given' AND (expires_us IS NULL OR expires_us > ?) "
                          "THEN 1 ELSE 0 END), "
                          "SUM(CASE WHEN state='given' AND expires_us <= ? THEN 1 ELSE 0 END), "
                          "SUM(CASE WHEN state='withdrawn' THEN 1 ELSE 0 END), "
                          "SUM(CASE WHEN state='expired' THEN 1 ELSE 0 END) "
                          f"FROM {t.state} GROUP BY consent_channel, purpose "
                          "ORDER BY consent_channel, purpose", (at, at))
            return [{"consent_channel": r[0], "purpose": r[1], "valid": int(r[2] or 0),
                     "lapsed": int(r[3] or 0), "withdrawn": int(r[4] or 0),
                     "expired": int(r[5] or 0)} for r in rows]
        return self.run(query)

    def changes(self, customer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The consent events of a customer, oldest first (the drill-down of its state)."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT event_id, consent_channel, purpose, state, detail, "
                          f"campaign_id, at_us FROM {t.change} WHERE customer_id=? "
                          "ORDER BY at_us, event_id LIMIT ?", (customer_id, limit))
            return [{"event_id": r[0], "consent_channel": r[1], "purpose": r[2],
                     "state": r[3], "detail": r[4], "campaign_id": r[5],
                     "occurred_at": iso(int(r[6]))} for r in rows]
        return self.run(query)
