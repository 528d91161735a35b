"""An analyst's file kept as a live read model: its rows, tracked exactly once and
rebuildable with proof like the built-in read models (``touchstream projections add``).

Unlike a one-off replay (``replays.analyst``), a live analyst projection runs
inside the projection worker without a sandbox: adding one is an admin's act,
like deploying code, and the README says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from domain.customer import Customer
from domain.records import Record
from projections.analyst.spec import AnalystSpec
from projections.engine import Names, Projection, Table
from projections.store import Db

PREFIX = "analyst_"
_SQL = {
    "text": "TEXT", "integer": "BIGINT", "real": "DOUBLE PRECISION", "boolean": "BOOLEAN",
    "date": "TEXT", "timestamp": "TEXT", "decimal": "TEXT",
}


class AnalystProjection(Projection):
    """The rows an analyst file emits, one table ``analyst_<name>_g<N>_row``."""

    consumes: ClassVar[tuple[type, ...]] = (Customer.Event, Record.Event)

    def __init__(self, spec: AnalystSpec) -> None:
        self.spec = spec
        self.name = PREFIX + spec.name  # type: ignore[misc]
        self.tables = (Table("row", ("position", "seq"), spec.column_names),)  # type: ignore[misc]

    def ddl(self, dialect: str) -> list[str]:
        cols = ", ".join(f"{c} {_SQL[k]}" for c, k in self.spec.columns)
        return [(f"CREATE TABLE {{row}} (position BIGINT NOT NULL, seq INTEGER NOT NULL, "
                 f"{cols}, PRIMARY KEY (position, seq))")]

    def apply(self, db: Db, t: Names, items: Sequence[tuple[int, Any]]) -> None:
        rows = [row for pos, event in items for row in self.spec.rows(pos, event)]
        db.insert_rows(t.row, self.spec.column_names, rows)
