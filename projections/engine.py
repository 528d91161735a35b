"""The projection engine: read models kept exactly once from the event log.

Every read model ("projection") owns a set of tables per *generation*
(``timeline_g3_entry``…). One row per generation in ``ts_projection`` holds
its position in the event log; a batch of events changes the tables and that
row in ONE transaction, after checking (under the write lock) that the row
still holds the position the batch was read from. So a crash loses a whole
batch or nothing, a restart resumes from the stored position, and two
processes advancing the same generation never apply an event twice.

Exactly one generation per projection is ``live`` (what the API reads); a
rebuild fills a new generation beside it and flips ``live`` atomically
(see ``replays.rebuild``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

import psycopg

from domain.customer import Customer
from projections.events import Item, event_class, is_customer_topic, us
from projections.faults import (
    FAULTS,
    FAULTS_DDL,
    DamagedEventError,
    Fault,
    faults,
    new_fault,
    record_fault,
)
from projections.store import Db
from projections.subscribed import SubscriptionFeed

log = logging.getLogger("touchstream.projections")

TRACKING = "ts_projection"
#: the live runner's pause after a step that caught up with a busy log (the read models'
#: lag grows by at most this much; their cost per event falls with bigger steps)
FOLLOW_GATHER_S = 0.02
DEFAULT_BATCH = 1000
_PG_LOCK_ID = 0x7EAD_5E7


class ProjectionError(Exception):
    """Base of the projection engine's errors."""


class GenerationGoneError(ProjectionError):
    """Raised when the generation being advanced was retired (a rebuild replaced it)."""


class UnknownProjectionError(ProjectionError):
    """Raised when a projection name is not one of the read models."""


class Names(dict[str, str]):
    """Logical table name → physical name of one generation (``entry`` → ``timeline_g2_entry``)."""

    def __init__(self, projection: str, generation: int, logical: Sequence[str]) -> None:
        super().__init__({t: f"{projection}_g{generation}_{t}" for t in logical})
        # Plain attributes too: ``t.entry`` is read per event in the hot loops, and a
        # ``__getattr__`` call each time cost ~4% of a rebuild (cProfile). A name a dict
        # method already has keeps resolving as before (through ``__getattr__``: never).
        self.__dict__.update({k: v for k, v in self.items() if not hasattr(dict, k)})
        self.generation = generation

    def __getattr__(self, item: str) -> str:
        try:
            return self[item]
        except KeyError as exc:
            raise AttributeError(item) from exc


@dataclass(frozen=True)
class Table:
    """A table of a read model and the columns that order it canonically (its key)."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...] = ()  # compared by the checksum; empty: a derived index, skipped


class Projection(ABC):
    """One read model: its tables and how events change them."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    # The event classes ``apply`` is given (customer-stream events unless a read
    # model also follows other aggregates, e.g. accounts or campaigns).
    consumes: ClassVar[tuple[type, ...]] = (Customer.Event,)
    # The event classes (and their subclasses) ``apply`` can act on, when that is a
    # few: the others are never handed to it (``touched``), so a batch of touchpoints
    # costs nothing in a read model of orders. Only for an ``apply`` that ignores every
    # other event whatever its fields (a choice by class, never by field); None: all.
    touches: ClassVar[tuple[type, ...] | None] = None

    @abstractmethod
    def ddl(self, dialect: str) -> list[str]:
        """CREATE statements with ``{table}`` placeholders for the logical names."""

    @abstractmethod
    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        """Change the tables for these events (in log order). No clock, no I/O but ``db``."""

    def deferred_ddl(self, dialect: str) -> list[str]:
        """Indexes (and derived tables such as a full-text index, filled from the rows)
        a rebuild creates after filling its tables (one bulk build is cheaper than
        maintaining them row by row); created at once for a new live generation."""
        return []

    def names(self, generation: int) -> Names:
        return Names(self.name, generation, [t.name for t in self.tables])

    def drop_statements(self, generation: int, dialect: str) -> list[str]:
        names = self.names(generation)
        return [f"DROP TABLE IF EXISTS {names[t.name]}" for t in reversed(self.tables)]


@dataclass(frozen=True)
class GenerationRow:
    name: str
    generation: int
    position: int
    live: bool
    events: int
    updated_at: float | None
    last_recorded_us: int | None
    rate: float | None


# --------------------------------------------------------------------- tracking

