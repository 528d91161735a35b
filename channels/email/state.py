"""Per-(account, folder) checkpoint and ledger: the ``ImapState`` port and its SQLite file.

On a single host the state is a small SQLite file under the data folder
(``SQLiteImapState``); when the stores are PostgreSQL it lives there
(``touchstream.fleet.imap_state.PostgresImapState``), so every host of a fleet
sees one checkpoint and one ledger. Both pass ``tests/contract/test_imap_state.py``.

The checkpoint (UIDVALIDITY, last UID) and the ledger rows (UID → the source
key it was recorded under) are written in one transaction, and only after the
events are durable in the event store: a crash in between re-reads those
messages, and the write model's source-key dedup records nothing twice. The
IMAP ingester writes the batch's thread roots and content keys (``remember``)
in that same transaction: a crash before it re-reads the batch, whose messages
come back as duplicates and are remembered then, as they would have been. The
ledger lets ``--verify`` compare the mailbox listing with what was recorded.

An erasure (``forget_messages``) turns the ledger rows of a person's messages
into ``erased`` rows (the UID stays accounted for, the source key, built from
a digest of the raw bytes and the Message-ID, goes) and drops their
content-dedup rows. The file runs with ``secure_delete`` and the erasure
checkpoints the WAL, so no freed page or old page image keeps the old rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from channels.email.inbound import Remembered

_SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS imap_checkpoint (account TEXT NOT NULL, folder TEXT NOT NULL, "
    "uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL, PRIMARY KEY (account, folder))"),
    ("CREATE TABLE IF NOT EXISTS imap_ledger (account TEXT NOT NULL, folder TEXT NOT NULL, "
    "uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL, source_key TEXT NOT NULL, "
    "kind TEXT NOT NULL, PRIMARY KEY (account, folder, uidvalidity, uid))"),
    "CREATE TABLE IF NOT EXISTS email_root (message_id TEXT PRIMARY KEY, root TEXT NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS email_content (content_key TEXT PRIMARY KEY, "
    "source_key TEXT NOT NULL)"),
)


ERASED = "erased"  # the ledger kind of a message whose person was erased
MAX_LOOKUP = 500  # distinct keys one root or content lookup takes (the ingester asks in chunks)


def lookup_keys(keys: Sequence[str], what: str = "content keys") -> list[str]:
    """The distinct keys of one lookup, in order; ``ValueError`` past ``MAX_LOOKUP``
    (a caller that sent more would otherwise be answered about only some of them)."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) > MAX_LOOKUP:
        raise ValueError(f"{len(distinct)} {what} in one lookup; at most {MAX_LOOKUP}")
    return distinct


@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class LedgerRow:
    uid: int
    source_key: str
    kind: str


class ImapState(Protocol):
    """What the IMAP ingester, ``--verify``, the quarantine list and erasure keep per
    (account, folder): checkpoint, ledger, thread roots and content dedup."""

    def close(self) -> None: ...

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        """The UIDVALIDITY and last UID committed, or None before the first pass."""

    def commit(self, account: str, folder: str, uidvalidity: int, rows: Iterable[LedgerRow],
               last_uid: int | None, remembered: Sequence[Remembered] = ()) -> None:
        """Ledger rows, (optionally) the new checkpoint and the ``remembered`` entries (as
        ``remember``), atomically. Never moves back."""

    def reset(self, account: str, folder: str, uidvalidity: int) -> None:
        """A new UIDVALIDITY: every cached UID is void; start again from UID 0."""

    def ledger(self, account: str, folder: str, uidvalidity: int) -> dict[int, LedgerRow]:
        """Every ledger row of the folder in this UIDVALIDITY, by UID."""

    def quarantined(self, account: str, folder: str, uidvalidity: int) -> list[LedgerRow]:
        """Ledger rows of messages that ended in quarantine, by UID."""

    def released_as(self, account: str, folder: str, uidvalidity: int, uid: int) -> str | None:
        """The key a quarantined message was recorded under by a retry (None: still kept)."""

    def forget_messages(self, source_keys: Collection[str]) -> int:
        """Erase the rows of messages recorded under ``source_keys``; the count erased."""

    def roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Thread roots of messages seen before, by message id (ids never seen left out);
        at most ``MAX_LOOKUP`` distinct ids a call, ``ValueError`` for more."""

    def same_contents(self, content_keys: Sequence[str]) -> dict[str, str]:
        """The source keys messages with these contents were recorded under, by content
        key (keys never recorded left out); at most ``MAX_LOOKUP`` distinct keys a call,
        ``ValueError`` for more."""

    def remember(self, entries: Sequence[Remembered]) -> None:
        """First writer wins: a message's thread root never moves once recorded."""


