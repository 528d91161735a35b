"""Event recorders: the library's SQLite/PostgreSQL recorders plus a source-key table.

The source-key rows are written in the same transaction as the events, so a
key can never be recorded twice and an event never lacks its key. Plugged in
through the library's ``APPLICATION_RECORDER_TOPIC`` setting.

PostgreSQL saves run without psycopg's pipeline mode. psycopg 3.3.9's pipeline
has two faults this project hit (measured on the embedded PostgreSQL):

- Its send loop (``generators._pipeline_communicate``) stops after a single
  ``PQflush`` once the last command is queued, even when libpq reports unsent
  bytes; it then waits for results the server cannot produce, because the server
  is still waiting for the rest of the query (``ClientRead``). So any save larger
  than what the socket takes at once hangs: ~1 MB on an idle server, much less
  when the server is blocked on the table lock and reads nothing. (psycopg #685.)
- Its prepared-statement cache marks a statement prepared as soon as it queues
  the ``Parse`` of a statement that crossed ``prepare_threshold``, without
  checking the result. The source-key insert runs first, so when it fails on a
  duplicate, the server skips the later ``Parse`` messages of the pipeline, the
  pipelined ``ROLLBACK`` does not clear the cache, and the next save on that
  pooled connection fails with ``prepared statement "_pg3_N" does not exist``.

Without the pipeline each statement is sent whole (libpq flushes until done)
and a failure raises before the next statement is prepared. A save is one
statement: a server-side function (created with the tables) that inserts the
source-key rows, takes the EXCLUSIVE table lock, NOTIFYs and inserts the
events, called in autocommit, so one round trip and one implicit transaction (one
event under one key, every single command, calls its scalar twin: the same steps).
Notification ids stay in commit order: the lock is taken before the insert
and held to the commit, as before.

PostgreSQL recorders retry a lost connection only while the store timeout lasts
(the pool's wait, ``POSTGRES_CONNECT_TIMEOUT``); the library's own recorders
retry ten times whatever each attempt costs, ~10 x the pool wait with the server
down. ``PostgresStoreFactory`` (``PERSISTENCE_MODULE``) selects them.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ConnectionUnavailableError,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import pq
from psycopg.sql import SQL, Identifier

from commands.ports import SOURCE_KEYS_TABLE, KeyRow, SaveLimits

# (source key, seq, event id) — the event is ``stored_events[seq]`` — or
# (source key, seq, event id, index) when one save carries several keys (bulk import).
SourceKeys = Sequence[tuple[str, int, UUID] | tuple[str, int, UUID, int]]


def _key_rows(keys: SourceKeys, stored_events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    rows = []
    for entry in keys:
        key, seq, event_id = entry[0], entry[1], entry[2]
        stored = stored_events[entry[3] if len(entry) > 3 else seq]
        rows.append((key, seq, stored.originator_id, stored.originator_version, event_id))
    return rows


_SQLITE_INSERT_KEY = f"INSERT INTO {SOURCE_KEYS_TABLE} VALUES (?,?,?,?,?)"


class SQLiteKeyedRecorder(SQLiteApplicationRecorder):
    # A SQLite save is rows handed to sqlite3 in one process: no socket, so no pipeline
    # limit. 2,000 events a save (not 500, and ~385 by size) cut a 20k-event bulk
    # import's commits (events and snapshots) from 84 to 14. The byte limit only bounds
    # memory: 2,000 emails of 60 KB would hold ~130 MB of rows (and the write lock) at once.
    save_limits = SaveLimits(events=2_000, bytes=16 * 1024 * 1024)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            (f"CREATE TABLE IF NOT EXISTS {SOURCE_KEYS_TABLE} ("
             "source_key TEXT NOT NULL, seq INTEGER NOT NULL, "
             "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
             "event_id TEXT NOT NULL, PRIMARY KEY (source_key, seq)) WITHOUT ROWID"),
        ]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        keys: SourceKeys = kwargs.get("source_keys") or ()
        if len(stored_events) == 1 and len(keys) == 1:
            return [self._insert_one(stored_events[0], _key_rows(keys, stored_events)[0])]
        return super().insert_events(stored_events, **kwargs)

    def _insert_one(self, s: StoredEvent, key_row: tuple[Any, ...]) -> int:
        """One event under one key (every single command): the same transaction as the
        library's (BEGIN, the event row, its key row, COMMIT) under the pool's writer lock,
        without its layers of context managers and cursor wrappers, a tenth of a SQLite
        command's client CPU (cProfile). A failure rolls back and becomes the library's
        error (``IntegrityError`` for a duplicate key or version).

        The connection is one the pool issued and this recorder keeps (``_writer``), used
        only under the writer lock every writer of the pool takes, so writes stay one at a
        time as with the pool's writer; the pool's ``get_connection`` and
        ``put_connection`` (a semaphore, a condition and the bookkeeping of readers and
        writers each way) were another tenth. The pool closes it with its others. An
        in-memory database (readers and writers mutually exclusive) or a pool without
        the lock takes the pool's way."""
        pool = self.datastore.pool
        lock = getattr(pool, "_writer_lock", None)
        if lock is None or getattr(pool, "_mutually_exclusive_read_write", True):
            return self._insert_one_pooled(s, key_row)
        writer = self._writer
        if writer is None or writer.closed:
            writer = self._keep_a_connection(pool)
        if not lock.acquire(timeout=pool.pool_timeout):
            raise ConnectionUnavailableError("Timed out waiting for return of writer")
        try:
            try:
                return _write_one(writer._sqlite_conn, self.insert_events_statement, s, key_row)
            except sqlite3.Error as exc:
                raise _sqlite_library_error(exc) from exc
        finally:
            lock.release()

    _writer: Any = None
    _keeping = threading.Lock()

    def _keep_a_connection(self, pool: Any) -> Any:
        """A connection from ``pool`` for ``_insert_one`` to keep (in use, closed with the
        pool). Taken BEFORE the writer lock, never under it: the pool's ``get_connection``
        takes its queue's semaphore and then the writer lock, so taking the semaphore
        while holding the writer lock deadlocks with a writer queued there (both waited
        out the pool's timeout: two concurrent first saves of a fresh hub failed)."""
        conn = pool.get_connection()
        with self._keeping:
            kept = self._writer
            if kept is None or kept.closed:
                self._writer = conn
                return conn
        pool.put_connection(conn)  # another thread kept one first
        return kept

    def _insert_one_pooled(self, s: StoredEvent, key_row: tuple[Any, ...]) -> int:
        """``_insert_one`` on the pool's writer connection, taken and given back."""
        pool = self.datastore.pool
        conn = pool.get_connection(is_writer=True)
        try:
            return _write_one(conn._sqlite_conn, self.insert_events_statement, s, key_row)
        except sqlite3.Error as exc:
            raise _sqlite_library_error(exc) from exc
        finally:
            pool.put_connection(conn)

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        keys: SourceKeys = kwargs.get("source_keys") or ()
        if len(stored_events) > 1:
            oids = _oids(stored_events)
            ids = self._insert_many(c, stored_events, oids)
        else:
            ids = super()._insert_events(c, stored_events, **kwargs)
            oids = [_oid(s.originator_id) for s in stored_events]
        if keys:
            rows = []
            for entry in keys:
                place = entry[3] if len(entry) > 3 else entry[1]
                rows.append((entry[0], entry[1], oids[place],
                             stored_events[place].originator_version, str(entry[2])))
            c.executemany(_SQLITE_INSERT_KEY, rows)
        return ids

    def _insert_many(self, c: Any, stored_events: Sequence[StoredEvent],
                     oids: list[str]) -> list[int]:
        """The library's insert (one ``execute`` per event, for its ``lastrowid``) as one
        ``executemany``: a tenth of a bulk import's time went to the per-row calls. The
        rows' ids are the ``len(stored_events)`` before ``last_insert_rowid()``: the table
        has no AUTOINCREMENT, so each insert takes the largest rowid + 1 (SQLite's rowid
        rule below 2**63 - 1), under this transaction's write lock, in the given order.
        ``oids``: the events' stream ids as stored (``_oids``)."""
        c.executemany(self.insert_events_statement, [
            (oid, s.originator_version, s.topic, s.state)
            for oid, s in zip(oids, stored_events, strict=True)
        ])
        c.execute("SELECT last_insert_rowid()")
        last = c.fetchone()[0]
        return list(range(last - len(stored_events) + 1, last + 1))

    def lookup_source_keys(self, keys: list[str]) -> dict[str, list[KeyRow]]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        sql = (
            f"SELECT k.source_key, k.originator_id, k.originator_version, k.event_id, e.rowid "
            f"FROM {SOURCE_KEYS_TABLE} k LEFT JOIN {self.events_table_name} e "
            "ON e.originator_id = k.originator_id AND e.originator_version = k.originator_version "
            f"WHERE k.source_key IN ({marks}) ORDER BY k.source_key, k.seq"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, keys)
            return _group(c.fetchall())

    def select_streams(
        self, originator_ids: Sequence[UUID | str]
    ) -> dict[UUID | str, list[StoredEvent]]:
        """Every event of each stream in one statement (one moment), however many: the ids
        go as one JSON array parameter, each looked up by the primary key."""
        given = {_oid(i): i for i in originator_ids}
        if not given:
            return {}
        sql = (f"SELECT originator_id, originator_version, topic, state "
               f"FROM {self.events_table_name} WHERE originator_id IN "
               "(SELECT value FROM json_each(?)) ORDER BY originator_id, originator_version")
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, (json.dumps(list(given)),))
            rows = c.fetchall()
        out: dict[UUID | str, list[StoredEvent]] = {}
        for oid, version, topic, state in rows:
            originator_id = given[oid]
            out.setdefault(originator_id, []).append(StoredEvent(
                originator_id=originator_id, originator_version=version, topic=topic,
                state=state))
        return out

    def bulk_connection(self) -> sqlite3.Connection:
        """A raw connection for benchmarks that compare against the ceiling."""
        return sqlite3.connect(self.datastore.pool.db_name, uri=True)