_TRACKING_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TRACKING} ("
    "name TEXT NOT NULL, generation INTEGER NOT NULL, position BIGINT NOT NULL, "
    "live INTEGER NOT NULL, events BIGINT NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION, "
    "last_recorded_us BIGINT, rate DOUBLE PRECISION, PRIMARY KEY (name, generation))"
)
_ROW = "name, generation, position, live, events, updated_at, last_recorded_us, rate"


def _row(r: Sequence[Any]) -> GenerationRow:
    return GenerationRow(r[0], int(r[1]), int(r[2]), bool(r[3]), int(r[4]), r[5], r[6], r[7])


def _schema_lock(db: Db) -> None:
    """Inside a write transaction: serialise DDL (PostgreSQL fails concurrent CREATEs)."""
    if db.dialect == "postgres":
        db.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK_ID,))
    db.execute(_TRACKING_DDL)


def ensure_tracking(db: Db) -> None:
    with db.write():
        _schema_lock(db)


def generations(db: Db, name: str | None = None) -> list[GenerationRow]:
    where, params = ("WHERE name=?", (name,)) if name else ("", ())
    rows = db.all(f"SELECT {_ROW} FROM {TRACKING} {where} ORDER BY name, generation", params)
    return [_row(r) for r in rows]


def live_generation(db: Db, name: str) -> GenerationRow | None:
    r = db.one(f"SELECT {_ROW} FROM {TRACKING} WHERE name=? AND live=1", (name,))
    return _row(r) if r else None


def ensure_live(db: Db, projection: Projection) -> GenerationRow:
    """The live generation, created (tables and tracking row) on first use."""
    ensure_tracking(db)
    found = live_generation(db, projection.name)
    if found is not None:
        return found
    with db.write():
        _schema_lock(db)
        found = live_generation(db, projection.name)
        if found is None:
            gen = _create_generation(db, projection, live=True)
            found = _row(db.one(f"SELECT {_ROW} FROM {TRACKING} WHERE name=? AND generation=?",
                                (projection.name, gen)) or ())
    return found


def create_generation(db: Db, projection: Projection) -> int:
    """A new, empty, not-live generation at position 0 (for a rebuild), without its
    deferred indexes (``finish_generation`` adds them)."""
    ensure_tracking(db)
    with db.write():
        _schema_lock(db)
        return _create_generation(db, projection, live=False, defer=True)


def finish_generation(db: Db, projection: Projection, generation: int) -> None:
    """Create the deferred indexes of a rebuilt generation."""
    names = projection.names(generation)
    with db.write():
        _schema_lock(db)
        for statement in projection.deferred_ddl(db.dialect):
            db.execute(statement.format_map(names))


def _create_generation(db: Db, projection: Projection, *, live: bool,
                       defer: bool = False) -> int:
    top = db.scalar(f"SELECT MAX(generation) FROM {TRACKING} WHERE name=?", (projection.name,))
    gen = int(top or 0) + 1
    names = projection.names(gen)
    for statement in projection.drop_statements(gen, db.dialect):
        db.execute(statement)  # leftovers of a generation whose row was deleted
    deferred = [] if defer else projection.deferred_ddl(db.dialect)
    for statement in [*projection.ddl(db.dialect), *deferred]:
        db.execute(statement.format_map(names))
    db.execute(
        f"INSERT INTO {TRACKING} (name, generation, position, live, events) VALUES (?,?,0,?,0)",
        (projection.name, gen, 1 if live else 0),
    )
    return gen


def drop_generation(db: Db, projection: Projection, generation: int) -> None:
    with db.write():
        _schema_lock(db)
        db.execute(f"DELETE FROM {TRACKING} WHERE name=? AND generation=? AND live=0",
                   (projection.name, generation))
        if db.scalar(f"SELECT COUNT(*) FROM {TRACKING} WHERE name=? AND generation=?",
                     (projection.name, generation)):
            return  # it is live: never drop what the API reads
        for statement in projection.drop_statements(generation, db.dialect):
            db.execute(statement)


def retire(db: Db, projection: Projection) -> None:
    """Forget a read model altogether: every generation's tables and tracking rows
    (an analyst projection being removed; built-in ones are never retired)."""
    with db.write():
        _schema_lock(db)
        for row in generations(db, projection.name):
            for statement in projection.drop_statements(row.generation, db.dialect):
                db.execute(statement)
        db.execute(f"DELETE FROM {TRACKING} WHERE name=?", (projection.name,))
        db.execute(FAULTS_DDL)
        db.execute(f"DELETE FROM {FAULTS} WHERE name=?", (projection.name,))


