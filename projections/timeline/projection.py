"""The timeline read model: one row per event of a customer, bodies kept apart.

Rows never change once written (events are immutable); merges are applied at
query time through the ``customer`` table (see ``projections.customers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.customers import apply_identity
from projections.engine import Names, Projection, Table
from projections.events import (
    Item,
    customer_id,
    has_body,
    is_internal,
    kind_of,
    payload_json,
    subject_of,
    summary_of,
    us,
)
from projections.store import Db

ENTRY_COLUMNS = (
    "position", "customer_id", "event_id", "kind", "channel", "direction", "occurred_us",
    "recorded_us", "actor", "subject", "summary", "internal", "has_body",
)


class TimelineProjection(Projection):
    name = "timeline"
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "merged_into", "partner_id")),
        Table("entry", ("position",), ENTRY_COLUMNS),
        Table("detail", ("position",), ("position", "event_id", "body")),
        Table("fts", ("rowid",)),
    )

    def ddl(self, dialect: str) -> list[str]:
        pk = "INTEGER PRIMARY KEY" if dialect == "sqlite" else "BIGINT PRIMARY KEY"
        statements = [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, merged_into TEXT, "
            "partner_id TEXT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            f"CREATE TABLE {{entry}} (position {pk}, customer_id TEXT NOT NULL, "
            "event_id TEXT NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, "
            "direction TEXT NOT NULL, occurred_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL, "
            "actor TEXT, subject TEXT, summary TEXT, internal SMALLINT NOT NULL, "
            "has_body SMALLINT NOT NULL"
            + (", search tsvector GENERATED ALWAYS AS (to_tsvector('simple', "
               "coalesce(subject, '') || ' ' || coalesce(summary, ''))) STORED"
               if dialect == "postgres" else "")
            + ")",
            "CREATE INDEX {entry}_page ON {entry} (customer_id, occurred_us, position)",
            f"CREATE TABLE {{detail}} (position {pk}, event_id TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX {detail}_event ON {detail} (event_id)",
        ]
        if dialect == "sqlite":
            statements.append(
                "CREATE VIRTUAL TABLE {fts} USING fts5(subject, summary, content='')"
            )
        return statements

    def deferred_ddl(self, dialect: str) -> list[str]:
        if dialect == "postgres":
            return ["CREATE INDEX {entry}_search ON {entry} USING GIN (search)"]
        return []

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        entries: list[tuple[Any, ...]] = []
        details: list[tuple[Any, ...]] = []
        texts: list[tuple[Any, ...]] = []
        for pos, e in items:
            apply_identity(db, t.customer, e)
            subject, summary = subject_of(e), summary_of(e)
            event_id = str(e.event_id)
            entries.append((
                pos, customer_id(e), event_id, kind_of(e), e.channel, e.direction,
                us(e.occurred_at), us(e.timestamp), e.actor, subject, summary,
                int(is_internal(e)), int(has_body(e)),
            ))
            details.append((pos, event_id, payload_json(e)))
            if subject or summary:
                texts.append((pos, subject or "", summary or ""))
        db.insert_rows(t.entry, ENTRY_COLUMNS, entries)
        db.insert_rows(t.detail, ("position", "event_id", "body"), details)
        if db.dialect == "sqlite":
            db.executemany(f"INSERT INTO {t.fts} (rowid, subject, summary) VALUES (?,?,?)", texts)
