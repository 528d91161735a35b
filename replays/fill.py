"""Filling new generations of read models from the log, in one process or several.

A rebuild's fill is Python building rows (~130-170 µs of CPU per event for every read
model, against ~30-45 µs to read and decode it: ``/work/notes`` profiles), so on a machine
with more than one core the read models are split into groups, one per process, each
reading and decoding the log once for its group (``Worker``: one transaction per batch,
the position checked under lock as always).

- PostgreSQL: every process writes its generations in the read store itself (each
  locks only its own tracking rows, so they never wait on each other).
- SQLite has one writer per file, and a batch holds the write lock while its rows are
  built: processes writing one file would take turns. So each helper process fills its
  generations in a scratch file beside the read store (same physical table names, its
  own tracking rows), and the calling process, once every group is done, copies each
  table in one ``INSERT … SELECT`` (rowids kept) and sets the tracking rows to the
  scratch ones' position and count, in one transaction (each table's indexes built once
  after its copy); the scratch files are removed. Full-text indexes are made after the
  fill (``deferred_ddl``); a read model with a virtual table of its own stays with the
  calling process, and so does the timeline (the most bytes: copying them back would
  cost more than filling them here).

Nothing here is live: the generations filled are new ones a rebuild compares with the
live generation row by row before any swap (``replays.rebuild``), so a fill in several
processes is proven equal exactly like one in a single process.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

from projections import registry
from projections.engine import (
    TRACKING,
    EventSource,
    Projection,
    ProjectionError,
    Worker,
    ensure_tracking,
    lock_generation,
)
from projections.store import Db, ReadStore

#: Below this many events a fill runs in the calling process (starting a process, which
#: imports the hub and opens the stores, costs ~1 s).
PARALLEL_MIN_EVENTS = 50_000

#: Relative CPU per event of each read model's ``apply`` (µs per event, 101,000 bench events,
#: 1,000 customers, SQLite, after the session-12 changes; ``/work/notes`` profiles): how the
#: groups are balanced. A read model not listed weighs 3.
COST = {"timeline": 44, "summary": 20, "value": 16, "callcentre": 15, "channel_mix": 14,
        "response_times": 12, "accounts": 11, "service": 8, "event_index": 8, "quality": 5,
        "campaigns": 4, "auto_replies": 4, "segments": 4, "pipeline": 4, "directory": 3,
        "orders": 3, "work": 2, "satisfaction": 1, "contracts": 1, "territories": 1,
        "lifecycle": 1, "commissions": 1, "consent": 1, "outbox": 1, "dispatch": 1,
        "knowledge": 1}
_DECODE_COST = 40  # reading and decoding one event, in the same units: each process pays it
#: The calling process commits its batches to the live file's WAL (every page written
#: twice, once more at each checkpoint), a helper to a scratch file with its journal in
#: memory and no sync: measured, the caller paid ~15 more per event for the same rows
#: (SQLite only: on PostgreSQL every process writes the read store alike).
_CALLER_COST = 15
#: A helper starts by importing the hub and opening the stores (~1-2 CPU s): weighed as
#: this much more per event.
_HELPER_COST = 10
#: Read models filled by the calling process whenever it can: the most bytes per event
#: (the timeline's detail bodies), which a helper's copy-back would write a second time.
_CALLER_FIRST = frozenset({"timeline"})

#: Young collections during a fill every this many allocations, not CPython's 700: a
#: batch's decoded events (~10 objects each) live until the batch is written, so nearly
#: every young collection walked them and promoted them, and the older ones followed
#: (gc.callbacks, one-process fill of 52,000 bench events on SQLite: 579 collections,
#: ~11 µs of an event's ~250 µs of CPU; with this, none to 1: they are freed by their
#: count at the batch's end, not by the collector).
FILL_GC_THRESHOLD = 20_000

Target = tuple[Projection, int]
log = logging.getLogger("touchstream.projections")


def default_workers() -> int:
    """One process per core, at most four (each one reads and decodes the whole log)."""
    return max(1, min(4, os.cpu_count() or 1))


def fill(store: ReadStore, source: EventSource, targets: Sequence[Target], stop: int, *,
         batch: int, workers: int = 1,
         source_factory: Callable[[], EventSource] | None = None,
         progress: Callable[[int], None] | None = None,
         parallel_from: int = PARALLEL_MIN_EVENTS) -> None:
    """Advance the (new, not live) generations ``targets`` from their position to ``stop``.

    ``workers`` > 1 splits them over that many processes when the log is long enough and
    ``source_factory`` (picklable: the helper processes call it to read the log) is given;
    ``progress(position)`` follows the calling process's group; a log shorter than
    ``parallel_from`` events is filled by the calling process alone.
    """
    db = store.connect()
    try:
        with _few_collections():
            # Only fresh generations (position 0) are split: a scratch file starts empty.
            fresh = all(_position(db, p, g) == 0 for p, g in targets)
            groups = _groups(targets, workers, store.dialect) if (
                workers > 1 and source_factory is not None and fresh
                and stop >= parallel_from) else [list(targets)]
            if len(groups) == 1:
                Worker(db, source, groups[0], batch).catch_up(stop=stop, progress=progress)
                return
            _fill_parallel(store, db, source, source_factory, groups, stop, batch, progress)
    finally:
        db.close()


@contextmanager
def _few_collections() -> Iterator[None]:
    """While filling: what the process held before (modules, the hub, caches) out of the
    collector's reach, and young collections every ``FILL_GC_THRESHOLD`` allocations;
    the collector as it was afterwards. Cycles are still collected, only less often. A
    process that froze its heap itself (the HTTP app) or collects less often already
    keeps its own settings: only what this changed is undone."""
    threshold = gc.get_threshold()
    freezes = gc.get_freeze_count() == 0
    raises = threshold[0] < FILL_GC_THRESHOLD
    if freezes:
        gc.freeze()
    if raises:
        gc.set_threshold(FILL_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        if raises:
            gc.set_threshold(*threshold)
        if freezes:
            gc.unfreeze()


def _position(db: Db, projection: Projection, generation: int) -> int:
    return int(db.scalar(f"SELECT position FROM {TRACKING} WHERE name=? AND generation=?",
                         (projection.name, generation)) or 0)


def _movable(projection: Projection, dialect: str) -> bool:
    """Whether another process may fill it: a built-in read model (the helper finds it by
    name) whose tables a plain copy reproduces."""
    if registry.PROJECTIONS.get(projection.name) is not type(projection):
        return False
    return dialect != "sqlite" or not any("VIRTUAL" in s for s in projection.ddl("sqlite"))


def _groups(targets: Sequence[Target], workers: int, dialect: str) -> list[list[Target]]:
    """Group 0 (the calling process) first; the heaviest read model first into the group
    with the least work, counting each process's own decode."""
    groups: list[list[Target]] = [[] for _ in range(workers)]
    caller = _CALLER_COST if dialect == "sqlite" else 0  # PostgreSQL: all write alike
    load = [_DECODE_COST + caller] + [_DECODE_COST + _HELPER_COST] * (workers - 1)
    for target in targets:
        if not _movable(target[0], dialect) or target[0].name in _CALLER_FIRST:
            groups[0].append(target)
            load[0] += COST.get(target[0].name, 3)
    movable = [t for t in targets if t not in groups[0]]
    for target in sorted(movable, key=lambda t: -COST.get(t[0].name, 3)):
        k = min(range(workers), key=lambda i: load[i])
        groups[k].append(target)
        load[k] += COST.get(target[0].name, 3)
    return [groups[0], *(g for g in groups[1:] if g)]


