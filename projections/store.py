"""Where read models live: one SQLite file (and its access-log file) or one PostgreSQL database.

``ReadStore`` hands out plain DB-API connections wrapped in ``Db``, which
speaks one SQL dialect to both: statements are written with ``?``
placeholders and turned into ``%s`` for psycopg. SQL text therefore never
holds a literal ``?`` or ``%`` (patterns travel as parameters).

On SQLite the read audit's access log (``audit_access`` and its seals) lives in a
file of its own beside the read store's, ``audit.db``, ATTACHed to every connection
as the schema ``audit`` (the access-log code names its tables ``audit.<table>``; an
unqualified name finds them too, as SQLite looks in ``main`` first, then in ``audit``;
a ``BEGIN IMMEDIATE`` takes the write lock of both files, so a read-model batch holds
up access-log commits while it writes, as it did when they shared a file). Why a
file of its own: every commit to a WAL file makes every other connection to that
file discard its page cache at its next read, and the access log commits once per
batch of audited reads; in one file with the read models, the loop's timeline and
key-lookup connections re-read ~5 pages per timeline page from the OS (read
syscalls), and none while only the attached file changes (measured).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import pq

Row = tuple[Any, ...]


#: ``INSERT INTO t (cols) VALUES (?,…)`` with no ``ON CONFLICT`` or ``ON CONFLICT … DO
#: NOTHING``: a statement ``executemany`` sends as one set-based insert on PostgreSQL
#: (groups: table, columns, the row's placeholders, the conflict clause). An upsert
#: (``DO UPDATE``) is not one of them: two rows of one statement with the same key fail
#: there, where one statement per row does not.
_SET_INSERT = re.compile(
    r"\s*INSERT\s+INTO\s+(\w+)\s*\(([\w\s,]*)\)\s*VALUES\s*\(([?\s,]*)\)\s*"
    r"((?:ON\s+CONFLICT\s*(?:\([\w\s,]*\))?\s*DO\s+NOTHING\s*)?)", re.IGNORECASE)


class ReadStoreError(Exception):
    """Raised when the read store cannot be used (bad URI, unreachable server)."""


def enable_wal(conn: sqlite3.Connection, timeout_s: float, schema: str = "main") -> None:
    """``PRAGMA journal_mode=WAL`` on ``conn``, tried again while it is refused as locked.

    Two connections that switch a new file to WAL at the same moment each hold the
    shared lock the other needs to make exclusive; SQLite answers one of them "database
    is locked" at once, without its busy handler (waiting could never end). The other's
    switch then completes, and the pragma finds WAL already set: a projection runner's
    first connection failed this way beside a reader's (CI, load 9-11)."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            conn.execute(f"PRAGMA {schema}.journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class Db:
    """One connection, one dialect. Not shared between threads."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self.dialect = dialect
        self.conn = conn
        self._sql: dict[str, str] = {}
        #: statements ``run_prepared`` has prepared on this connection
        self._prepared: set[bytes] = set()
        self._set_based: dict[str, str] = {}  # ``_unnest``'s texts ("": row by row)

    def _q(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        done = self._sql.get(sql)
        if done is None:
            done = self._sql[sql] = sql.replace("?", "%s")
        return done

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self._q(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """``sql`` once per row, in order. On PostgreSQL a plain insert (or one whose
        conflicts do nothing) is sent as one ``INSERT … SELECT … FROM unnest(arrays)``, one
        array per column: the same rows in the same order (so the first of two with one key
        is the one kept, as one statement per row keeps it), one statement and one round
        trip instead of a statement per row (psycopg's pipelined ``executemany``: per row,
        its own Python and a parse, bind and execution on the server; rebuilds of the read
        models writing a row or more per event spent most of their time there). Not a
        multi-row ``VALUES`` list: psycopg scans such a text for placeholders in Python
        every time (~85 ms for 500 rows of 14 columns, measured), where this text is the
        same for every batch."""
        rows = list(rows)
        if not rows:
            return
        if self.dialect == "sqlite":
            self.conn.executemany(sql, rows)
            return
        insert = _SET_INSERT.fullmatch(sql)
        set_based = (self._unnest(insert) if insert is not None
                     and insert.group(3).count("?") == len(insert.group(2).split(","))
                     else None)
        if set_based is None:
            with self.conn.cursor() as cur:
                cur.executemany(self._q(sql), rows)
            return
        self.conn.execute(set_based, [list(c) for c in zip(*rows, strict=True)])

    def _unnest(self, insert: re.Match[str]) -> str | None:
        """``INSERT … SELECT … FROM unnest(column arrays)`` for a matched plain insert, rows
        inserted in the order given (``WITH ORDINALITY``); the arrays are typed from the
        table's own column types, looked up once per table."""
        if insert.string in self._set_based:
            return self._set_based[insert.string] or None
        table, columns, conflict = insert.group(1), insert.group(2), insert.group(4)
        names = [c.strip() for c in columns.split(",")]
        types = dict(self.conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,)).fetchall())
        if any(types[n].endswith("]") for n in names):
            self._set_based[insert.string] = ""
            return None  # unnest would flatten an array column's values: row by row
        arrays = ", ".join(f"%b::{types[n]}[]" for n in names)
        listed = ", ".join(names)
        sql = self._set_based[insert.string] = (
            f"INSERT INTO {table} ({listed}) SELECT {listed} FROM unnest({arrays}) "
            f"WITH ORDINALITY AS u({listed}, ts_row) ORDER BY ts_row {conflict}")
        return sql

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Plain inserts of many rows: ``executemany`` on SQLite, ``COPY`` on PostgreSQL
        (measured ~2x faster there than a pipelined ``executemany``)."""
        rows = list(rows)
        if not rows:
            return
        if self.dialect == "sqlite":
            marks = ",".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
            return
        with self.conn.cursor() as cur, cur.copy(
                f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def run_prepared(self, name: str, sql: str, params: Sequence[str]) -> None:
        """PostgreSQL: run ``sql`` (``$1``, ``$2``… placeholders, text parameters; no rows
        back) as the statement ``name``, prepared on this connection at its first use.

        Straight through libpq: one C call that releases the GIL during the round trip,
        instead of psycopg's query conversion, parameter dumping and statement cache in
        Python (which a statement of over 50 parameters skips, so a multi-row insert paid
        its query conversion every time). A statement gone from the connection is
        prepared again, once, outside a transaction (inside one, that error is raised);
        an error is raised as psycopg raises it."""
        key = name.encode()
        encoding = self.conn.info.encoding
        values = [p.encode(encoding) for p in params]
        pgconn = self.conn.pgconn
        for attempt in (1, 2):
            if key not in self._prepared:
                prepared = pgconn.prepare(key, sql.encode(encoding))
                if prepared.status != pq.ExecStatus.COMMAND_OK:
                    failed = self._error(prepared)
                    if not isinstance(failed, psycopg.errors.DuplicatePreparedStatement):
                        raise failed
                self._prepared.add(key)
            result = pgconn.exec_prepared(key, values)
            if result.status == pq.ExecStatus.COMMAND_OK:
                return
            error = self._error(result)
            # Not inside a transaction: the failure aborted it, so a retry there would
            # only report "current transaction is aborted" instead of this error.
            if (attempt == 1 and isinstance(error, psycopg.errors.InvalidSqlStatementName)
                    and pgconn.transaction_status == pq.TransactionStatus.IDLE):
                self._prepared.discard(key)
                continue
            raise error

    def _error(self, result: Any) -> psycopg.Error:
        # A lost server leaves the connection BAD and a result without a SQLSTATE: the
        # OperationalError psycopg itself would raise.
        if self.conn.pgconn.status == pq.ConnStatus.BAD:
            message = self.conn.pgconn.error_message.decode("utf-8", "replace")
            return psycopg.OperationalError(message or "connection lost")
        return psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    @contextmanager
    def write(self) -> Iterator[Db]:
        """A write transaction; on SQLite it takes the write lock at once (no upgrade deadlock)."""
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                yield self

    @contextmanager
    def snapshot(self) -> Iterator[Db]:
        """A read transaction: every query inside sees one snapshot."""
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN")
            try:
                yield self
            finally:
                self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield self

    def close(self) -> None:
        self.conn.close()


#: the schema name of the access-log file ATTACHed to every SQLite connection
AUDIT_SCHEMA = "audit"
#: its file name, beside the read store's file
AUDIT_FILE = "audit.db"


class ReadStore:
    """Factory of connections to the read-model database named by a URI."""

    def __init__(self, uri: str, *, timeout_s: int = 5, access_log: bool = True) -> None:
        """``access_log=False``: no access-log file on SQLite (a scratch file: its write
        transactions, ``BEGIN IMMEDIATE``, would otherwise take that file's write lock too,
        as every read-store write transaction does, and hold up the access log)."""
        self.uri = uri
        # How long a statement waits on a locked SQLite file, or a connection on an
        # unreachable server, before failing (the API answers 503 then).
        self.timeout_s = timeout_s
        scheme = urlsplit(uri).scheme
        if scheme == "sqlite":
            self.dialect = "sqlite"
            path = unquote(urlsplit(uri).path)
            self.path: Path | None = Path(path.removeprefix("/"))
            if not str(self.path):
                raise ReadStoreError(f"sqlite URI without a file: {uri!r}")
            #: the access log's file (``AUDIT_SCHEMA`` on every connection)
            self.audit_path: Path | None = (self.path.with_name(AUDIT_FILE) if access_log
                                            else None)
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgres"
            self.path = None
            self.audit_path = None
        else:
            raise ReadStoreError(f"read models live in SQLite or PostgreSQL, not {uri!r}")
        self._local = threading.local()

    def connect(self) -> Db:
        """A new connection (the caller closes it)."""
        if self.dialect == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.timeout_s)
            enable_wal(conn, self.timeout_s)
            # Freed pages are zeroed: an erased customer's rows leave no plaintext behind.
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={self.timeout_s * 1000}")
            if self.audit_path is None:
                return Db("sqlite", conn)
            try:
                conn.execute(f"ATTACH DATABASE ? AS {AUDIT_SCHEMA}", (str(self.audit_path),))
                enable_wal(conn, self.timeout_s, AUDIT_SCHEMA)
                conn.execute(f"PRAGMA {AUDIT_SCHEMA}.secure_delete=ON")
                # The event store's level: a record of a read survives a power cut.
                conn.execute(f"PRAGMA {AUDIT_SCHEMA}.synchronous=FULL")
            except BaseException:
                conn.close()
                raise
            return Db("sqlite", conn)
        try:
            conn = psycopg.connect(self.uri, autocommit=True, connect_timeout=self.timeout_s)
        except psycopg.OperationalError as exc:
            raise ReadStoreError(f"cannot reach the read store: {exc}") from exc
        return Db("postgres", conn)

    def local(self) -> Db:
        """This thread's long-lived connection (for read routes)."""
        db: Db | None = getattr(self._local, "db", None)
        if db is not None and db.dialect == "postgres" and db.conn.closed:
            db = None  # broken by a server restart: reconnect instead of failing again
        if db is None:
            db = self._local.db = self.connect()
        return db

    def reset_local(self) -> None:
        """Forget this thread's connection (after an error broke it)."""
        db: Db | None = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with suppress(Exception):  # already broken: nothing to close cleanly
                db.close()