def lock_generation(db: Db, name: str, generation: int) -> int:
    """Inside a write transaction: the generation's position, its row locked."""
    suffix = " FOR UPDATE" if db.dialect == "postgres" else ""
    pos = db.scalar(f"SELECT position FROM {TRACKING} WHERE name=? AND generation=?{suffix}",
                    (name, generation))
    if pos is None:
        raise GenerationGoneError(f"{name} generation {generation} was retired")
    return int(pos)


def lock_generations(db: Db, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Inside a write transaction: ``lock_generation`` for several generations in one
    statement (rows locked in one order, by name and generation); a retired one is left
    out of the answer."""
    if not keys:
        return {}
    values = ",".join("(?,?)" for _ in keys)
    suffix = (" ORDER BY name, generation FOR UPDATE OF " + TRACKING
              if db.dialect == "postgres" else "")
    rows = db.all(f"SELECT name, generation, position FROM {TRACKING} "
                  f"WHERE (name, generation) IN (VALUES {values}){suffix}",
                  [v for key in keys for v in key])
    return {(str(name), int(generation)): int(position) for name, generation, position in rows}


def apply_locked(db: Db, projection: Projection, generation: int, items: Sequence[Item],
                 new_position: int, rate: float | None = None,
                 classes: set[type] | None = None) -> None:
    """Inside a write transaction whose position check passed: rows and tracking together
    (``classes``: as ``touched`` takes them)."""
    mine = touched(projection, items, classes)
    if mine:
        projection.apply(db, projection.names(generation), mine)
    last = us(items[-1][1].timestamp) if items else None
    db.execute(
        f"UPDATE {TRACKING} SET position=?, events=events+?, updated_at=?, "
        "last_recorded_us=COALESCE(?, last_recorded_us), rate=COALESCE(?, rate) "
        "WHERE name=? AND generation=?",
        (new_position, len(items), time.time(), last, rate, projection.name, generation),
    )


# ----------------------------------------------------------------------- source

class LogEntry(NamedTuple):
    """A stored event of the log as ``read_log`` gives it: the fields of the library's
    ``Notification`` that the mapper and the engine read."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


_ID_CACHE_SIZE = 65536
_LIBRARY_SQLITE_READ = "SQLiteApplicationRecorder.select_notifications"

class EventSource:
    """Reads the event log in batches and decodes the customer events.

    Built on the write model's application recorder and mapper, so it works on
    every event store the hub supports. ``wait`` blocks until new events may be
    there: LISTEN/NOTIFY on PostgreSQL, a short sleep elsewhere. With
    ``subscribe`` (EventStoreDB: ``$all`` is followed by a catch-up subscription,
    not polled) ``subscription`` hands the live runner the recorder's subscription;
    rebuilds and one-off catch-ups still read in batches up to the head.
    """

    def __init__(self, recorder: Any, mapper: Any, *, listen_uri: str | None = None,
                 poll_interval: float = 0.005, subscribe: bool = False) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.poll_interval = poll_interval
        self.subscribes = subscribe
        self._listen_uri = listen_uri
        self._listener: Any = None
        self._wanted: dict[tuple[type, ...], dict[str, bool]] = {}
        self._table: str | None | bool = False  # ``_sqlite_table``: not looked at yet
        self._uuid_ids = True
        self._ids: dict[str, Any] = {}  # stream id text → its UUID (``read_log``)

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def read(self, after: int, limit: int, stop: int | None = None) -> Sequence[Any]:
        return self.recorder.select_notifications(  # type: ignore[no-any-return]
            after, limit, stop=stop, inclusive_of_start=False
        )

    def read_log(self, after: int, limit: int, stop: int | None = None) -> Sequence[Any]:
        """``read``'s entries for the engine's own batches: on the library's SQLite store
        they are read straight from its table as light tuples (``LogEntry``: the same
        fields, the same values) instead of one frozen dataclass and one ``UUID`` parse
        per row (a fifth of reading and decoding a rebuild's events); elsewhere ``read``."""
        table = self._sqlite_table()
        if table is None:
            return self.read(after, limit, stop)
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
               "WHERE rowid>? " + ("AND rowid<=? " if stop is not None else "")
               + "ORDER BY rowid LIMIT ?")
        params = (after, stop, limit) if stop is not None else (after, limit)
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            rows = c.fetchall()
        ids = self._ids
        if len(ids) >= _ID_CACHE_SIZE:
            ids.clear()
        out = []
        for row in rows:
            text = row[1]
            oid = ids.get(text)
            if oid is None:
                oid = ids[text] = UUID(text) if self._uuid_ids else text
            out.append(LogEntry(row[0], oid, row[2], row[3], row[4]))
        return out

    def _sqlite_table(self) -> str | None:
        """The events table when the recorder is the library's SQLite one (its own
        ``select_notifications``, whatever subclass) and ``read`` is this class's own:
        None for any other store or reader (a subclass's ``read`` is always honoured)."""
        if self._table is False:
            recorder = self.recorder
            # Named, not imported: the read side does not depend on a store's module.
            own = getattr(type(recorder), "select_notifications", None)
            self._table = (recorder.events_table_name
                           if getattr(own, "__module__", None) == "eventsourcing.sqlite"
                           and getattr(own, "__qualname__", None) == _LIBRARY_SQLITE_READ
                           and type(self).read is EventSource.read
                           else None)
            self._uuid_ids = getattr(getattr(recorder, "datastore", None),
                                     "originator_id_type", "uuid") == "uuid"
        return self._table  # type: ignore[return-value]

    def subscription(self, after: int) -> Any:
        """The recorder's catch-up subscription of the log after ``after`` (0: from the
        start), in log order; the caller stops it."""
        return self.recorder.subscribe(gt=after or None)

    def decode(self, notifications: Sequence[Any],
               consumes: tuple[type, ...] = (Customer.Event,)) -> list[Item]:
        """The events of these notifications that are instances of ``consumes``, decoded."""
        items: list[Item] = []
        topics = self._wanted.setdefault(consumes, {})
        for n in notifications:
            wanted = topics.get(n.topic)
            if wanted is None:
                wanted = topics[n.topic] = (
                    (Customer.Event in consumes and is_customer_topic(n.topic))
                    or issubclass(event_class(n.topic), consumes))
            if wanted:
                try:
                    event = self.mapper.to_domain_event(n)
                except Exception as exc:  # any decoding failure: the stored bytes are damaged
                    raise DamagedEventError(int(n.id), describe(n),
                                            f"{type(exc).__name__}: {exc}") from exc
                if isinstance(event, consumes):
                    items.append((int(n.id), event))
        return items

    def recorded_at_us(self, position: int) -> int | None:
        """Recording time of the first event after ``position`` (for lag in seconds)."""
        found = self.read(position, 1)
        if not found:
            return None
        try:
            return us(self.mapper.to_domain_event(found[0]).timestamp)
        except Exception:  # noqa: BLE001 -- damaged: its fault row says so, lag unknown
            return None

    def wait(self, timeout: float) -> None:
        if self._listen_uri is None:
            time.sleep(min(timeout, self.poll_interval))
            return
        try:
            if self._listener is None:
                import psycopg

                conn = psycopg.connect(self._listen_uri, autocommit=True)
                conn.execute(f'LISTEN "{self.recorder.channel_name}"')
                self._listener = conn
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception:
            log.warning("LISTEN connection failed; polling instead", exc_info=True)
            self._close_listener()
            time.sleep(min(timeout, 0.05))

    def _close_listener(self) -> None:
        if self._listener is not None:
            with suppress(Exception):  # already broken: nothing to close cleanly
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._close_listener()


