"""Console sessions: server-side, one row per signed-in browser, keyed by a hash.

Guarantees:

* The cookie carries only a random session id (256 bits); the store keeps its
  SHA-256, never the id, and never the API key the person signed in with (only
  the key's id: every request checks that key is still active, so revoking a key
  ends its sessions at once).
* Signing in always makes a new session id (a session fixed by an attacker
  before sign-in is never promoted); signing out deletes the row.
* A session unused for ``idle_s`` seconds is gone (checked on every request,
  expired rows swept on sign-in); ``absolute_s`` caps a session's whole life.
* Each session has its own CSRF token; every state-changing request must echo
  it (form field ``csrf`` or header ``X-CSRF-Token``), compared in constant time.

The rows live in a small SQLite file in the data folder (``console/sessions.db``)
so that every ``serve --workers N`` process on the host sees the same sessions;
when the stores are PostgreSQL, in that database, so every host of a fleet does
(``touchstream.fleet.sessions``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COOKIE = "ts_console"
IDLE_S = 30 * 60
ABSOLUTE_S = 12 * 3600
TOUCH_EVERY_S = 30  # last-seen is written at most this often (reads stay reads)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash   TEXT PRIMARY KEY,
    key_id    TEXT NOT NULL,
    csrf      TEXT NOT NULL,
    created   REAL NOT NULL,
    last_seen REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Session:
    """A signed-in browser: which API key it acts as, and its CSRF token."""

    key_id: str
    csrf: str
    created: float
    last_seen: float

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), str(sent).encode())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in one SQLite file (WAL, one connection per thread). Subclasses keep
    them elsewhere by overriding ``_run`` (statements use ``?`` placeholders)."""

    def __init__(self, path: Path, *, idle_s: float = IDLE_S, absolute_s: float = ABSOLUTE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.clock = clock
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return self._db().execute(sql, params).fetchall()

    def start(self, key_id: str) -> str:
        """A new session for ``key_id``; returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        self._run("DELETE FROM console_sessions WHERE last_seen < ? OR created < ?",
                  (now - self.idle_s, now - self.absolute_s))
        self._run("INSERT INTO console_sessions VALUES (?, ?, ?, ?, ?)",
                  (_hash(session_id), key_id, secrets.token_urlsafe(32), now, now))
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value (its last use noted), or None."""
        if not session_id or len(session_id) > 200:
            return None
        rows = self._run("SELECT key_id, csrf, created, last_seen FROM console_sessions "
                         "WHERE id_hash = ?", (_hash(session_id),))
        if not rows:
            return None
        now = self.clock()
        session = Session(*rows[0])  # type: ignore[arg-type]
        if now - session.last_seen > self.idle_s or now - session.created > self.absolute_s:
            self.end(session_id)
            return None
        if now - session.last_seen > TOUCH_EVERY_S:
            self._run("UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?",
                      (now, _hash(session_id)))
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._run("DELETE FROM console_sessions WHERE id_hash = ?", (_hash(session_id),))

    def count(self) -> int:
        return int(self._run("SELECT count(*) FROM console_sessions")[0][0])  # type: ignore[call-overload]

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
