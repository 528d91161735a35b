"""The outbox: queued outbound emails and their delivery state, kept from the event log.

Exactly once: each batch of events and the tracking position are committed in
one SQLite transaction. Rebuildable: ``rebuild()`` drops the rows and the
position and reads the log again. Nothing here sends anything: the sender
reads ``due()`` and records outcomes as commands, which come back here as events.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from eventsourcing.utils import get_topic

from domain.customer import Customer

QUEUED, SENT, FAILED = "queued", "sent", "failed"
_TOPICS = {
    get_topic(Customer.EmailQueued): "queued",
    get_topic(Customer.EmailSent): "sent",
    get_topic(Customer.EmailSendFailed): "failed",
    get_topic(Customer.EmailOutcomeUnknown): "unknown",
}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
    "envelope_id TEXT NOT NULL, queued_at TEXT NOT NULL, payload TEXT NOT NULL, "
    "status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_attempt_at TEXT, "
    "detail TEXT)",
    "CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status)",
    "CREATE INDEX IF NOT EXISTS outbox_envelope ON outbox (envelope_id)",
    "CREATE TABLE IF NOT EXISTS outbox_tracking (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "position INTEGER NOT NULL)",
)


class NotificationSource(Protocol):
    """The event store's notification log (the eventsourcing application recorder)."""

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None, topics: Sequence[str] = (),
    ) -> Sequence[Any]: ...


class EventMapper(Protocol):
    def to_domain_event(self, stored: Any) -> Any: ...


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


class OutboxView:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)

    def close(self) -> None:
        self._conn.close()

    def position(self) -> int:
        row = self._conn.execute("SELECT position FROM outbox_tracking WHERE id=1").fetchone()
        return int(row[0]) if row else 0

    def catch_up(self, source: NotificationSource, mapper: EventMapper, batch: int = 500) -> int:
        """Apply every new outbox event; returns how many were applied."""
        applied = 0
        while True:
            start = self.position() + 1
            notes = source.select_notifications(start, batch, topics=list(_TOPICS))
            if not notes:
                return applied
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                if self.position() + 1 != start:  # another process moved on: re-read
                    c.execute("ROLLBACK")
                    continue
                for note in notes:
                    self._apply(_TOPICS[note.topic], mapper.to_domain_event(note))
                c.execute("INSERT OR REPLACE INTO outbox_tracking VALUES (1, ?)", (notes[-1].id,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            applied += len(notes)

    def _apply(self, kind: str, e: Any) -> None:
        c = self._conn
        if kind == "queued":
            payload = {k: getattr(e, k) for k in (
                "from_address", "to", "cc", "subject", "body_text", "in_reply_to", "references")}
            c.execute(
                "INSERT OR IGNORE INTO outbox (message_id, customer_id, envelope_id, queued_at, "
                "payload, status) VALUES (?,?,?,?,?,?)",
                (e.message_id, str(e.originator_id).removeprefix("customer-"), e.envelope_id,
                 e.occurred_at.isoformat(), json.dumps(payload), QUEUED),
            )
        elif kind == "unknown":
            c.execute(
                "UPDATE outbox SET attempts=max(attempts, ?), last_attempt_at=?, detail=? "
                "WHERE message_id=? AND status=?",
                (e.attempt, e.occurred_at.isoformat(), e.reason, e.message_id, QUEUED),
            )
        else:
            status = SENT if kind == "sent" else FAILED
            detail = e.response if kind == "sent" else e.reason
            c.execute(
                "UPDATE outbox SET status=?, attempts=max(attempts, ?), last_attempt_at=?, "
                "detail=? WHERE message_id=?",
                (status, e.attempt, e.occurred_at.isoformat(), detail, e.message_id),
            )

    def rebuild(self, source: NotificationSource, mapper: EventMapper) -> int:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        c.execute("DELETE FROM outbox")
        c.execute("DELETE FROM outbox_tracking")
        c.execute("COMMIT")
        return self.catch_up(source, mapper)

    def due(self, now: datetime, base: timedelta, cap: timedelta, limit: int = 100) -> list[OutboxEntry]:
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
        sql = ("SELECT message_id, customer_id, envelope_id, queued_at, payload, status, attempts, "
               "last_attempt_at FROM outbox")
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status=?"
            args = (status,)
        rows = self._conn.execute(sql + " ORDER BY queued_at, message_id LIMIT ?",
                                  (*args, limit)).fetchall()
        return [_entry(r) for r in rows]

    def roots(self, message_ids: list[str]) -> dict[str, str]:
        """The thread root of each queued email among ``message_ids``: its first reference,
        else the message it answers, else itself (the rule its thread id follows)."""
        ids = list(dict.fromkeys(message_ids))[:500]
        if not ids:
            return {}
        rows = self._conn.execute(
            f"SELECT message_id, payload FROM outbox WHERE message_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        out = {}
        for message_id, payload in rows:
            fields = json.loads(payload)
            refs = fields.get("references") or []
            out[message_id] = refs[0] if refs else (fields.get("in_reply_to") or message_id)
        return out

    def customer_for_message(self, message_id: str) -> str | None:
        row = self._conn.execute("SELECT customer_id FROM outbox WHERE message_id=?",
                                 (message_id,)).fetchone()
        return str(row[0]) if row else None

    def message_for_envelope(self, envelope_id: str) -> str | None:
        row = self._conn.execute("SELECT message_id FROM outbox WHERE envelope_id=?",
                                 (envelope_id,)).fetchone()
        return str(row[0]) if row else None


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    payload = json.loads(row[4])
    return OutboxEntry(
        message_id=row[0], customer_id=row[1], envelope_id=row[2],
        queued_at=datetime.fromisoformat(row[3]), status=row[5], attempts=row[6],
        last_attempt_at=datetime.fromisoformat(row[7]) if row[7] else None, **payload,
    )