# ----------------------------------------------------------------------- worker

@dataclass
class Target:
    """One generation of one projection a worker advances; ``follow_live`` tracks swaps."""

    projection: Projection
    generation: int
    follow_live: bool


class Worker:
    """Advances generations of projections together: one read and decode per batch.

    Inside the write transaction each target's position is read under lock and
    only events above it are applied, so a target another process advanced
    meanwhile is never given an event twice.
    """

    def __init__(self, db: Db, source: EventSource,
                 targets: Sequence[tuple[Projection, int | None]],
                 batch: int = DEFAULT_BATCH, *, isolate_faults: bool = False) -> None:
        self.db = db
        self.source = source
        self.batch = batch
        # isolate_faults (the live runner): an event a generation cannot decode or
        # apply stops that generation there (``projections.faults``) and the others
        # go on. Without it (rebuilds, tests) the error is raised.
        self.isolate_faults = isolate_faults
        self.all_targets = [
            Target(p, g if g is not None else ensure_live(db, p).generation, g is None)
            for p, g in targets
        ]
        stopped = faults(db) if isolate_faults else {}
        self.targets = [t for t in self.all_targets
                        if (t.projection.name, t.generation) not in stopped]
        self.consumes = consumed_by([t.projection for t in self.all_targets])
        self._names_of: dict[tuple[str, int], Names] = {}
        # Each target's position as this worker's last committed step left it (its lock
        # saw it there, or further on when another process got ahead): where ``step``
        # reads from next, without a statement to ask. Only a hint: the step checks every
        # position again under lock before applying anything, so a stale one costs a
        # re-read, never an event twice. Dropped whenever it may not hold (a failed or
        # damaged batch, every ``refresh_live``).
        self._after: dict[tuple[str, int], int] = {}

    @property
    def all_stopped(self) -> bool:
        """True when every generation this worker advances stopped at a fault."""
        return bool(self.all_targets) and not self.targets

    def positions(self) -> list[int]:
        # One statement for every target (the table has a row per generation): this runs
        # before each step of the live runner, and a statement per target was the
        # largest part of following a busy log (py-spy: 38% of the runner's time).
        tracked = {(str(name), int(generation)): int(position) for name, generation, position
                   in self.db.all(f"SELECT name, generation, position FROM {TRACKING}")}
        out = []
        for t in self.targets:
            pos = tracked.get((t.projection.name, t.generation))
            if pos is None:
                raise GenerationGoneError(f"{t.projection.name} generation {t.generation} "
                                          "was retired")
            out.append(int(pos))
        return out

    def position(self) -> int:
        return min(self.positions())

    def _low(self) -> int:
        """Where the next step reads from: the lowest target's position, as this worker's
        last step left it when it knows (``_after``), else as stored."""
        after = self._after
        known = [after.get((t.projection.name, t.generation)) for t in self.targets]
        if None in known:
            return self.position()
        return min(known)  # type: ignore[type-var]

    def step(self, stop: int | None = None) -> int:
        """Apply the next batch; the number of log entries consumed (0: nothing new)."""
        if not self.targets:
            return 0
        low = self._low()
        if stop is not None and low >= stop:
            return 0
        started = time.perf_counter()
        notes = _reader(self.source)(low, self.batch, stop)
        if not notes:
            return 0
        return self._consume(low, notes, started)

    def _consume(self, low: int, notes: Sequence[Any], started: float) -> int:
        """Apply ``notes``, the log entries right after position ``low``; the number
        consumed (fewer than given when a damaged event stopped read models)."""
        try:
            items = self.source.decode(notes, self.consumes)
        except DamagedEventError as exc:
            if not self.isolate_faults:
                raise
            return self._stop_at_damaged(low, notes, exc, started)
        self._apply_batch(low, int(notes[-1].id), items, len(notes), started)
        return len(notes)

    def _stop_at_damaged(self, low: int, notes: Sequence[Any], exc: DamagedEventError,
                         started: float) -> int:
        """Apply what precedes the damaged event, then stop every target at it."""
        good = [n for n in notes if int(n.id) < exc.position]
        new_pos = int(good[-1].id) if good else low
        self._after = {}
        with self.db.write():
            if good:
                self._apply_all(low, new_pos, self.source.decode(good, self.consumes), len(good),
                                started)
            met = [t for t in self.targets
                   if lock_generation(self.db, t.projection.name, t.generation) < exc.position]
            for t in met:
                self._stop(t, new_fault(t.projection.name, t.generation, exc.position,
                                        exc.event, f"cannot decode: {exc.reason}"))
        self.targets = [t for t in self.targets if t not in met]
        return len(good)

    def _stop(self, t: Target, fault: Fault) -> None:
        """Inside the write transaction: record why ``t`` stops (its position stays)."""
        record_fault(self.db, fault)
        log.error("read model %s generation %s stopped at position %s (%s): %s",
                  fault.name, fault.generation, fault.position, fault.event, fault.reason)

    def _apply_batch(self, low: int, new_pos: int, items: Sequence[Item], count: int,
                     started: float) -> None:
        """One transaction: the events in (low, new_pos] for every target, and its position."""
        self._after = {}
        try:
            with self.db.write():
                after = self._apply_all(low, new_pos, items, count, started, savepoint=False)
        except _IsolateError:
            # A read model failed on the batch: the transaction was rolled back whole, and
            # the batch is applied again with each read model in a savepoint of its own.
            with self.db.write():
                after = self._apply_all(low, new_pos, items, count, started, isolated=True)
        self._after = after  # committed: the positions are as the step left them
        if self.db.dialect == "sqlite" and any(
                isinstance(e, Customer.PersonalDataErased) for _, e in items):
            # secure_delete zeroes what the redaction freed in the file, but the WAL
            # still holds the pages as they were before it: checkpoint and truncate.
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _apply_all(self, low: int, new_pos: int, items: Sequence[Item], count: int,
                   started: float, *, savepoint: bool = True,
                   isolated: bool = False) -> dict[tuple[str, int], int]:
        """Inside a write transaction: the batch for every target and their positions.

        With faults isolated, all targets are applied together first: under one savepoint
        (``savepoint``), or with none, a failure then raising ``_IsolateError`` for the
        caller to roll the transaction back and call again with ``isolated`` (each target
        in a savepoint of its own). A live step on PostgreSQL is a handful of statements;
        SAVEPOINT and RELEASE were two of them, round trips for a case that never happens
        on a healthy log. Returns each remaining target's position once this commits."""
        elapsed = time.perf_counter() - started
        rate = count / elapsed if elapsed > 0 else None
        classes = {type(e) for _, e in items}  # once per batch, for every target's ``given``
        # Every target's position in one statement (a statement per target was most of a
        # live step's cost while following a busy log: 26 read models, a few events each).
        locked = lock_generations(self.db, [(t.projection.name, t.generation)
                                            for t in self.targets])
        todo: list[tuple[Target, Sequence[Item]]] = []
        after: dict[tuple[str, int], int] = {}
        for t in self.targets:
            key = (t.projection.name, t.generation)
            cur = locked.get(key)
            if cur is None:
                raise GenerationGoneError(f"{t.projection.name} generation {t.generation} "
                                          "was retired")
            if cur < low:
                raise ProjectionError(f"{t.projection.name} went back to {cur}")
            after[key] = max(cur, new_pos)
            if cur >= new_pos:
                continue  # another process got there first
            todo.append((t, given(t.projection,
                                  items if cur == low else [i for i in items if i[0] > cur],
                                  self.consumes, classes)))
        if not self.isolate_faults:
            for t, mine in todo:
                apply_locked(self.db, t.projection, t.generation, mine, new_pos, rate,
                             classes)
            return after
        # All of them together; only when one fails is each applied in a savepoint of its
        # own, to find which (the others' rows are rolled back and applied again).
        if not isolated:
            try:
                with self._savepoint() if savepoint else nullcontext():
                    for t, mine in todo:
                        acted = touched(t.projection, mine, classes)  # as ``apply_locked``
                        if acted:
                            t.projection.apply(self.db, self._names(t), acted)
                    self._track(todo, new_pos, rate)
            except _TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 -- located below, one read model at a time
                log.warning("a read model failed on a batch; applying them one at a time")
                if not savepoint:
                    raise _IsolateError from exc
            else:
                return after
        failed = [t for t, mine in todo if not self._apply_isolated(t, mine, new_pos, rate)]
        self.targets = [t for t in self.targets if t not in failed]
        return after

    def _names(self, t: Target) -> Names:
        key = (t.projection.name, t.generation)
        names = self._names_of.get(key)
        if names is None:
            names = self._names_of[key] = t.projection.names(t.generation)
        return names

    def _track(self, todo: Sequence[tuple[Target, Sequence[Item]]], new_pos: int,
               rate: float | None) -> None:
        """``apply_locked``'s tracking update for every target of ``todo``, in one call
        (one statement on PostgreSQL: 26 pipelined UPDATEs were 26 executions there, a
        large share of a live step's statements while following a busy log)."""
        now = time.time()
        if self.db.dialect == "postgres" and len(todo) > 1:
            events = [len(mine) for _, mine in todo]
            self.db.execute(
                f"UPDATE {TRACKING} AS p SET position=?, events=p.events+v.events, "
                "updated_at=?, last_recorded_us=COALESCE(v.last_us, p.last_recorded_us), "
                "rate=COALESCE(?::double precision, p.rate) "
                "FROM unnest(?::text[], ?::integer[], ?::bigint[], ?::bigint[]) "
                "AS v(name, generation, events, last_us) "
                "WHERE p.name=v.name AND p.generation=v.generation",
                (new_pos, now, rate, [t.projection.name for t, _ in todo],
                 [t.generation for t, _ in todo], events,
                 [us(mine[-1][1].timestamp) if mine else None for _, mine in todo]))
            return
        self.db.executemany(
            f"UPDATE {TRACKING} SET position=?, events=events+?, updated_at=?, "
            "last_recorded_us=COALESCE(?, last_recorded_us), rate=COALESCE(?, rate) "
            "WHERE name=? AND generation=?",
            [(new_pos, len(mine), now, us(mine[-1][1].timestamp) if mine else None, rate,
              t.projection.name, t.generation) for t, mine in todo])

    def _apply_isolated(self, t: Target, items: Sequence[Item], new_pos: int,
                        rate: float | None) -> bool:
        """Apply in a savepoint; on a failure find the event, apply what precedes it and
        stop ``t`` there. False when ``t`` stopped."""
        try:
            with self._savepoint():
                apply_locked(self.db, t.projection, t.generation, items, new_pos, rate)
        except _TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 -- located and recorded below, one event at a time
            log.warning("read model %s failed on a batch; finding the event", t.projection.name)
        else:
            return True
        for position, event in items:
            try:
                with self._savepoint():
                    apply_locked(self.db, t.projection, t.generation, [(position, event)],
                                 position, rate)
            except _TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 -- whatever it is, it stops only this one
                self._stop(t, new_fault(
                    t.projection.name, t.generation, position, _describe_event(event),
                    f"cannot apply: {type(exc).__name__}: {exc}"))
                return False
        apply_locked(self.db, t.projection, t.generation, [], new_pos, rate)  # skipped topics
        return True

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self.db.execute("SAVEPOINT ts_apply")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO SAVEPOINT ts_apply")
            self.db.execute("RELEASE SAVEPOINT ts_apply")
            raise
        self.db.execute("RELEASE SAVEPOINT ts_apply")

    def catch_up(self, stop: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 stopping: threading.Event | None = None) -> int:
        """Advance until the log head (or ``stop``) is reached; entries consumed.

        (Reading ahead in a second thread was measured slower here: decoding
        and row building are both Python and share the interpreter lock.)
        """
        total = 0
        idle = 0
        while not (stopping and stopping.is_set()):
            n = self.step(stop)
            if n == 0:
                target = stop if stop is not None else self.source.head()
                idle += 1
                if self.position() >= target or idle > 3:
                    break
                continue
            idle = 0
            total += n
            if progress:
                progress(self.position())
        return total

    def refresh_live(self) -> None:
        """Follow a rebuild's swap: switch to whatever generation is live now."""
        self._after = {}  # read them again: another process may have moved them
        if not any(t.follow_live for t in self.targets):
            return
        # One statement for all (this runs every half second while following the log;
        # a statement per read model was ~0.25 statements per webhook callback on PG).
        live = {str(name): int(generation) for name, generation
                in self.db.all(f"SELECT name, generation FROM {TRACKING} WHERE live=1")}
        for t in self.targets:
            if t.follow_live:
                generation = live.get(t.projection.name)
                if generation is not None:
                    t.generation = generation

    def follow(self, stopping: threading.Event, idle_wait: float = 0.25) -> None:
        """Catch up, then follow new events until ``stopping`` is set (through the
        source's subscription when it offers one, else by reading in batches)."""
        if getattr(self.source, "subscribes", False):
            self._follow_subscription(stopping, idle_wait)
            return
        last_check = 0.0
        previous = 0
        while not stopping.is_set() and not self.all_stopped:
            try:
                n = self.step()
            except GenerationGoneError:
                self.refresh_live()
                continue
            now = time.monotonic()
            if now - last_check > 0.5:
                self.refresh_live()
                last_check = now
            if n == 0:
                self.source.wait(idle_wait)
            elif previous and n < self.batch:
                # Following a busy log (events in two steps running): let the next ones
                # gather a moment instead of stepping for every few (a step costs
                # statements per read model, its transaction and its savepoints, however
                # few events it carries). The first event after a quiet spell goes at once.
                stopping.wait(FOLLOW_GATHER_S)
            previous = n


    def _follow_subscription(self, stopping: threading.Event, idle_wait: float) -> None:
        """Subscribe after the lowest tracked position and apply what arrives in
        batches. The subscription is started again from the tracked positions when
        they fall behind what it delivered (a rebuild swapped in a generation that
        is behind) or a damaged event stopped some read models mid-batch."""
        while not stopping.is_set() and not self.all_stopped:
            if not self.targets:
                stopping.wait(idle_wait)
                continue
            try:
                at = self.position()
            except GenerationGoneError:
                self.refresh_live()
                continue
            feed = SubscriptionFeed(self.source.subscription(at), self.batch)
            try:
                self._follow_feed(feed, at, stopping, idle_wait)
            except GenerationGoneError:
                self.refresh_live()
            finally:
                feed.close()

    def _follow_feed(self, feed: SubscriptionFeed, at: int, stopping: threading.Event,
                     idle_wait: float) -> None:
        last_check = time.monotonic()
        while not stopping.is_set() and not self.all_stopped:
            now = time.monotonic()
            if now - last_check > 0.5:
                self.refresh_live()
                last_check = now
                if self.targets and self.position() < at:
                    return
            started = time.perf_counter()
            notes = feed.take(self.batch, idle_wait)
            if not notes:
                continue
            if self._consume(at, notes, started) < len(notes):
                return
            at = int(notes[-1].id)


