"""Which analyst projections are live: their files, kept in the read store."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from projections.analyst.projection import PREFIX, AnalystProjection
from projections.analyst.spec import AnalystSpec, load_spec
from projections.store import Db

TABLE = "ts_analyst_projection"
_DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, source TEXT NOT NULL, "
        "sha256 TEXT NOT NULL, added_at TEXT NOT NULL)")


class AnalystProjectionExistsError(Exception):
    """Raised when adding an analyst projection whose name is taken by a different file."""


def _ensure(db: Db) -> None:
    db.execute(_DDL)


def add(db: Db, spec: AnalystSpec) -> bool:
    """Install ``spec`` (False when the same file is installed already)."""
    digest = hashlib.sha256(spec.source.encode()).hexdigest()
    with db.write():
        _ensure(db)
        row = db.one(f"SELECT sha256 FROM {TABLE} WHERE name=?", (spec.name,))
        if row is not None:
            if row[0] == digest:
                return False
            raise AnalystProjectionExistsError(
                f"an analyst projection named {spec.name!r} is installed with another file; "
                f"remove it first (touchstream projections remove {PREFIX}{spec.name})")
        db.execute(f"INSERT INTO {TABLE} (name, source, sha256, added_at) VALUES (?, ?, ?, ?)",
                   (spec.name, spec.source, digest, datetime.now(UTC).isoformat()))
    return True


def remove(db: Db, name: str) -> bool:
    """Uninstall (False when not installed); the caller drops its generations."""
    with db.write():
        _ensure(db)
        found = db.one(f"SELECT name FROM {TABLE} WHERE name=?", (name.removeprefix(PREFIX),))
        if found is None:
            return False
        db.execute(f"DELETE FROM {TABLE} WHERE name=?", (found[0],))
    return True


def installed(db: Db) -> list[AnalystProjection]:
    """The live analyst projections, by name."""
    _ensure(db)
    rows = db.all(f"SELECT name, source FROM {TABLE} ORDER BY name")
    return [AnalystProjection(load_spec(source, f"<analyst projection {name}>"))
            for name, source in rows]