def _fill_parallel(store: ReadStore, db: Db, source: EventSource,
                   source_factory: Callable[[], EventSource], groups: list[list[Target]],
                   stop: int, batch: int, progress: Callable[[int], None] | None) -> None:
    scratch = [_scratch_path(store, k) for k in range(1, len(groups))]
    for path in scratch:
        _remove(path)
    context = multiprocessing.get_context("spawn")  # never fork a process holding connections
    with ProcessPoolExecutor(len(groups) - 1, mp_context=context) as pool:
        futures: list[Future[tuple[float, float]]] = [
            pool.submit(_fill_group, store.uri, store.timeout_s, str(path) if path else None,
                        source_factory, [(p.name, g) for p, g in group], stop, batch)
            for path, group in zip(scratch, groups[1:], strict=True)]
        try:
            if groups[0]:
                Worker(db, source, groups[0], batch).catch_up(stop=stop, progress=progress)
            for k, future in enumerate(futures, 1):
                cpu, wall = future.result()
                log.info("fill group %d (%s): %.2f CPU s in %.2f s", k,
                         ",".join(p.name for p, _ in groups[k]), cpu, wall)
        except BaseException:
            for future in futures:
                future.cancel()
            for path in scratch:
                _remove(path)
            raise
    for path, group in zip(scratch, groups[1:], strict=True):
        if path is not None:
            _copy_back(db, path, group)
            _remove(path)


