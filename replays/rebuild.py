"""Rebuild read models from position 0 beside the live ones, prove equality, swap.

A rebuild only reads the event log and writes read-model tables: it never
runs a command, so nothing is sent and no webhook is called.

1. A new generation of each projection is filled from position 0 in batches
   (one read and decode of the log per process: a long log is split over
   ``workers`` processes, ``replays.fill``), while the API keeps
   reading the live generation; its deferred indexes (PostgreSQL full text)
   are then built in one go.
2. The live generation is brought up to the same position (a running worker
   usually already is further; then the new one is brought up instead).
3. Under the write lock of both tracking rows, the two are advanced to one
   position, compared row by row in key order (a canonical SHA-256 over
   every row of every table) and — unless ``verify_only`` — the ``live``
   flag moves to the new generation in the same transaction. The old
   generation's tables are dropped afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from projections.engine import (
    TRACKING,
    EventSource,
    Projection,
    Table,
    Worker,
    apply_locked,
    create_generation,
    drop_generation,
    ensure_live,
    finish_generation,
    generations,
    iter_batches,
    lock_generation,
)
from projections.store import Db, ReadStore
from replays.fill import PARALLEL_MIN_EVENTS, fill

MAX_DIFFERENCES = 10
_INT_KEYS = {"position", "rowid"}


@dataclass(frozen=True)
class Difference:
    """A row present or different on one side, named by its table and key."""

    table: str
    key: dict[str, Any]
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def describe(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self.key.items())
        if self.live is None:
            return f"{self.table} [{where}]: only in the rebuilt model: {self.rebuilt}"
        if self.rebuilt is None:
            return f"{self.table} [{where}]: only in the live model: {self.live}"
        changed = {k: (self.live[k], self.rebuilt[k]) for k in self.live
                   if self.live[k] != self.rebuilt.get(k)}
        parts = "; ".join(f"{k}: live {a!r} vs rebuilt {b!r}" for k, (a, b) in changed.items())
        return f"{self.table} [{where}]: {parts}"


@dataclass
class Comparison:
    position: int
    live_checksum: str
    rebuilt_checksum: str
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (live, rebuilt)
    differences: list[Difference] = field(default_factory=list)
    differing_rows: int = 0

    @property
    def equal(self) -> bool:
        return self.live_checksum == self.rebuilt_checksum and not self.differing_rows


@dataclass(frozen=True)
class RebuildResult:
    name: str
    live_generation: int
    rebuilt_generation: int
    comparison: Comparison
    swapped: bool


def _rows(db: Db, physical: str, table: Table) -> Iterator[tuple[Any, ...]]:
    order = ", ".join(
        k if db.dialect == "sqlite" or k in _INT_KEYS else f'{k} COLLATE "C"' for k in table.key
    )
    sql = f"SELECT {', '.join(table.columns)} FROM {physical} ORDER BY {order}"
    if db.dialect == "sqlite":
        yield from db.conn.execute(sql)
    else:
        with db.conn.cursor(name=f"cmp_{physical}") as cur:
            cur.itersize = 2000
            cur.execute(sql)
            yield from (tuple(r) for r in cur)


def compare(db: Db, projection: Projection, live: int, rebuilt: int, position: int,
            max_differences: int = MAX_DIFFERENCES) -> Comparison:
    """Row-by-row comparison in key order of two generations (inside a transaction)."""
    a_names, b_names = projection.names(live), projection.names(rebuilt)
    ha, hb = hashlib.sha256(), hashlib.sha256()
    result = Comparison(position, "", "")
    for table in projection.tables:
        if not table.columns:
            continue  # a derived index (full text): follows from the rows compared
        key_idx = [table.columns.index(k) for k in table.key]
        ia, ib = _rows(db, a_names[table.name], table), _rows(db, b_names[table.name], table)
        ra, rb = next(ia, None), next(ib, None)
        na = nb = 0
        head = table.name.encode()
        ha.update(head)
        hb.update(head)
        while ra is not None or rb is not None:
            ka = tuple(ra[i] for i in key_idx) if ra is not None else None
            kb = tuple(rb[i] for i in key_idx) if rb is not None else None
            take_a = ra is not None and (kb is None or (ka is not None and ka <= kb))
            take_b = rb is not None and (ka is None or (kb is not None and kb <= ka))
            if take_a != take_b or ra != rb:
                result.differing_rows += 1
                _note(result, table, ka if take_a else kb, ra if take_a else None,
                      rb if take_b else None, max_differences)
            if take_a:
                ha.update(orjson.dumps(list(ra or ())))
                na += 1
                ra = next(ia, None)
            if take_b:
                hb.update(orjson.dumps(list(rb or ())))
                nb += 1
                rb = next(ib, None)
        result.rows[table.name] = (na, nb)
    result.live_checksum, result.rebuilt_checksum = ha.hexdigest(), hb.hexdigest()
    return result


def _note(result: Comparison, table: Table, key: Any, live: Any, rebuilt: Any, cap: int) -> None:
    if len(result.differences) >= cap:
        return
    named = dict(zip(table.key, key, strict=True))
    result.differences.append(Difference(
        table.name, named,
        dict(zip(table.columns, live, strict=True)) if live is not None else None,
        dict(zip(table.columns, rebuilt, strict=True)) if rebuilt is not None else None,
    ))


def _advance_locked(db: Db, source: EventSource, projection: Projection, generation: int,
                    frm: int, to: int, batch: int) -> None:
    for items, pos in iter_batches(source, frm, to, batch, projection.consumes):
        apply_locked(db, projection, generation, items, pos)


def rebuild(store: ReadStore, source: EventSource, projections: Sequence[Projection], *,
            verify_only: bool = False, progress: Callable[[int, int], None] | None = None,
            batch: int = 1000, workers: int = 1,
            source_factory: Callable[[], EventSource] | None = None,
            parallel_from: int = PARALLEL_MIN_EVENTS) -> list[RebuildResult]:
    """Rebuild ``projections`` from 0 beside the live ones; compare; swap unless verify-only.

    ``progress(position, head)`` is called after each batch of the catch-up. With
    ``workers`` > 1 and a picklable ``source_factory`` a long log is filled by that many
    processes (``replays.fill``; ``parallel_from``: how long is long).
    """
    db = store.connect()
    try:
        live: dict[str, int] = {}
        fresh: dict[str, int] = {}
        for p in projections:
            live[p.name] = ensure_live(db, p).generation
            for g in generations(db, p.name):
                if not g.live:  # an earlier rebuild that did not finish
                    drop_generation(db, p, g.generation)
            fresh[p.name] = create_generation(db, p)
        try:
            return _rebuild(store, db, source, projections, live, fresh, verify_only, progress,
                            batch, workers, source_factory, parallel_from)
        except BaseException:
            for p in projections:
                if not _is_live(db, p.name, fresh[p.name]):
                    drop_generation(db, p, fresh[p.name])
            raise
    finally:
        db.close()


def _is_live(db: Db, name: str, generation: int) -> bool:
    return bool(db.scalar(f"SELECT live FROM {TRACKING} WHERE name=? AND generation=?",
                          (name, generation)))


def _rebuild(store: ReadStore, db: Db, source: EventSource, projections: Sequence[Projection],
             live: dict[str, int], fresh: dict[str, int], verify_only: bool,
             progress: Callable[[int, int], None] | None, batch: int, workers: int,
             source_factory: Callable[[], EventSource] | None,
             parallel_from: int) -> list[RebuildResult]:
    head = source.head()
    targets = [(p, fresh[p.name]) for p in projections]
    fill(store, source, targets, head, batch=batch, workers=workers,
         source_factory=source_factory, parallel_from=parallel_from,
         progress=(lambda pos: progress(pos, head)) if progress else None)
    target = Worker(db, source, targets, batch).position()
    for p in projections:
        finish_generation(db, p, fresh[p.name])
    Worker(db, source, [(p, live[p.name]) for p in projections], batch).catch_up(stop=target)
    results = []
    for p in projections:
        with db.write():
            lp = lock_generation(db, p.name, live[p.name])
            np = lock_generation(db, p.name, fresh[p.name])
            if np < lp:
                _advance_locked(db, source, p, fresh[p.name], np, lp, batch)
            elif lp < np:
                _advance_locked(db, source, p, live[p.name], lp, np, batch)
            comparison = compare(db, p, live[p.name], fresh[p.name], max(lp, np))
            swapped = not verify_only
            if swapped:
                db.execute(f"UPDATE {TRACKING} SET live=0 WHERE name=? AND generation=?",
                           (p.name, live[p.name]))
                db.execute(f"UPDATE {TRACKING} SET live=1 WHERE name=? AND generation=?",
                           (p.name, fresh[p.name]))
        drop_generation(db, p, live[p.name] if swapped else fresh[p.name])
        results.append(RebuildResult(p.name, live[p.name], fresh[p.name], comparison, swapped))
    return results


def verify_checkpoints(store: ReadStore, head: int) -> list[str]:
    """Invariant: no read model's position is ahead of the durable log."""
    db = store.connect()
    try:
        return [f"{g.name} generation {g.generation} at {g.position} > log head {head}"
                for g in generations(db) if g.position > head]
    finally:
        db.close()
