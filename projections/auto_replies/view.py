"""Reading the auto-replies read model: what the auto-reply policy still has to decide,
and what it decided."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from projections.auto_replies.projection import AutoRepliesProjection
from projections.engine import Names
from projections.events import iso, moment, us
from projections.store import Db
from projections.views import LiveView


class AutoRepliesView(LiveView):
    projection = AutoRepliesProjection()

    def pending(self, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Cases opened since ``since`` from an inbound email or a web form, not decided
        yet, oldest first, with the facts the loop rules need."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(
                f"SELECT o.event_id, o.customer_id, o.case_id, o.opened_us, i.kind, "
                f"i.message_id, COALESCE(i.sender, c.address), i.refs, i.raw_ref, i.subject "
                f"FROM {t.opened} o JOIN {t.inbound} i ON i.event_id = o.origin_event_id "
                f"LEFT JOIN {t.contact} c ON c.customer_id = o.customer_id "
                "WHERE o.outcome IS NULL AND o.opened_us >= ? "
                "ORDER BY o.opened_us, o.event_id LIMIT ?", (us(since), limit))
            out = []
            for r in rows:
                sender = r[6]
                bounced = sender is not None and db.one(
                    f"SELECT 1 FROM {t.bounced} WHERE address = ?", (sender,)) is not None
                out.append({"trigger_event_id": r[0], "customer_id": r[1], "case_id": r[2],
                            "opened_at": moment(int(r[3])), "origin": r[4],
                            "message_id": r[5], "sender": sender,
                            "references": orjson.loads(r[7]), "raw_ref": r[8],
                            "subject": r[9] or "", "bounced": bounced})
            return out

        return self.run(query)

    def some_inbound(self, limit: int) -> list[tuple[str, str, str | None]]:
        """The first ``limit`` inbound emails by event id: (event id, customer, subject)
        (the demo opens cases from them; the same ones on every run)."""
        def query(db: Db, t: Names) -> list[tuple[str, str, str | None]]:
            rows = db.all(f"SELECT event_id, customer_id, subject FROM {t.inbound} "
                          "WHERE kind = 'email' ORDER BY event_id LIMIT ?", (limit,))
            return [(r[0], r[1], r[2]) for r in rows]

        return self.run(query)

    def last_replied(self, recipient_key: str) -> datetime | None:
        """When this recipient key was last answered automatically."""
        def query(db: Db, t: Names) -> datetime | None:
            found = db.scalar(f"SELECT last_us FROM {t.replied} WHERE recipient_key = ?",
                              (recipient_key,))
            return None if found is None else moment(int(found))

        return self.run(query)

    def outcomes(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Cases opened from a touchpoint with their acknowledgement's outcome, newest first
        (no personal data: ids, channel, outcome)."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT event_id, customer_id, case_id, case_channel, opened_us, "
                          f"outcome FROM {t.opened} ORDER BY opened_us DESC, event_id "
                          "LIMIT ? OFFSET ?", (limit, offset))
            return [{"trigger_event_id": r[0], "customer_id": r[1], "case_id": r[2],
                     "channel": r[3], "opened_at": iso(r[4]), "outcome": r[5] or "pending"}
                    for r in rows]

        return self.run(query)
