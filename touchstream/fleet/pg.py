"""A small connection pool for the channel state kept in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

SCHEMA_LOCK_ID = 0x70C5_F1EE  # serialises CREATE TABLE IF NOT EXISTS across hosts


class StatePool:
    """Pooled autocommit connections to the state database; the schema made on open."""

    def __init__(self, uri: str, schema: Sequence[str], *, name: str,
                 timeout_s: float = 5, max_size: int = 4) -> None:
        # check: a connection broken by a server restart is replaced on checkout.
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            uri, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": True},
            name=name, timeout=timeout_s, check=ConnectionPool.check_connection)
        try:
            with self.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
                for statement in schema:
                    conn.execute(statement)
        except BaseException:
            self.pool.close()
            raise

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        self.pool.close()
