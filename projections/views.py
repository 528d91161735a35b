"""What every read-model view shares: finding the live generation, retrying after a swap."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from projections.engine import TRACKING, Names, Projection, ProjectionError, live_generation
from projections.store import Db, ReadStore

T = TypeVar("T")
NAMES_TTL_S = 0.25


class ProjectionNotReadyError(ProjectionError):
    """Raised when a read model has never been built (no projection runner has started)."""


class LiveView:
    """Base of the views: queries run on this thread's connection against the live tables."""

    projection: Projection

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self._names: Names | None = None
        self._names_at = 0.0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.projection.name

    def _live_names(self, db: Db, fresh: bool = False) -> Names:
        now = time.monotonic()
        names = self._names
        if names is None or fresh or now - self._names_at > NAMES_TTL_S:
            try:
                row = live_generation(db, self.projection.name)
            except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as exc:
                raise ProjectionNotReadyError(f"read model {self.name!r} was never built") from exc
            if row is None:
                raise ProjectionNotReadyError(f"read model {self.name!r} was never built")
            names = self.projection.names(row.generation)
            with self._lock:
                self._names, self._names_at = names, now
        return names

    def run(self, query: Callable[[Db, Names], T]) -> T:
        """Run ``query``; after a rebuild swapped tables (or a broken connection) retry once."""
        for attempt in (0, 1):
            db = self.store.local()
            try:
                return query(db, self._live_names(db, fresh=attempt == 1))
            except (sqlite3.OperationalError, psycopg.errors.UndefinedTable,
                    psycopg.OperationalError, psycopg.InterfaceError):
                if attempt == 1:
                    raise
                if db.dialect == "postgres":
                    self.store.reset_local()
        raise AssertionError("unreachable")

    def position(self) -> int:
        """The log position the live read model has reached (0 when never built)."""
        db = self.store.local()
        try:
            pos = db.scalar(f"SELECT position FROM {TRACKING} WHERE name=? AND live=1",
                            (self.projection.name,))
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
            if db.dialect == "postgres":
                self.store.reset_local()
            return 0
        return int(pos or 0)