F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")
RETRY_WAIT_S = 0.1


def _within_store_timeout(method: F) -> F:
    """Retry ``method`` (the library's, without its own retry) on a lost connection or
    a pool timeout while the datastore's pool timeout lasts, then raise."""
    inner = getattr(method, "__wrapped__", method)

    @functools.wraps(inner)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        datastore: PostgresDatastore = self.datastore
        deadline = time.monotonic() + datastore.pool.timeout
        while True:
            try:
                return inner(self, *args, **kwargs)
            except (InterfaceError, OperationalError):
                if time.monotonic() + RETRY_WAIT_S >= deadline:
                    raise
                time.sleep(RETRY_WAIT_S)

    return call  # type: ignore[return-value]


class BoundedPostgresAggregateRecorder(PostgresAggregateRecorder):
    """The snapshot store, with the bounded retry.

    One snapshot (a save of every ``snapshot_interval``-th event of a customer) is one
    ``INSERT`` of scalar parameters, prepared on a held connection and run through libpq
    as the keyed recorder's one-event call is (``_exec_prepared``): the same row, in one
    autocommitted statement as before. The library's way (the composite type dumped field
    by field in Python, the pool's connection context managers) cost a seventh of a
    PostgreSQL command's client CPU, spread over the commands between snapshots (py-spy).
    Several at once take the library's way."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._insert_one = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "VALUES ($1::{oid_type}, $2::bigint, $3::text, $4::bytea)").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name),
            oid_type=SQL(self.datastore.originator_id_type))
        self._insert_one_name = f"touchstream_{self.events_table_name}_insert_one".encode()
        self._insert_one_sql: bytes | None = None
        self._prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()  # connections
        self._held = held_connections(self.datastore)

    def _insert_once(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        if len(stored_events) != 1:
            _library_insert(self, stored_events, **kwargs)
            return
        e = stored_events[0]
        values = [str(e.originator_id).encode(), b"%d" % e.originator_version,
                  e.topic.encode(), bytes(e.state)]

        def insert(conn: Any) -> None:
            sql = self._insert_one_sql
            if sql is None:
                sql = self._insert_one_sql = self._insert_one.as_bytes(conn)
            _exec_prepared(conn, self._prepared_on, self._insert_one_name, sql, values,
                           _INSERT_ONE_FORMATS, pq.ExecStatus.COMMAND_OK)

        self._held.run(self.datastore, insert)

    insert_events = _within_store_timeout(_insert_once)
    select_events = _within_store_timeout(PostgresAggregateRecorder.select_events)


_library_insert = getattr(PostgresAggregateRecorder.insert_events, "__wrapped__",
                          PostgresAggregateRecorder.insert_events)  # without its own retry


class PostgresKeyedRecorder(PostgresApplicationRecorder):
    # Saves no longer go through psycopg's pipeline (the module docstring), whose hang
    # set the byte limit, and a 5 MB save completes (tests/contract/test_postgres_recorder);
    # the limits are kept until a larger save is measured (it holds the table lock,
    # which every other writer waits on, for longer).
    save_limits = SaveLimits(events=500, bytes=256 * 1024)

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._uuid_ids = self.datastore.originator_id_type == "uuid"
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "source_key text NOT NULL, seq int NOT NULL, "
                "originator_id text NOT NULL, originator_version bigint NOT NULL, "
                "event_id uuid NOT NULL, PRIMARY KEY (source_key, seq))"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(SOURCE_KEYS_TABLE))
        )
        self._insert_keys = SQL(
            "INSERT INTO {schema}.{table} (source_key, seq, originator_id, originator_version, "
            "event_id) SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], %s::bigint[], "
            "%s::uuid[])"  # one statement however many keys (a bulk save carries hundreds)
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(SOURCE_KEYS_TABLE))
        self._select_keys = SQL(
            "SELECT k.source_key, k.originator_id, k.originator_version, k.event_id, "
            "e.notification_id FROM {schema}.{table} k LEFT JOIN {schema}.{events} e "
            # Cast the key's side, not the events' side, so the join can use the
            # events' primary key (a cast on the indexed column scans every stream).
            f"ON e.originator_id = k.originator_id{'::uuid' if self._uuid_ids else ''} "
            "AND e.originator_version = k.originator_version "
            "WHERE k.source_key = ANY(%s) ORDER BY k.source_key, k.seq"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(SOURCE_KEYS_TABLE),
            events=Identifier(self.events_table_name),
        )
        self._select_streams = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(self.datastore.schema),
                 events=Identifier(self.events_table_name))
        self._lock_and_notify = SQL("; ").join(
            [*self.lock_table_statements, SQL("NOTIFY {0}").format(Identifier(self.channel_name))]
        )
        # The whole save as one server-side function, called in autocommit: one round
        # trip (and its implicit transaction) instead of BEGIN, keys, lock+NOTIFY,
        # insert, COMMIT. The order inside is the order above: the key rows first
        # (before the lock, so a concurrent duplicate waits on the key's index entry,
        # then fails), then the EXCLUSIVE table lock held to the commit (notification
        # ids in commit order), NOTIFY, the insert.
        function = Identifier(f"{self.events_table_name}_append"[:63])
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(keys text[], seqs int[], "
            "oids text[], versions bigint[], eids uuid[], events {schema}.{event_type}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
            "IF cardinality(keys) > 0 THEN "
            "INSERT INTO {schema}.{keys_table} (source_key, seq, originator_id, "
            "originator_version, event_id) SELECT * FROM unnest(keys, seqs, oids, versions, eids); "
            "END IF; "
            "PERFORM set_config('lock_timeout', {lock_timeout}, true); "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t (originator_id, originator_version, "
            "topic, state) SELECT originator_id, originator_version, topic, state "
            "FROM unnest(events) RETURNING notification_id; "
            "END; $BODY$"
        ).format(
            schema=Identifier(self.datastore.schema), function=function,
            event_type=Identifier(self.stored_event_type_name),
            keys_table=Identifier(SOURCE_KEYS_TABLE), table=Identifier(self.events_table_name),
            lock_timeout=f"{self.datastore.lock_timeout}s", channel=Identifier(self.channel_name),
        ))
        # The events go as four arrays of scalars in binary (``%b``): bytea raw, no text
        # escaping; the composite array is built on the server, in the given order. As an
        # array of composites psycopg dumped each event field by field in Python (quoting,
        # a regex per field): a third of a bulk import's time on PostgreSQL (cProfile).
        # The key arrays too, when there are keys (an empty list has no element type to
        # send in binary: then text, cast).
        self._append, self._append_no_keys = (SQL(
            "SELECT notification_id FROM {schema}.{function}("
            f"%{k}::text[], %{k}::int[], %{k}::text[], %{k}::bigint[], %{k}::uuid[], "
            "ARRAY(SELECT ROW(o, v, t, s)::{schema}.{event_type} FROM unnest("
            "%b::{oid_type}[], %b::bigint[], %b::text[], %b::bytea[]) WITH ORDINALITY "
            "AS u(o, v, t, s, n) ORDER BY n)) AS notification_id").format(
            schema=Identifier(self.datastore.schema), function=function,
            event_type=Identifier(self.stored_event_type_name),
            oid_type=SQL(self.datastore.originator_id_type))  # "uuid" or "text" (checked)
            for k in "bt")
        # One event under one key (every single command): its own function with scalar
        # parameters, in the same order (key row, lock, NOTIFY, insert). Against the
        # array function above it sends seven parameters, not nine (the key row's
        # stream and version are the event's, ``oid::text`` is ``str(UUID)``), and the
        # server builds no arrays, composite or tuplestore.
        function_one = Identifier(f"{self.events_table_name}_append_one"[:63])
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(p_key text, p_seq int, "
            "p_event_id uuid, p_oid {oid_type}, p_version bigint, p_topic text, p_state bytea) "
            "RETURNS bigint LANGUAGE plpgsql AS $BODY$ DECLARE n bigint; BEGIN "
            "INSERT INTO {schema}.{keys_table} (source_key, seq, originator_id, "
            "originator_version, event_id) VALUES (p_key, p_seq, p_oid::text, p_version, "
            "p_event_id); "
            "PERFORM set_config('lock_timeout', {lock_timeout}, true); "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "VALUES (p_oid, p_version, p_topic, p_state) RETURNING notification_id INTO n; "
            "RETURN n; END; $BODY$"
        ).format(
            schema=Identifier(self.datastore.schema), function=function_one,
            oid_type=SQL(self.datastore.originator_id_type),
            keys_table=Identifier(SOURCE_KEYS_TABLE), table=Identifier(self.events_table_name),
            lock_timeout=f"{self.datastore.lock_timeout}s", channel=Identifier(self.channel_name),
        ))
        # Called as a statement prepared on each pooled connection through libpq itself
        # (``_append_single``): text parameters, the state in binary.
        self._append_one = SQL(
            "SELECT {schema}.{function}($1::text, $2::int, $3::uuid, $4::{oid_type}, "
            "$5::bigint, $6::text, $7::bytea)").format(
            schema=Identifier(self.datastore.schema), function=function_one,
            oid_type=SQL(self.datastore.originator_id_type))
        self._append_one_name = f"touchstream_{self.events_table_name}_append_one".encode()
        self._prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()  # connections
        self._held = held_connections(self.datastore)
        # The statements as bytes, rendered once (a ``Composed`` is rendered again on
        # every execute: identifier quoting per part).
        self._rendered: dict[int, bytes] = {}

    def _sql(self, conn: Any, statement: Any) -> bytes:
        rendered = self._rendered.get(id(statement))
        if rendered is None:
            rendered = self._rendered[id(statement)] = statement.as_bytes(conn)
        return rendered

    def _insert_once(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One transaction, no pipeline (see the module docstring): keys, lock, insert —
        one call of the append function, in one round trip."""
        if stored_events:
            rows = _key_rows(kwargs.get("source_keys") or (), stored_events)
            if len(rows) == 1 and len(stored_events) == 1:
                (key, seq, _, _, event_id), e = rows[0], stored_events[0]
                return [self._append_single((
                    key, seq, event_id,
                    e.originator_id if self._uuid_ids else str(e.originator_id),
                    e.originator_version, e.topic, bytes(e.state)))]
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                statement = self._append if rows else self._append_no_keys
                curs.execute(self._sql(conn, statement), (
                    [r[0] for r in rows], [r[1] for r in rows], [str(r[2]) for r in rows],
                    [r[3] for r in rows], [r[4] for r in rows],
                    [e.originator_id if self._uuid_ids else str(e.originator_id)
                     for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [bytes(e.state) for e in stored_events],
                ))
                return [row["notification_id"] for row in curs.fetchall()]
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            # One round trip for the statements without parameters: the lock is
            # held from here to COMMIT, so every round trip inside it costs throughput.
            curs.execute(self._lock_and_notify, prepare=False)
            curs.execute(
                self.insert_events_statement,
                ([self._pg_event(e) for e in stored_events],),
            )
            return [row["notification_id"] for row in curs.fetchall()]

    def _append_single(self, params: tuple[Any, ...]) -> int:
        """The append-one call on a pooled connection taken and given back directly, as a
        statement prepared on that connection and run through libpq (``PGconn``).

        The datastore's ``get_connection`` (two generator context managers, and the
        connection's own ``__exit__``, a ``commit`` with nothing to commit in autocommit)
        and a dict row per result were a fifth of a command's client CPU (py-spy); then
        psycopg's cursor (query conversion, parameter dumping, its prepare bookkeeping, the
        result's rows) was a third of what was left, ~90 us a command. Libpq's blocking
        call releases the GIL as the cursor's wait does. Then the pool's own ``getconn`` and
        ``putconn`` (locks, statistics, logging: a tenth of what was left) are skipped for
        the connections ``HeldConnections`` keeps. What matters is kept: a pool not
        open yet is opened the library's way, a broken connection goes back to the pool
        to be discarded, and errors become the library's (``IntegrityError`` for a
        duplicate key or version, the retried ``OperationalError`` / ``InterfaceError``
        for a lost server), built from the result as psycopg builds them. A statement
        gone from its connection (nothing here deallocates it) is prepared again, once."""
        key, seq, event_id, oid, version, topic, state = params
        values = [key.encode(), b"%d" % seq, str(event_id).encode(), str(oid).encode(),
                  b"%d" % version, topic.encode(), state]
        result = self._held.run(self.datastore, lambda conn: self._exec_append_one(conn, values))
        return int(result.get_value(0, 0))

    def _exec_append_one(self, conn: Any, values: list[bytes]) -> Any:
        return _exec_prepared(conn, self._prepared_on, self._append_one_name,
                              self._sql(conn, self._append_one), values, _APPEND_ONE_FORMATS,
                              pq.ExecStatus.TUPLES_OK)

    insert_events = _within_store_timeout(_insert_once)
    select_events = _within_store_timeout(PostgresApplicationRecorder.select_events)
    select_notifications = _within_store_timeout(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _within_store_timeout(PostgresApplicationRecorder.max_notification_id)

    def _pg_event(self, e: StoredEvent) -> Any:
        return self.construct_pg_stored_event(
            e.originator_id, e.originator_version, e.topic, e.state
        )

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs first in the transaction, before the table lock: a concurrent
        # duplicate waits on the key's index entry, then fails.
        keys: SourceKeys = kwargs.get("source_keys") or ()
        if keys:
            rows = _key_rows(keys, stored_events)
            curs.execute(self._insert_keys, (
                [r[0] for r in rows], [r[1] for r in rows], [str(r[2]) for r in rows],
                [r[3] for r in rows], [r[4] for r in rows],
            ))

    @_within_store_timeout
    def lookup_source_keys(self, keys: list[str]) -> dict[str, list[KeyRow]]:
        if not keys:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_keys, (keys,))
            rows = [
                (r["source_key"], r["originator_id"], r["originator_version"],
                 str(r["event_id"]), r["notification_id"])
                for r in curs.fetchall()
            ]
        return _group(rows)


    @_within_store_timeout
    def select_streams(
        self, originator_ids: Sequence[UUID | str]
    ) -> dict[UUID | str, list[StoredEvent]]:
        """Every event of each stream in one statement (one snapshot), however many:
        the ids go as one array, each looked up by the primary key."""
        if self._uuid_ids:
            given: dict[Any, UUID | str] = {
                i if isinstance(i, UUID) else UUID(i): i for i in originator_ids}
        else:
            given = {str(i): i for i in originator_ids}
        if not given:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._sql(conn, self._select_streams), (list(given),))
            rows = curs.fetchall()
        out: dict[UUID | str, list[StoredEvent]] = {}
        for row in rows:
            originator_id = given[row["originator_id"]]
            out.setdefault(originator_id, []).append(StoredEvent(
                originator_id=originator_id, originator_version=row["originator_version"],
                topic=row["topic"], state=bytes(row["state"])))
        return out


