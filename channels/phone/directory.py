"""Which customer a call belongs to, by call id.

Later callbacks of a call (a recording callback, a CTI ``hangup``) may not
carry the caller's number; the first step that did resolved the customer, and
this directory remembers the answer. It is written only after the step was
recorded, so it never knows a call the event store does not.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol
from uuid import UUID


class CallDirectory(Protocol):
    """Call id → customer id, remembered across restarts."""

    def remember(self, call_id: str, customer_id: str) -> None:
        """Note that ``call_id`` was recorded on ``customer_id``."""

    def customer_of(self, call_id: str) -> UUID | None:
        """The customer of a call seen before, or None."""

    def remembers(self, call_id: str, customer_id: str) -> bool:
        """True if this process knows ``call_id`` is ``customer_id``'s already (from memory,
        no I/O: the caller skips ``remember`` then)."""

    def remember_many(self, entries: Collection[tuple[str, str]]) -> None:
        """``remember`` for each (call id, customer id), in one write (the webhooks' group
        commit notes a whole batch at once)."""

    def customers_of(self, call_ids: Collection[str]) -> dict[str, UUID]:
        """``customer_of`` for several calls in one read; unknown calls are left out."""


class SQLiteCallDirectory:
    """SQLite file beside the data; answers from memory for calls seen by this process.

    ``synchronous=NORMAL``: a power cut may forget the newest entries, never
    corrupt the file; a forgotten call is re-learnt from its next numbered step
    (and a number-less callback meanwhile answers 503, which providers retry).
    """

    CACHE_SIZE = 100_000

    def __init__(self, path: Path) -> None:
        self._cache: dict[str, str] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                     timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # A forgotten customer's rows leave no bytes in freed pages.
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS call_customers ("
                " call_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL)"
            )

    def remember(self, call_id: str, customer_id: str) -> None:
        if self._cache.get(call_id) == customer_id:
            return
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO call_customers (call_id, customer_id) VALUES (?, ?)",
                (call_id, customer_id),
            )
            if cur.rowcount == 0:  # known already: the first answer stays, cache that one
                row = self._conn.execute("SELECT customer_id FROM call_customers "
                                         "WHERE call_id = ?", (call_id,)).fetchone()
                customer_id = row[0] if row else customer_id
            self._remember_in_memory(call_id, customer_id)

    def remembers(self, call_id: str, customer_id: str) -> bool:
        return self._cache.get(call_id) == customer_id

    def remember_many(self, entries: Collection[tuple[str, str]]) -> None:
        todo = {c: cu for c, cu in entries if self._cache.get(c) != cu}
        if not todo:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO call_customers (call_id, "
                                       "customer_id) VALUES (?, ?)", todo.items())
                stored = self._select(todo)  # the first answers stay: cache those
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            for call_id, customer_id in stored.items():
                self._remember_in_memory(call_id, customer_id)

    def customers_of(self, call_ids: Collection[str]) -> dict[str, UUID]:
        found = {c: k for c in call_ids if (k := self._cache.get(c)) is not None}
        missing = [c for c in call_ids if c not in found]
        if missing:
            with self._lock:
                for call_id, customer_id in self._select(missing).items():
                    self._remember_in_memory(call_id, customer_id)
                    found[call_id] = customer_id
        return {c: UUID(k) for c, k in found.items()}

    def _select(self, call_ids: Collection[str]) -> dict[str, str]:
        """The stored customer of each of ``call_ids`` (under the lock)."""
        ids = list(call_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # well under SQLite's bound on parameters
            part = ids[start:start + 500]
            out.update(self._conn.execute(
                "SELECT call_id, customer_id FROM call_customers WHERE call_id IN "
                f"({','.join('?' * len(part))})", part).fetchall())
        return out

    def customer_of(self, call_id: str) -> UUID | None:
        known = self._cache.get(call_id)
        if known is not None:
            return UUID(known)
        with self._lock:
            row = self._conn.execute(
                "SELECT customer_id FROM call_customers WHERE call_id = ?", (call_id,)
            ).fetchone()
            if row:
                self._remember_in_memory(call_id, row[0])
        return UUID(row[0]) if row else None

    def forget_customers(self, customer_ids: Iterable[str]) -> int:
        """Drop every call of these customers (erasure); how many entries went. The WAL
        is checkpointed so no old page keeps them either."""
        gone = {str(c) for c in customer_ids}
        if not gone:
            return 0
        with self._lock:
            for call_id in [k for k, v in self._cache.items() if v in gone]:
                del self._cache[call_id]
            marks = ",".join("?" * len(gone))
            cur = self._conn.execute(
                f"DELETE FROM call_customers WHERE customer_id IN ({marks})", sorted(gone))
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return cur.rowcount

    def _remember_in_memory(self, call_id: str, customer_id: str) -> None:
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()  # crude but bounded; the file still knows every call
        self._cache[call_id] = customer_id

    def close(self) -> None:
        with self._lock:
            self._conn.close()