class _IsolateError(Exception):
    """A read model failed on a batch applied without a savepoint: roll back, isolate."""


# A store that is briefly unavailable is not a poisoned event: the runner retries.
_TRANSIENT = (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError,
              ProjectionError)


def describe(notification: Any) -> str:
    """Topic, stream and version of a stored event (the clear columns, never its data)."""
    return (f"{notification.topic} {notification.originator_id} "
            f"v{notification.originator_version}")


def _describe_event(event: Any) -> str:
    return (f"{type(event).__qualname__} {getattr(event, 'originator_id', '?')} "
            f"v{getattr(event, 'originator_version', '?')}")


def iter_batches(source: EventSource, after: int, stop: int, batch: int,
                 consumes: tuple[type, ...] = (Customer.Event,)) -> Iterator[
        tuple[list[Item], int]]:
    """(decoded items, last position) per batch of the log in (after, stop]."""
    pos = after
    while pos < stop:
        notes = _reader(source)(pos, batch, stop)
        if not notes:
            return
        pos = int(notes[-1].id)
        yield source.decode(notes, consumes), pos


def _reader(source: EventSource) -> Callable[[int, int, int | None], Sequence[Any]]:
    """The source's ``read_log`` (any source with a ``read`` will do: tests feed lists)."""
    return getattr(source, "read_log", None) or source.read


