"""Reading the outbox read model: what is due, what was sent, which email an envelope was."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from projections.engine import Names
from projections.events import moment
from projections.outbox.projection import QUEUED, OutboxProjection
from projections.store import Db
from projections.views import LiveView

_SELECT = ("SELECT message_id, customer_id, envelope_id, queued_us, payload, status, attempts, "
           "last_attempt_us FROM {entry}")


@dataclass(frozen=True)
class OutboxEntry:
    message_id: str
    customer_id: str
    envelope_id: str
    queued_at: datetime
    from_address: str
    to: list[str]
    cc: list[str]
    subject: str
    body_text: str
    in_reply_to: str | None
    references: list[str]
    status: str
    attempts: int
    last_attempt_at: datetime | None
    # A campaign email (marketing): consent is checked at send time, unsubscribe in one click.
    campaign_id: str | None = None
    purpose: str | None = None
    list_unsubscribe: str | None = None
    # The replies area: an HTML alternative, RFC 3834's Auto-Submitted, library attachments.
    body_html: str | None = None
    auto_submitted: str | None = None
    attachments: list[dict[str, str]] = field(default_factory=list)


class OutboxView(LiveView):
    projection = OutboxProjection()

    def due(self, now: datetime, base: timedelta, cap: timedelta,
            limit: int = 100) -> list[OutboxEntry]:
        """Queued emails whose next attempt is due (exponential backoff after each unknown)."""
        out = []
        for entry in self.entries(QUEUED, limit=10_000):
            if entry.last_attempt_at is not None:
                wait = min(base * (2 ** max(entry.attempts - 1, 0)), cap)
                if now < entry.last_attempt_at + wait:
                    continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def entries(self, status: str | None = None, limit: int = 1000) -> list[OutboxEntry]:
        def query(db: Db, t: Names) -> list[OutboxEntry]:
            where, args = (" WHERE status=?", (status,)) if status is not None else ("", ())
            rows = db.all(_SELECT.format_map(t) + where + " ORDER BY queued_us, message_id "
                          "LIMIT ?", (*args, limit))
            return [_entry(r) for r in rows]

        return self.run(query)

    def roots(self, message_ids: list[str]) -> dict[str, str]:
        """The thread root of each queued email among ``message_ids``: its first reference,
        else the message it answers, else itself (the rule its thread id follows)."""
        ids = list(dict.fromkeys(message_ids))[:500]
        if not ids:
            return {}

        def query(db: Db, t: Names) -> dict[str, str]:
            rows = db.all(f"SELECT message_id, payload FROM {t.entry} "
                          f"WHERE message_id IN ({','.join('?' * len(ids))})", ids)
            out = {}
            for message_id, payload in rows:
                fields = orjson.loads(payload)
                refs = fields.get("references") or []
                out[message_id] = refs[0] if refs else (fields.get("in_reply_to") or message_id)
            return out

        return self.run(query)

    def state_of(self, message_id: str) -> tuple[str, int] | None:
        """The status and attempt count of the email queued under ``message_id``."""
        def query(db: Db, t: Names) -> tuple[str, int] | None:
            row = db.one(f"SELECT status, attempts FROM {t.entry} WHERE message_id=?",
                         (message_id,))
            return None if row is None else (str(row[0]), int(row[1]))

        return self.run(query)

    def customer_for_message(self, message_id: str) -> str | None:
        """The customer of the email queued under ``message_id`` (None: not sent here)."""
        def query(db: Db, t: Names) -> str | None:
            found = db.scalar(f"SELECT customer_id FROM {t.entry} WHERE message_id=?",
                              (message_id,))
            return None if found is None else str(found)

        return self.run(query)

    def message_for_envelope(self, envelope_id: str) -> str | None:
        def query(db: Db, t: Names) -> str | None:
            found = db.scalar(f"SELECT message_id FROM {t.entry} WHERE envelope_id=?",
                              (envelope_id,))
            return None if found is None else str(found)

        return self.run(query)


def _entry(row: Any) -> OutboxEntry:
    payload = orjson.loads(row[4])
    return OutboxEntry(
        message_id=row[0], customer_id=row[1], envelope_id=row[2], queued_at=moment(row[3]),
        status=row[5], attempts=int(row[6]),
        last_attempt_at=moment(row[7]) if row[7] is not None else None, **payload,
    )
