"""The IMAP checkpoint, UID ledger and thread index in PostgreSQL (every host sees one).

Same contract as the SQLite file (``channels.email.state``): ledger rows and
checkpoint in one transaction, the checkpoint never moves back, the first
thread root recorded wins. An erasure turns ledger rows into ``erased`` rows,
deletes the content-dedup rows and vacuums both tables, so the dead tuples
holding the old source keys are reclaimed at once rather than by autovacuum.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import psycopg

from channels.email.inbound import Remembered
from channels.email.state import ERASED, Checkpoint, LedgerRow, lookup_keys
from touchstream.fleet.pg import StatePool

_SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS imap_checkpoint (account TEXT NOT NULL, folder TEXT NOT NULL, "
    "uidvalidity BIGINT NOT NULL, last_uid BIGINT NOT NULL, PRIMARY KEY (account, folder))"),
    ("CREATE TABLE IF NOT EXISTS imap_ledger (account TEXT NOT NULL, folder TEXT NOT NULL, "
    "uidvalidity BIGINT NOT NULL, uid BIGINT NOT NULL, source_key TEXT NOT NULL, "
    "kind TEXT NOT NULL, PRIMARY KEY (account, folder, uidvalidity, uid))"),
    "CREATE INDEX IF NOT EXISTS imap_ledger_source_key ON imap_ledger (source_key)",
    "CREATE TABLE IF NOT EXISTS email_root (message_id TEXT PRIMARY KEY, root TEXT NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS email_content (content_key TEXT PRIMARY KEY, "
    "source_key TEXT NOT NULL)"),
)


class PostgresImapState:
    """``ImapState`` on the shared PostgreSQL database."""

    def __init__(self, uri: str, timeout_s: float = 5) -> None:
        self._db = StatePool(uri, _SCHEMA, name="touchstream-imap-state", timeout_s=timeout_s)

    def close(self) -> None:
        self._db.close()

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT uidvalidity, last_uid FROM imap_checkpoint "
                               "WHERE account=%s AND folder=%s", (account, folder)).fetchone()
        return Checkpoint(int(row[0]), int(row[1])) if row else None

    def commit(self, account: str, folder: str, uidvalidity: int, rows: Iterable[LedgerRow],
               last_uid: int | None, remembered: Sequence[Remembered] = ()) -> None:
        """Ledger rows, (optionally) the new checkpoint and the ``remembered`` entries (as
        ``remember``), atomically: one durable commit per batch, not two. Never moves back."""
        # one row per UID, the last given winning, as one upsert per row would leave it
        ledger = {r.uid: r for r in rows}
        with self._db.transaction() as conn:
            _remember(conn, remembered)
            if ledger:
                uids = sorted(ledger)
                # one statement for the batch, not one per row (each a parse, plan and
                # execution on the server and a message built here)
                conn.execute(
                    "INSERT INTO imap_ledger SELECT %s, %s, %s, r.uid, r.source_key, r.kind "
                    "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS r(uid, source_key, kind) "
                    "ORDER BY r.uid ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE SET "
                    "source_key=EXCLUDED.source_key, kind=EXCLUDED.kind",
                    (account, folder, uidvalidity, uids, [ledger[u].source_key for u in uids],
                     [ledger[u].kind for u in uids]))
            if last_uid is not None:
                conn.execute(
                    "INSERT INTO imap_checkpoint AS c VALUES (%s,%s,%s,%s) ON CONFLICT "
                    "(account, folder) DO UPDATE SET uidvalidity=EXCLUDED.uidvalidity, "
                    "last_uid=CASE WHEN c.uidvalidity=EXCLUDED.uidvalidity THEN "
                    "greatest(c.last_uid, EXCLUDED.last_uid) ELSE EXCLUDED.last_uid END",
                    (account, folder, uidvalidity, last_uid))

    def reset(self, account: str, folder: str, uidvalidity: int) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM imap_ledger WHERE account=%s AND folder=%s "
                         "AND uidvalidity<>%s", (account, folder, uidvalidity))
            conn.execute(
                "INSERT INTO imap_checkpoint VALUES (%s,%s,%s,0) ON CONFLICT (account, folder) "
                "DO UPDATE SET uidvalidity=EXCLUDED.uidvalidity, last_uid=0",
                (account, folder, uidvalidity))

    def ledger(self, account: str, folder: str, uidvalidity: int) -> dict[int, LedgerRow]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT uid, source_key, kind FROM imap_ledger WHERE account=%s AND folder=%s "
                "AND uidvalidity=%s", (account, folder, uidvalidity)).fetchall()
        return {int(r[0]): LedgerRow(int(r[0]), r[1], r[2]) for r in rows}

    def quarantined(self, account: str, folder: str, uidvalidity: int) -> list[LedgerRow]:
        return [r for _, r in sorted(self.ledger(account, folder, uidvalidity).items())
                if r.kind == "quarantine"]

    def released_as(self, account: str, folder: str, uidvalidity: int, uid: int) -> str | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT source_key, kind FROM imap_ledger WHERE account=%s AND folder=%s "
                "AND uidvalidity=%s AND uid=%s", (account, folder, uidvalidity, uid)).fetchone()
        return str(row[0]) if row and row[1] not in ("quarantine", ERASED) else None

    def forget_messages(self, source_keys: Collection[str]) -> int:
        keys = sorted(set(source_keys))
        if not keys:
            return 0
        with self._db.transaction() as conn:
            erased = conn.execute(
                "UPDATE imap_ledger SET kind=%s, source_key=%s WHERE source_key = ANY(%s)",
                (ERASED, ERASED, keys)).rowcount
            conn.execute("DELETE FROM email_content WHERE source_key = ANY(%s)", (keys,))
        with self._db.connection() as conn:  # VACUUM runs outside a transaction
            conn.execute("VACUUM imap_ledger, email_content")
        return erased

    def roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        ids = lookup_keys(message_ids, "message ids")
        if not ids:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute("SELECT message_id, root FROM email_root "
                                "WHERE message_id = ANY(%s)", (ids,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def same_contents(self, content_keys: Sequence[str]) -> dict[str, str]:
        keys = lookup_keys(content_keys)
        if not keys:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute("SELECT content_key, source_key FROM email_content "
                                "WHERE content_key = ANY(%s)", (keys,)).fetchall()
        return {r[0]: str(r[1]) for r in rows}

    def remember(self, entries: Sequence[Remembered]) -> None:
        """First writer wins: a message's thread root never moves once recorded."""
        with self._db.transaction() as conn:
            _remember(conn, entries)


def _remember(conn: psycopg.Connection[Any], entries: Sequence[Remembered]) -> None:
    """``remember``'s rows, in the caller's transaction. Taken first in it: the rows of
    these two tables are the only ones two folders' ingesters (or hosts) share, and
    sorted keys keep their locks in one order (no deadlock)."""
    # the first of a batch wins as on SQLite
    roots = sorted({e.message_id: e.root for e in reversed(entries)}.items())
    contents = sorted({e.content_key: e.source_key for e in reversed(entries)
                       if e.content_key}.items())
    if roots:
        conn.execute("INSERT INTO email_root SELECT * FROM unnest(%s::text[], %s::text[]) "
                     "AS r(message_id, root) ORDER BY r.message_id "
                     "ON CONFLICT (message_id) DO NOTHING",
                     ([k for k, _ in roots], [v for _, v in roots]))
    if contents:
        conn.execute("INSERT INTO email_content SELECT * FROM unnest(%s::text[], %s::text[]) "
                     "AS c(content_key, source_key) ORDER BY c.content_key "
                     "ON CONFLICT (content_key) DO NOTHING",
                     ([k for k, _ in contents], [v for _, v in contents]))
