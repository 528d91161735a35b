"""The timeline read model: one row per event of a customer, bodies kept apart.

Events are immutable, and a row changes only when staff void or correct its
touchpoint: a ``TouchpointVoided`` marks the row ``voided`` (it stays on the
timeline, and the void has its own row); a ``TouchpointCorrected`` moves the
row to the corrected date, rewrites its changed fields in the detail, subject
and summary, and marks it ``corrected``. Corrections are applied after the
batch's rows are written, in log order, so a rebuild (any batch size) equals
the live model. Merges are applied at query time through the ``customer``
table (see ``projections.customers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson

from domain.customer import Customer
from projections.customers import IDENTITY_CLASSES, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import (
    ERASED_FLAG,
    Item,
    customer_id,
    erased_payload,
    event_id_text,
    has_body,
    kind_name,
    payload_json,
    subject_of,
    summary_of,
    us,
)
from projections.store import Db

ENTRY_COLUMNS = (
    "position", "customer_id", "event_id", "kind", "channel", "direction", "occurred_us",
    "recorded_us", "actor", "subject", "summary", "internal", "has_body", "voided", "corrected",
)
_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


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
            "has_body SMALLINT NOT NULL, voided SMALLINT NOT NULL DEFAULT 0, "
            "corrected SMALLINT NOT NULL DEFAULT 0"
            + (", search tsvector GENERATED ALWAYS AS (to_tsvector('simple', "
               "coalesce(subject, '') || ' ' || coalesce(summary, ''))) STORED"
               if dialect == "postgres" else "")
            + ")",
            "CREATE INDEX {entry}_page ON {entry} (customer_id, occurred_us, position)",
            f"CREATE TABLE {{detail}} (position {pk}, event_id TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX {detail}_event ON {detail} (event_id)",
        ]
        return statements

    def deferred_ddl(self, dialect: str) -> list[str]:
        if dialect == "postgres":
            return ["CREATE INDEX {entry}_search ON {entry} USING GIN (search)"]
        # The full-text index is made from the finished rows in one pass (a rebuild
        # fed it row by row: ~a fifth of this model's rebuild CPU). Until it exists
        # ``apply`` writes none; once it does, every change keeps it (``_has_fts``).
        # Built from the final rows, it never holds an erased or corrected text.
        return [
            "CREATE VIRTUAL TABLE {fts} USING fts5(subject, summary, content='')",
            ("INSERT INTO {fts} (rowid, subject, summary) SELECT position, "
             "coalesce(subject, ''), coalesce(summary, '') FROM {entry} "
             "WHERE coalesce(subject, '') <> '' OR coalesce(summary, '') <> '' "
             "ORDER BY position"),
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        entries: list[tuple[Any, ...]] = []
        details: list[tuple[Any, ...]] = []
        texts: list[tuple[Any, ...]] = []
        erased: list[str] = []
        fixes: list[Customer.Event] = []
        fts = _has_fts(db, t)
        flags_of = _FLAGS
        for pos, e in items:
            cls = type(e)
            flags = flags_of.get(cls)
            if flags is None:
                flags = _flags(cls)
            kind, fix, identity, erase, note = flags
            if fix:
                fixes.append(e)
            if identity:
                apply_identity(db, t.customer, e)
            if e.__dict__.get(ERASED_FLAG):  # read after the key was destroyed: the erased form
                subject, summary, body = None, None, False
            else:
                subject, summary, body = subject_of(e), summary_of(e), has_body(e)
            cid = customer_id(e)
            if erase:
                erased.append(cid)
            event_id = event_id_text(e)
            entries.append((
                pos, cid, event_id, kind, e.channel, e.direction,
                us(e.occurred_at), us(e.timestamp), e.actor, subject, summary,
                1 if note and e.visibility == "internal" else 0, 1 if body else 0, 0, 0,
            ))
            details.append((pos, event_id, payload_json(e)))
            if fts and (subject or summary):
                texts.append((pos, subject or "", summary or ""))
        db.insert_rows(t.entry, ENTRY_COLUMNS, entries)
        db.insert_rows(t.detail, ("position", "event_id", "body"), details)
        if fts:
            db.executemany(f"INSERT INTO {t.fts} (rowid, subject, summary) VALUES (?,?,?)", texts)
        for fix in fixes:  # after the inserts: the touchpoint may be in this very batch
            if isinstance(fix, Customer.TouchpointVoided):
                db.execute(f"UPDATE {t.entry} SET voided=1 WHERE position IN "
                           f"(SELECT position FROM {t.detail} WHERE event_id=?)",
                           (fix.voided_event_id,))
            elif isinstance(fix, Customer.TouchpointCorrected):
                _correct(db, t, fix, fts)
        for cid in erased:
            _redact(db, t, cid, fts)


#: Per event class, decided once: (kind, a void or correction, an identity event, the
#: erasure, a note): the chain of ``isinstance`` and calls per event was a sixth of
#: this model's rows.
_FLAGS: dict[type, tuple[str, bool, bool, bool, bool]] = {}


def _flags(cls: type) -> tuple[str, bool, bool, bool, bool]:
    flags = _FLAGS[cls] = (
        kind_name(cls),
        issubclass(cls, Customer.TouchpointVoided | Customer.TouchpointCorrected),
        cls in IDENTITY_CLASSES,  # ``apply_identity`` acts on exactly these
        issubclass(cls, Customer.PersonalDataErased),
        issubclass(cls, Customer.NoteAdded),  # ``is_internal``: a note marked internal
    )
    return flags


def _has_fts(db: Db, t: Names) -> bool:
    """Whether this generation's full-text table exists (SQLite; a rebuilt generation
    gets it after its fill, from ``deferred_ddl``)."""
    return db.dialect == "sqlite" and db.scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?", (t.fts,)) == 1


def _correct(db: Db, t: Names, fix: Customer.TouchpointCorrected, fts: bool) -> None:
    rows = db.all(f"SELECT d.position, d.body, e.subject, e.summary FROM {t.detail} d "
                  f"JOIN {t.entry} e ON e.position=d.position WHERE d.event_id=?",
                  (fix.corrected_event_id,))
    for pos, raw, old_subject, old_summary in rows:
        body = orjson.loads(raw)
        body.update(fix.changes)
        if fix.corrected_occurred_at is not None:
            body["occurred_at"] = fix.corrected_occurred_at
        text = orjson.dumps(body, option=_JSON)
        body = orjson.loads(text)  # what a reader of the detail sees
        shown = SimpleNamespace(**body)  # subject_of/summary_of read attributes
        subject, summary = subject_of(shown), summary_of(shown)  # type: ignore[arg-type]
        sets, params = "subject=?, summary=?, corrected=1", [subject, summary]
        if fix.corrected_occurred_at is not None:
            sets += ", occurred_us=?"
            params.append(us(fix.corrected_occurred_at))
        db.execute(f"UPDATE {t.entry} SET {sets} WHERE position=?", (*params, pos))
        db.execute(f"UPDATE {t.detail} SET body=? WHERE position=?", (text.decode(), pos))
        if fts:
            if old_subject or old_summary:
                db.execute(f"INSERT INTO {t.fts} ({t.fts}, rowid, subject, summary) "
                           "VALUES ('delete', ?, ?, ?)",
                           (pos, old_subject or "", old_summary or ""))
            if subject or summary:
                db.execute(f"INSERT INTO {t.fts} (rowid, subject, summary) VALUES (?,?,?)",
                           (pos, subject or "", summary or ""))


def _redact(db: Db, t: Names, cid: str, fts: bool) -> None:
    """Every row of an erased customer in its erased form: no subject, summary or body
    text, the detail reduced to the event's non-personal fields."""
    rows = db.all(f"SELECT e.position, e.kind, e.subject, e.summary, d.body FROM {t.entry} e "
                  f"JOIN {t.detail} d ON d.position = e.position WHERE e.customer_id=?", (cid,))
    if fts:
        db.executemany(
            f"INSERT INTO {t.fts} ({t.fts}, rowid, subject, summary) VALUES ('delete',?,?,?)",
            [(pos, subject or "", summary or "") for pos, _, subject, summary, _ in rows
             if subject or summary])
        # A delete only adds a tombstone: the erased words stay in the index's
        # segments until they are merged. Merge them all now (erasures are rare;
        # the cost is one pass over the index). FTS5's 'secure-delete' would do it
        # per row but needs SQLite 3.44.
        db.execute(f"INSERT INTO {t.fts} ({t.fts}) VALUES ('optimize')")
    db.executemany(f"UPDATE {t.detail} SET body=? WHERE position=?",
                   [(erased_payload(kind, body), pos) for pos, kind, _, _, body in rows
                    if '"personal_data_erased"' not in body])
    db.execute(f"UPDATE {t.entry} SET subject=NULL, summary=NULL, has_body=0 "
               "WHERE customer_id=?", (cid,))