def _scratch_path(store: ReadStore, k: int) -> Path | None:
    if store.dialect != "sqlite":
        return None
    assert store.path is not None
    return store.path.with_name(f"{store.path.name}.fill-{os.getpid()}-{k}")


def _remove(path: Path | None) -> None:
    if path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _fill_group(uri: str, timeout_s: int, scratch: str | None,
                source_factory: Callable[[], EventSource], named: list[tuple[str, int]],
                stop: int, batch: int) -> tuple[float, float]:
    """In a helper process: fill these generations (in ``scratch`` on SQLite); its
    (CPU seconds, wall seconds) for the log."""
    started = time.perf_counter()
    targets = [(registry.get(name), generation) for name, generation in named]
    if scratch is None:
        db = ReadStore(uri, timeout_s=timeout_s).connect()
    else:
        db = ReadStore(f"sqlite:///{scratch}", timeout_s=timeout_s, access_log=False).connect()
        # A scratch file nobody else opens, removed after the copy or on any failure:
        # no fsync, and a rollback journal in memory instead of the WAL (whose pages
        # are written twice, once more at each checkpoint: ~10 µs of CPU per event).
        db.execute("PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA synchronous=OFF")
        ensure_tracking(db)
        with db.write():
            for p, generation in targets:
                for statement in p.ddl("sqlite"):
                    db.execute(statement.format_map(p.names(generation)))
                db.execute(f"INSERT INTO {TRACKING} (name, generation, position, live, events) "
                           "VALUES (?,?,0,0,0)", (p.name, generation))
    source = source_factory()
    try:
        with _few_collections():
            Worker(db, source, targets, batch).catch_up(stop=stop)
    finally:
        source.close()
        db.close()
    return time.process_time(), time.perf_counter() - started


def _exists(db: Db, schema: str, table: str) -> bool:
    return db.scalar(f"SELECT COUNT(*) FROM {schema}.sqlite_master WHERE name=?", (table,)) == 1


def _copy_back(db: Db, scratch: Path, group: list[Target]) -> None:
    """Copy a scratch file's generations into the store, tracking rows with them."""
    db.execute("ATTACH DATABASE ? AS fill", (str(scratch),))
    try:
        with db.write():
            for p, generation in group:
                if lock_generation(db, p.name, generation) != 0:
                    raise ProjectionError(f"{p.name} generation {generation} was advanced "
                                          "while a helper process filled it")
                names = p.names(generation)
                for table in p.tables:
                    physical = names[table.name]
                    columns = ", ".join(r[1] for r in db.all(f"PRAGMA fill.table_info({physical})"))
                    if not columns and not _exists(db, "main", physical):
                        continue  # made after the fill (``deferred_ddl``: a full-text index)
                    # The table's own indexes are built once after the copy (a sort), not
                    # row by row during it: a third of the copy's CPU.
                    indexes = db.all("SELECT name, sql FROM main.sqlite_master WHERE "
                                     "type='index' AND tbl_name=? AND sql IS NOT NULL",
                                     (physical,))
                    for name, _ in indexes:
                        db.execute(f"DROP INDEX main.{name}")
                    db.execute(f"INSERT INTO main.{physical} (rowid, {columns}) "
                               f"SELECT rowid, {columns} FROM fill.{physical} ORDER BY rowid")
                    for _, sql in indexes:
                        db.execute(sql)
                row = db.one(f"SELECT position, events, updated_at, last_recorded_us, rate "
                             f"FROM fill.{TRACKING} WHERE name=? AND generation=?",
                             (p.name, generation))
                if row is None:
                    raise ProjectionError(f"{p.name} generation {generation}: scratch fill "
                                          "has no tracking row")
                db.execute(f"UPDATE main.{TRACKING} SET position=?, events=?, updated_at=?, "
                           "last_recorded_us=?, rate=? WHERE name=? AND generation=?",
                           (*row, p.name, generation))
    finally:
        db.execute("DETACH DATABASE fill")
