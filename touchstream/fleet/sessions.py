"""Console sessions in PostgreSQL: a browser signed in through one host is signed in on
every host (same rules as the SQLite store: ``touchstream.console.sessions``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from touchstream.console.sessions import ABSOLUTE_S, IDLE_S, SessionStore
from touchstream.fleet.pg import StatePool

_SCHEMA = [("CREATE TABLE IF NOT EXISTS console_sessions (id_hash TEXT PRIMARY KEY, "
            "key_id TEXT NOT NULL, csrf TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
            "last_seen DOUBLE PRECISION NOT NULL)")]


class PostgresSessionStore(SessionStore):
    """``SessionStore`` on the shared database."""

    def __init__(self, uri: str, *, idle_s: float = IDLE_S, absolute_s: float = ABSOLUTE_S,
                 clock: Callable[[], float] = time.time, timeout_s: float = 5) -> None:
        super().__init__(None, idle_s=idle_s, absolute_s=absolute_s, clock=clock)  # type: ignore[arg-type]
        self._pg = StatePool(uri, _SCHEMA, name="touchstream-sessions", timeout_s=timeout_s)

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._pg.connection() as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self._pg.close()