class PostgresStoreFactory(PostgresFactory):
    """``PERSISTENCE_MODULE`` for PostgreSQL: the keyed recorder and a snapshot store,
    both with the bounded retry."""

    aggregate_recorder_class = BoundedPostgresAggregateRecorder
    application_recorder_class = PostgresKeyedRecorder

    def close(self) -> None:
        self._release_held()
        super().close()

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self._release_held()
        super().__exit__(exc_type, exc_val, exc_tb)

    def _release_held(self) -> None:
        datastore = getattr(self, "datastore", None)  # None: the factory failed to build it
        held = _HELD.pop(datastore, None) if datastore is not None else None
        if held is not None:
            held.release()  # back to the pool first, which then closes them with the rest


class HeldConnections:
    """A few of a pool's connections kept out of it between one-event calls: taking one
    and giving it back is a deque's ``pop`` and ``append``, where the pool's ``getconn`` and
    ``putconn`` (a lock, a condition, statistics and logging each way) were a tenth of a
    command's client CPU (py-spy).

    The pool's rules still hold, because every connection comes from the pool and goes
    back to it: with a transaction or an error on it, or broken (a lost server: the pool
    discards it and opens another), after ``HOLD_S`` (the pool then applies its own
    lifetime), when more than ``KEEP`` are idle, and when the pool closes
    (``PostgresStoreFactory.close``; a call that finds the pool closed releases them too).
    So at most ``KEEP`` of the pool's connections wait here, and a held one is never used
    by two threads at once."""

    KEEP = 2
    HOLD_S = 30.0

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._idle: deque[tuple[Any, float]] = deque()

    def take(self) -> tuple[Any, float]:
        """A connection and when it must go back to the pool (the pool's ``getconn`` when
        none is idle here: its wait, timeout and errors)."""
        try:
            return self._idle.pop()
        except IndexError:
            return self.pool.getconn(), time.monotonic() + self.HOLD_S

    def give(self, conn: Any, until: float) -> None:
        # libpq's transaction status is UNKNOWN on a bad (lost) connection: IDLE is both
        # "no transaction" and "not broken".
        if (conn.pgconn.transaction_status == _IDLE and len(self._idle) < self.KEEP
                and time.monotonic() < until and not self.pool.closed):
            self._idle.append((conn, until))
        else:
            self.pool.putconn(conn)

    def run(self, datastore: Any, call: Callable[[Any], R]) -> R:
        """``call(conn)`` on a held connection, given back after; a pool found closed is
        opened again the library's way first, and psycopg's errors become the library's."""
        if self.pool.closed:
            self.release()
            with datastore.get_connection():
                pass
        try:
            conn, until = self.take()
            try:
                return call(conn)
            finally:
                self.give(conn, until)
        except psycopg.Error as exc:
            raise _library_error(exc) from exc

    def release(self) -> None:
        """Every idle connection back to the pool."""
        while True:
            try:
                conn, _ = self._idle.pop()
            except IndexError:
                return
            self.pool.putconn(conn)


