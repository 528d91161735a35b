"""Form rate limits shared by the processes (SQLite) or hosts (PostgreSQL) of a hub.

The same sliding window as the in-memory ``channels.web.guards.RateLimiter``:
at most ``limit`` hits per ``window_s`` per client key, counted in one table,
so a client sending through two hosts alternately is limited once across both.
A hit is counted in one transaction per key (a row lock on PostgreSQL through
an advisory transaction lock on the key, the write lock on SQLite).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from touchstream.fleet.pg import StatePool

_DDL = (("CREATE TABLE IF NOT EXISTS form_hits (client TEXT NOT NULL, at DOUBLE PRECISION "
        "NOT NULL)"), "CREATE INDEX IF NOT EXISTS form_hits_client ON form_hits (client, at)",
        "CREATE INDEX IF NOT EXISTS form_hits_at ON form_hits (at)")
SWEEP_EVERY = 1000  # hits between deletions of every client's expired hits


class _Window:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._count = 0
        self._count_lock = threading.Lock()

    def _sweep_due(self) -> bool:
        with self._count_lock:
            self._count += 1
            return self._count % SWEEP_EVERY == 0


class SQLiteRateLimiter(_Window):
    """Hits in a SQLite file: shared by the processes of one host (``--workers N``)."""

    def __init__(self, path: Path, limit: int, window_s: float,
                 clock: Callable[[], float]) -> None:
        super().__init__(limit, window_s, clock)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # a lost hit after a power cut is fine
            for statement in _DDL:
                self._conn.execute(statement)

    def hit(self, key: str) -> float | None:
        """Count a hit; None if allowed, else seconds until the next one is."""
        now = self.clock()
        since = now - self.window_s
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                if self._sweep_due():
                    c.execute("DELETE FROM form_hits WHERE at<=?", (since,))
                count, first = c.execute("SELECT count(*), min(at) FROM form_hits WHERE client=? "
                                         "AND at>?", (key, since)).fetchone()
                if count >= self.limit:
                    c.execute("COMMIT")
                    return max(0.0, float(first) + self.window_s - now)
                c.execute("INSERT INTO form_hits VALUES (?, ?)", (key, now))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresRateLimiter(_Window):
    """Hits in the shared PostgreSQL database: one limit across every host."""

    def __init__(self, uri: str, limit: int, window_s: float, clock: Callable[[], float],
                 timeout_s: float = 5) -> None:
        super().__init__(limit, window_s, clock)
        self._db = StatePool(uri, _DDL, name="touchstream-form-hits", timeout_s=timeout_s)

    def hit(self, key: str) -> float | None:
        now = self.clock()
        since = now - self.window_s
        with self._db.transaction() as conn:
            # Two hosts counting the same client at once queue here, so neither
            # lets through a hit the other already counted.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (key,))
            if self._sweep_due():
                conn.execute("DELETE FROM form_hits WHERE at<=%s", (since,))
            row = conn.execute("SELECT count(*), min(at) FROM form_hits WHERE client=%s "
                               "AND at>%s", (key, since)).fetchone()
            assert row is not None
            if row[0] >= self.limit:
                return max(0.0, float(row[1]) + self.window_s - now)
            conn.execute("INSERT INTO form_hits VALUES (%s, %s)", (key, now))
        return None

    def close(self) -> None:
        self._db.close()