class SQLiteImapState:
    """The IMAP state in a SQLite file (one host)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed (erasure)
        for stmt in _SCHEMA:
            self._conn.execute(stmt)

    def close(self) -> None:
        self._conn.close()

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        row = self._conn.execute(
            "SELECT uidvalidity, last_uid FROM imap_checkpoint WHERE account=? AND folder=?",
            (account, folder),
        ).fetchone()
        return Checkpoint(row[0], row[1]) if row else None

    def commit(
        self, account: str, folder: str, uidvalidity: int, rows: Iterable[LedgerRow],
        last_uid: int | None, remembered: Sequence[Remembered] = (),
    ) -> None:
        """Ledger rows, (optionally) the new checkpoint and the ``remembered`` entries (as
        ``remember``), atomically. Never moves back."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            self._remember(remembered)
            c.executemany(
                "INSERT OR REPLACE INTO imap_ledger VALUES (?,?,?,?,?,?)",
                [(account, folder, uidvalidity, r.uid, r.source_key, r.kind) for r in rows],
            )
            if last_uid is not None:
                c.execute(
                    "INSERT INTO imap_checkpoint VALUES (?,?,?,?) ON CONFLICT (account, folder) "
                    "DO UPDATE SET uidvalidity=excluded.uidvalidity, last_uid=CASE WHEN "
                    "imap_checkpoint.uidvalidity = excluded.uidvalidity THEN "
                    "max(imap_checkpoint.last_uid, excluded.last_uid) ELSE excluded.last_uid END",
                    (account, folder, uidvalidity, last_uid),
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def reset(self, account: str, folder: str, uidvalidity: int) -> None:
        """A new UIDVALIDITY: every cached UID is void; start again from UID 0."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM imap_ledger WHERE account=? AND folder=? AND uidvalidity<>?",
                      (account, folder, uidvalidity))
            c.execute(
                "INSERT OR REPLACE INTO imap_checkpoint VALUES (?,?,?,0)",
                (account, folder, uidvalidity),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def ledger(self, account: str, folder: str, uidvalidity: int) -> dict[int, LedgerRow]:
        rows = self._conn.execute(
            "SELECT uid, source_key, kind FROM imap_ledger WHERE account=? AND folder=? "
            "AND uidvalidity=?", (account, folder, uidvalidity),
        ).fetchall()
        return {r[0]: LedgerRow(r[0], r[1], r[2]) for r in rows}

    def quarantined(self, account: str, folder: str, uidvalidity: int) -> list[LedgerRow]:
        """Ledger rows of messages that ended in quarantine, by UID."""
        return [r for _, r in sorted(self.ledger(account, folder, uidvalidity).items())
                if r.kind == "quarantine"]

    def released_as(self, account: str, folder: str, uidvalidity: int, uid: int) -> str | None:
        """The key a quarantined message was recorded under by a retry (None: still kept)."""
        row = self._conn.execute(
            "SELECT source_key, kind FROM imap_ledger WHERE account=? AND folder=? "
            "AND uidvalidity=? AND uid=?", (account, folder, uidvalidity, uid),
        ).fetchone()
        return str(row[0]) if row and row[1] not in ("quarantine", ERASED) else None

    def forget_messages(self, source_keys: Collection[str]) -> int:
        """Erase what the state says of the messages recorded (or quarantined) under
        ``source_keys``: their ledger rows become ``erased`` (UID kept, key gone), their
        content-dedup rows are deleted. Idempotent; returns the ledger rows erased now."""
        keys = sorted(set(source_keys))
        if not keys:
            return 0
        c = self._conn
        erased = 0
        c.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                erased += c.execute(
                    f"UPDATE imap_ledger SET kind=?, source_key=? WHERE source_key IN ({marks})",
                    [ERASED, ERASED, *chunk]).rowcount
                c.execute(f"DELETE FROM email_content WHERE source_key IN ({marks})", chunk)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return erased

    # -- MessageIndex -----------------------------------------------------------
    def roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        ids = lookup_keys(message_ids, "message ids")
        if not ids:
            return {}
        rows = self._conn.execute(
            f"SELECT message_id, root FROM email_root WHERE message_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def same_contents(self, content_keys: Sequence[str]) -> dict[str, str]:
        keys = lookup_keys(content_keys)
        if not keys:
            return {}
        rows = self._conn.execute(
            "SELECT content_key, source_key FROM email_content WHERE content_key IN "
            f"({','.join('?' * len(keys))})", keys,
        ).fetchall()
        return {r[0]: str(r[1]) for r in rows}

    def remember(self, entries: Sequence[Remembered]) -> None:
        """First writer wins: a message's thread root never moves once recorded."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            self._remember(entries)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _remember(self, entries: Sequence[Remembered]) -> None:
        if not entries:
            return
        c = self._conn
        c.executemany("INSERT OR IGNORE INTO email_root VALUES (?,?)",
                      [(e.message_id, e.root) for e in entries])
        c.executemany("INSERT OR IGNORE INTO email_content VALUES (?,?)",
                      [(e.content_key, e.source_key) for e in entries if e.content_key])