_IDLE = int(pq.TransactionStatus.IDLE)
_HELD: weakref.WeakKeyDictionary[Any, HeldConnections] = weakref.WeakKeyDictionary()


def held_connections(datastore: PostgresDatastore) -> HeldConnections:
    """The datastore's ``HeldConnections`` (one per datastore, shared by its recorders)."""
    held = _HELD.get(datastore)
    if held is None:
        held = _HELD.setdefault(datastore, HeldConnections(datastore.pool))
    return held


# psycopg's errors as the library's, most specific first (as its ``get_connection``).
_LIBRARY_ERRORS: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
)


# The append-one parameters' formats: text, the state (bytea) binary; the same for the
# snapshot insert's four.
_APPEND_ONE_FORMATS = [pq.Format.TEXT] * 6 + [pq.Format.BINARY]
_INSERT_ONE_FORMATS = [pq.Format.TEXT] * 3 + [pq.Format.BINARY]


def _exec_prepared(conn: Any, prepared_on: weakref.WeakSet[Any], name: bytes, sql: bytes,
                   values: list[bytes], formats: list[pq.Format], ok: pq.ExecStatus) -> Any:
    """``sql`` run on ``conn`` as the statement ``name``, prepared there first unless
    ``prepared_on`` holds ``conn``; its libpq result, or its error as psycopg raises it. A
    statement gone from its connection (nothing here deallocates it) is prepared again,
    once."""
    pgconn = conn.pgconn
    for attempt in (1, 2):
        if conn not in prepared_on:
            prepared = pgconn.prepare(name, sql)
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                failed = _result_error(conn, prepared)
                if not isinstance(failed, psycopg.errors.DuplicatePreparedStatement):
                    raise failed
            prepared_on.add(conn)
        result = pgconn.exec_prepared(name, values, formats, 0)
        if result.status == ok:
            return result
        error = _result_error(conn, result)
        if attempt == 1 and isinstance(error, psycopg.errors.InvalidSqlStatementName):
            prepared_on.discard(conn)
            continue
        raise error
    raise AssertionError("unreachable")  # pragma: no cover


