"""Which customer a call belongs to, by call id.

Later callbacks of a call (a recording callback, a CTI ``hangup``) may not
carry the caller's number; the first step that did resolved the customer, and
this directory remembers the answer. It is written only after the step was
recorded, so it never knows a call the event store does not.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol
from uuid import UUID


class CallDirectory(Protocol):
    """Call id → customer id, remembered across restarts."""

    def remember(self, call_id: str, customer_id: str) -> None:
        """Note that ``call_id`` was recorded on ``customer_id``."""

    def customer_of(self, call_id: str) -> UUID | None:
        """The customer of a call seen before, or None."""


class SQLiteCallDirectory:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                     timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS call_customers ("
                " call_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL)"
            )

    def remember(self, call_id: str, customer_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO call_customers (call_id, customer_id) VALUES (?, ?)",
                (call_id, customer_id),
            )

    def customer_of(self, call_id: str) -> UUID | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT customer_id FROM call_customers WHERE call_id = ?", (call_id,)
            ).fetchone()
        return UUID(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
