"""The call directory (call id → customer) in PostgreSQL: every host resolves a call's
number-less callbacks, whichever host saw its first step."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from typing import Any
from uuid import UUID

from psycopg import Connection

from touchstream.fleet.pg import StatePool

_SCHEMA = (("CREATE TABLE IF NOT EXISTS call_customers (call_id TEXT PRIMARY KEY, "
           "customer_id TEXT NOT NULL)"),
           "CREATE INDEX IF NOT EXISTS call_customers_customer ON call_customers (customer_id)")


class PostgresCallDirectory:
    """``CallDirectory`` on the shared database; answers from memory for calls seen here.

    A call's customer never changes once written (first writer wins), so the
    memory cache cannot go stale, except by an erasure: ``forget_customers``
    on one host clears its own cache, and other hosts' caches hold ids only
    (no personal data), dropped when they fill or the process restarts.
    """

    CACHE_SIZE = 100_000

    def __init__(self, uri: str, timeout_s: float = 5) -> None:
        # No ping per checkout (a round trip per batch of webhooks: ~0.17 ms of CPU per
        # callback on each of the two group-commit threads); every statement here may run
        # twice (reads, ON CONFLICT DO NOTHING, deletes), so a connection found broken by
        # a server restart is replaced and the work asked again (``StatePool.run``).
        self._db = StatePool(uri, _SCHEMA, name="touchstream-calls", timeout_s=timeout_s,
                             check=False)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, call_id: str, customer_id: str) -> None:
        if self._cache.get(call_id) == customer_id:
            return

        def insert(conn: Connection[Any]) -> str:
            added = conn.execute("INSERT INTO call_customers VALUES (%s, %s) "
                                 "ON CONFLICT (call_id) DO NOTHING", (call_id, customer_id))
            if added.rowcount == 0:  # known already: the first answer stays, cache that one
                row = conn.execute("SELECT customer_id FROM call_customers WHERE call_id=%s",
                                   (call_id,)).fetchone()
                return str(row[0]) if row else customer_id
            return customer_id

        self._keep(call_id, self._db.run(insert))

    def remembers(self, call_id: str, customer_id: str) -> bool:
        return self._cache.get(call_id) == customer_id

    def remember_many(self, entries: Collection[tuple[str, str]]) -> None:
        todo = {c: cu for c, cu in entries if self._cache.get(c) != cu}
        if not todo:
            return
        ids = list(todo)

        def insert(conn: Connection[Any]) -> list[tuple[str, str]]:  # two statements
            conn.execute("INSERT INTO call_customers SELECT * FROM unnest(%s::text[], "
                         "%s::text[]) ON CONFLICT (call_id) DO NOTHING",
                         (ids, [todo[c] for c in ids]))
            # the first answers stay (another host's, or an earlier one): cache those
            return conn.execute("SELECT call_id, customer_id FROM call_customers "
                                "WHERE call_id = ANY(%s)", (ids,)).fetchall()

        for call_id, customer_id in self._db.run(insert):
            self._keep(call_id, customer_id)

    def customers_of(self, call_ids: Collection[str]) -> dict[str, UUID]:
        found = {c: k for c in call_ids if (k := self._cache.get(c)) is not None}
        missing = [c for c in call_ids if c not in found]
        if missing:
            rows = self._db.run(lambda conn: conn.execute(
                "SELECT call_id, customer_id FROM call_customers WHERE call_id = ANY(%s)",
                (missing,)).fetchall())
            for call_id, customer_id in rows:
                self._keep(call_id, customer_id)
                found[call_id] = customer_id
        return {c: UUID(k) for c, k in found.items()}

    def customer_of(self, call_id: str) -> UUID | None:
        known = self._cache.get(call_id)
        if known is not None:
            return UUID(known)
        row = self._db.run(lambda conn: conn.execute(
            "SELECT customer_id FROM call_customers WHERE call_id=%s", (call_id,)).fetchone())
        if row is None:
            return None
        self._keep(call_id, row[0])
        return UUID(row[0])

    def forget_customers(self, customer_ids: Iterable[str]) -> int:
        """Drop every call of these customers (erasure); the table is vacuumed after."""
        gone = sorted({str(c) for c in customer_ids})
        if not gone:
            return 0
        with self._lock:
            for call_id in [k for k, v in self._cache.items() if v in gone]:
                del self._cache[call_id]
        count = self._db.run(lambda conn: conn.execute(
            "DELETE FROM call_customers WHERE customer_id = ANY(%s)", (gone,)).rowcount)
        self._db.run(lambda conn: conn.execute("VACUUM call_customers"))
        return int(count)

    def _keep(self, call_id: str, customer_id: str) -> None:
        with self._lock:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[call_id] = customer_id

    def close(self) -> None:
        self._db.close()