def _encoding(conn: Any) -> str:
    return str(conn.info.encoding)


def _result_error(conn: Any, result: Any) -> psycopg.Error:
    """The error of a failed libpq result, as psycopg raises it: a lost server (the
    connection BAD: libpq's blocking call gives a result without a SQLSTATE) is an
    ``OperationalError``, which the store timeout retries and the API answers with a
    503; anything else the class of its SQLSTATE."""
    if conn.pgconn.status == pq.ConnStatus.BAD:
        message = conn.pgconn.error_message.decode("utf-8", "replace") or "connection lost"
        return psycopg.OperationalError(message)
    return psycopg.errors.error_from_result(result, encoding=_encoding(conn))


def _library_error(exc: psycopg.Error) -> PersistenceError:
    for theirs, ours in _LIBRARY_ERRORS:
        if isinstance(exc, theirs):
            return ours(str(exc))
    return PersistenceError(str(exc))


_SQLITE_LIBRARY_ERRORS: tuple[tuple[type[sqlite3.Error], type[PersistenceError]], ...] = (
    (sqlite3.InterfaceError, InterfaceError),
    (sqlite3.DataError, DataError),
    (sqlite3.OperationalError, OperationalError),
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.InternalError, InternalError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.DatabaseError, DatabaseError),
)