def consumed_by(projections: Sequence[Projection]) -> tuple[type, ...]:
    """The event classes any of ``projections`` consumes (one decode serves them all)."""
    return tuple(dict.fromkeys(c for p in projections for c in p.consumes))


def given(projection: Projection, items: Sequence[Item], decoded: tuple[type, ...],
          classes: set[type] | None = None) -> Sequence[Item]:
    """The part of a batch decoded for ``decoded`` that ``projection`` consumes
    (``classes``: the event classes in ``items``, when the caller knows them)."""
    if projection.consumes == decoded:
        return items
    # One isinstance per event class, not per event and projection (it was ~3% of a
    # rebuild of all read models: 15 projections filtering every batch); a batch made
    # only of classes the projection consumes is handed over as it is.
    known = _CONSUMED.setdefault(projection.consumes, {})
    if classes is not None and all(_wanted(known, c, projection.consumes) for c in classes):
        return items
    out = []
    for item in items:
        cls = type(item[1])
        wanted = known.get(cls)
        if wanted is None:
            wanted = known[cls] = issubclass(cls, projection.consumes)
        if wanted:
            out.append(item)
    return out


_CONSUMED: dict[tuple[type, ...], dict[type, bool]] = {}


def touched(projection: Projection, items: Sequence[Item],
            classes: set[type] | None = None) -> Sequence[Item]:
    """The events of ``items`` whose class ``projection`` acts on (``touches``), in order
    (``classes``: the event classes of ``items`` or of a batch it was taken from, when
    the caller knows them: a set per read model per batch was ~2% of a rebuild)."""
    touches = projection.touches
    if touches is None or not items:
        return items
    known = _CONSUMED.setdefault(touches, {})
    present = classes if classes is not None else {type(e) for _, e in items}
    keep = {cls for cls in present if _wanted(known, cls, touches)}
    return [item for item in items if type(item[1]) in keep] if keep else []


def _wanted(known: dict[type, bool], cls: type, consumes: tuple[type, ...]) -> bool:
    wanted = known.get(cls)
    if wanted is None:
        wanted = known[cls] = issubclass(cls, consumes)
    return wanted
