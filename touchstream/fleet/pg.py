"""A small connection pool for the channel state kept in PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

T = TypeVar("T")
SCHEMA_LOCK_ID = 0x70C5_F1EE  # serialises CREATE TABLE IF NOT EXISTS across hosts


class StatePool:
    """Pooled autocommit connections to the state database.

    Nothing is contacted on construction: the schema is made on first use (and
    retried on the next use if the server was away), so a host starts while
    the database is briefly unreachable and its requests answer 503 meanwhile.
    """

    def __init__(self, uri: str, schema: Sequence[str], *, name: str,
                 timeout_s: float = 5, max_size: int = 4, check: bool = True) -> None:
        # check: a connection broken by a server restart is replaced on checkout. That
        # ping is a round trip of its own: a hot user asks again on a connection found
        # broken instead (``run``) and turns it off.
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            uri, min_size=1, max_size=max_size, open=True,
            kwargs={"autocommit": True, "application_name": name}, name=name, timeout=timeout_s,
            check=ConnectionPool.check_connection if check else None)
        self.schema = list(schema)
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self._ready:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
                for statement in self.schema:
                    conn.execute(statement)
            self._ready = True

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            if not self._ready:
                self._ensure_schema(conn)
            yield conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work`` on a pooled connection, asked again on another one if the connection
        was found broken (a server restart: the pool drops it on return). Only for work
        that may run twice: reads, and writes that a second run leaves as the first did."""
        for attempt in range(self.pool.max_size + 1):
            with self.connection() as conn:
                try:
                    return work(conn)
                except psycopg.OperationalError:
                    if not conn.broken or attempt == self.pool.max_size:
                        raise
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        self.pool.close()