def _write_one(raw: sqlite3.Connection, insert_event: str, s: StoredEvent,
               key_row: tuple[Any, ...]) -> int:
    """One event and its key row in one transaction on ``raw``; the event's notification
    id. A failure rolls back and is raised as it came."""
    key, seq, oid, version, event_id = key_row
    raw.execute("BEGIN")
    try:
        notification_id = int(raw.execute(insert_event, (
            _oid(s.originator_id), s.originator_version, s.topic, s.state)).lastrowid)
        raw.execute(_SQLITE_INSERT_KEY, (key, seq, _oid(oid), version, str(event_id)))
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    return notification_id


def _sqlite_library_error(exc: sqlite3.Error) -> PersistenceError:
    """sqlite3's errors as the library's, in the order its ``SQLiteTransaction`` maps them."""
    for theirs, ours in _SQLITE_LIBRARY_ERRORS:
        if isinstance(exc, theirs):
            return ours(exc)
    return PersistenceError(exc)


def _oid(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _oids(stored_events: Sequence[StoredEvent]) -> list[str]:
    """Each event's ``_oid``. A bulk save's events come stream by stream, each stream's
    with one id object, so a run of them takes one hex: the event rows and their key rows
    took two an event (cProfile)."""
    out: list[str] = []
    last: Any = None
    text = ""
    for s in stored_events:
        oid = s.originator_id
        if oid is not last:
            last, text = oid, _oid(oid)
        out.append(text)
    return out


def _group(rows: Sequence[Any]) -> dict[str, list[KeyRow]]:
    out: dict[str, list[KeyRow]] = {}
    for key, oid, version, event_id, position in rows:
        out.setdefault(key, []).append(
            KeyRow(originator_id=_uuid_or_str(oid), version=version,
                   event_id=UUID(str(event_id)), position=position)
        )
    return out


def _uuid_or_str(oid: str) -> Any:
    try:
        return UUID(oid)
    except ValueError:
        return oid
