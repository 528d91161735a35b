"""The read audit: who read whose personal data, as a hash chain that is sealed like the log.

One row per read (``audit_access`` in the read store; on SQLite in a file of its own,
``audit.db``, attached to every read-store connection: ``projections/store.py``): time,
key id, role, route, customer, request id, client address, and ``hash`` =
SHA-256(previous row's hash ‖ this row's canonical bytes), so removing or editing a row
breaks every later hash.

The rows are also an append-only log with the recorder's notification API
(``AccessLog``), so the seal and verify code of the event log seals them too
(``SealStore(db, prefix=seal_prefix(db))``).

Appending is group-committed (``AccessRecorder``): concurrent ``record`` /
``arecord`` calls share one transaction, and each returns only once its row is
durable (or raises, so the caller can refuse the response).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, NamedTuple

import orjson

from projections.store import AUDIT_SCHEMA, Db, ReadStore
from replays.audit.group_commit import GroupCommit, GroupCommitTimeout

TOPIC = "touchstream.access/1"
GENESIS = "0" * 64


class AccessLogError(Exception):
    """Raised when an access record could not be made durable (the read must be refused)."""


class AccessEntry(NamedTuple):
    """One read of a customer's data.

    A named tuple, not a frozen dataclass: one is made per audited request on the event
    loop and its fields are read by position on the writer, and a dataclass's
    ``object.__setattr__`` per field was a measurable part of the record's cost."""

    at: str  # ISO 8601 UTC
    key_id: str
    role: str
    route: str
    customer_id: str
    request_id: str
    client: str


class AccessRecord(NamedTuple):
    seq: int
    entry: AccessEntry
    previous: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.entry._asdict(), "previous": self.previous,
                "hash": self.hash}


def canonical(entry: AccessEntry, previous: str) -> bytes:
    """The record's bytes under its hash: ``json.dumps({**fields, "previous": previous},
    sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8, byte for byte
    (a unit test holds them equal), written out in the keys' sorted order with the
    encoder's own string escaping: a third of the cost of building and sorting a dict
    per record."""
    at, key_id, role, route, customer_id, request_id, client = entry
    q = encode_basestring
    return (f'{{"at":{q(at)},"client":{q(client)},"customer_id":{q(customer_id)},'
            f'"key_id":{q(key_id)},"previous":{q(previous)},"request_id":{q(request_id)},'
            f'"role":{q(role)},"route":{q(route)}}}').encode()


def chain_hash(entry: AccessEntry, previous: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + canonical(entry, previous)).hexdigest()


_COLUMNS = "seq, at, key_id, role, route, customer_id, request_id, client, previous, hash"


#: the access log's seal tables (``SealStore``) are named ``<SEAL_PREFIX>_seals`` etc.
SEAL_PREFIX = "audit_access"
#: the tables that make up the access log (on SQLite all in the ``audit`` file)
TABLES = ("audit_access", *(f"{SEAL_PREFIX}_{t}" for t in ("seals", "leaves", "nodes",
                                                          "verified")))


#: the access records' table by dialect; on SQLite schema-qualified, so that nothing but
#: ``move_into_audit_file`` ever touches a table of that name in ``read.db`` (an older
#: process still writing there is then caught by the move, never written into)
_TABLE = {"sqlite": f"{AUDIT_SCHEMA}.audit_access", "postgres": "audit_access"}


def seal_prefix(db: Db) -> str:
    """The prefix of the access log's seal tables on ``db``: schema-qualified on SQLite,
    so that ``SealStore`` creates them in the access-log file."""
    return f"{AUDIT_SCHEMA}.{SEAL_PREFIX}" if db.dialect == "sqlite" else SEAL_PREFIX


def ensure_schema(db: Db) -> None:
    """Create the access log's table if missing; on SQLite, first move an access log
    still kept in the read store's own file (the layout before ``audit.db``)."""
    if db.dialect == "sqlite":
        move_into_audit_file(db)
    table = _TABLE[db.dialect]
    with db.write():
        if db.dialect == "postgres":
            # Two processes (uvicorn workers) creating the table at once race in
            # PostgreSQL's catalog even with IF NOT EXISTS (a unique violation on
            # pg_type: their first reads were refused with 503): one at a time.
            db.execute("SELECT pg_advisory_xact_lock(hashtext('audit_access'))")
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (seq BIGINT PRIMARY KEY, "
                   "at TEXT NOT NULL, key_id TEXT NOT NULL, role TEXT NOT NULL, "
                   "route TEXT NOT NULL, customer_id TEXT NOT NULL, request_id TEXT NOT NULL, "
                   "client TEXT NOT NULL, previous TEXT NOT NULL, hash TEXT NOT NULL)")
        # An index's schema is its table's: the name is qualified, the table is not.
        index = table.removesuffix("audit_access")
        db.execute(f"CREATE INDEX IF NOT EXISTS {index}audit_access_customer "
                   "ON audit_access (customer_id, seq)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {index}audit_access_key "
                   "ON audit_access (key_id, seq)")


def _in_main(db: Db) -> list[str]:
    marks = ",".join("?" * len(TABLES))
    found = {r[0] for r in db.all("SELECT name FROM main.sqlite_master WHERE type='table' "
                                  f"AND name IN ({marks})", TABLES)}
    return [t for t in TABLES if t in found]


def move_into_audit_file(db: Db) -> list[str]:
    """Move access-log tables found in the read store's own file (``main``) into the
    access-log file (``audit``); returns the tables moved (none: nothing to do).

    Two steps, each one transaction on one file, so a kill at any point loses nothing
    and the next open finishes the move:

    1. copy: each table made in ``audit`` (its own DDL from ``main``) and every row of
       ``main``'s copied in (``INSERT OR IGNORE``: a copy redone after a kill adds
       nothing); committed with ``synchronous=FULL`` on ``audit`` before step 2;
    2. drop: under the write lock of both files, each ``main`` table is dropped only if
       every one of its rows is in ``audit``'s, byte for byte (else AccessLogError and
       nothing dropped: two different logs are never merged).
    """
    moving = _in_main(db)
    if not moving:
        return []
    with db.write():
        for name in _in_main(db):
            ddl = db.scalar("SELECT sql FROM main.sqlite_master WHERE type='table' AND name=?",
                            (name,))
            rest = ddl.partition("(")[2]
            if not db.scalar(f"SELECT COUNT(*) FROM {AUDIT_SCHEMA}.sqlite_master "
                             "WHERE type='table' AND name=?", (name,)):
                db.execute(f"CREATE TABLE {AUDIT_SCHEMA}.{name} (" + rest)
            columns = _columns(db, name)
            db.execute(f"INSERT OR IGNORE INTO {AUDIT_SCHEMA}.{name} ({columns}) "
                       f"SELECT {columns} FROM main.{name}")
    with db.write():
        for name in _in_main(db):
            columns = _columns(db, name)
            missing = db.scalar(f"SELECT COUNT(*) FROM (SELECT {columns} FROM main.{name} "
                                f"EXCEPT SELECT {columns} FROM {AUDIT_SCHEMA}.{name})")
            if missing:
                raise AccessLogError(
                    f"{missing} rows of {name} in the read store's file differ from those in "
                    f"the access-log file ({AUDIT_SCHEMA}); nothing was moved or dropped")
            db.execute(f"DROP TABLE main.{name}")
    return moving


def _columns(db: Db, name: str) -> str:
    return ", ".join(r[1] for r in db.all(f"PRAGMA main.table_info({name})"))


def _record(row: Sequence[Any]) -> AccessRecord:
    return AccessRecord(int(row[0]), AccessEntry(*row[1:8]), row[8], row[9])


Head = tuple[int, str]  # (last seq, its hash)


def head(db: Db) -> Head:
    """The last record's sequence number and hash (0 and the genesis hash when empty)."""
    last = db.one(f"SELECT seq, hash FROM {_TABLE[db.dialect]} ORDER BY seq DESC LIMIT 1")
    return (int(last[0]), last[1]) if last else (0, GENESIS)


def chained(entries: Sequence[AccessEntry], after: Head) -> list[AccessRecord]:
    """``entries`` as the records that follow ``after`` in the chain."""
    seq, previous = after
    out = []
    for entry in entries:
        seq += 1
        digest = chain_hash(entry, previous)
        out.append(AccessRecord(seq, entry, previous, digest))
        previous = digest
    return out


#: PostgreSQL: a batch is one parameter, a JSON array of rows, so the statement is the
#: same text for every batch size and is prepared once per connection. As a multi-row
#: VALUES of 10 parameters a row, psycopg converted the query and dumped every value in
#: Python at each batch (over 50 parameters it caches no conversion, and each batch size
#: was another statement to prepare): 65-70 us of the writer's CPU a record at 16 or 48
#: a batch, against 18 and 15 us this way (hashing included). ``jsonb``, not ``json``: the
#: server parses the array once, where ``json``'s ``->>`` parses a row again for each
#: field (the server's CPU a record 33 -> 24 us at 16, 31 -> 20 at 48; the multi-row
#: VALUES took 28 and 20).
_PG_INSERT = (f"INSERT INTO audit_access ({_COLUMNS}) SELECT (r->>0)::bigint, "
              + ", ".join(f"r->>{k}" for k in range(1, 10))
              + " FROM jsonb_array_elements($1::jsonb) AS r")


def _insert(db: Db, records: Sequence[AccessRecord]) -> None:
    if db.dialect == "postgres":
        rows = [(r.seq, *r.entry, r.previous, r.hash) for r in records]
        db.run_prepared("touchstream_audit_append", _PG_INSERT, [orjson.dumps(rows).decode()])
        return
    # SQLite: one multi-row statement (MAX_BATCH rows: 5,120 parameters, under SQLite's
    # 32,766): one step, which releases and retakes the GIL once (a writer thread waits
    # up to the switch interval for each retake while the event loop is busy).
    db.execute(f"INSERT INTO {_TABLE[db.dialect]} ({_COLUMNS}) VALUES "
               + ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * len(records)),
               [v for r in records for v in (r.seq, *r.entry, r.previous, r.hash)])


def append(db: Db, entries: Sequence[AccessEntry], after: Head | None = None
           ) -> list[AccessRecord]:
    """Append ``entries`` (at most ``AccessRecorder.MAX_BATCH``) atomically, chained to the
    last row.

    ``after`` is the head the caller believes is last: the rows then go in as one
    statement, its own transaction on the autocommit connection (no BEGIN/COMMIT
    round trips). If another writer appended meanwhile, its sequence number is taken
    (primary key), nothing is written, and the append is redone from the real head.
    """
    if after is not None:
        out = chained(entries, after)
        try:
            _insert(db, out)
            return out
        except Exception:  # a taken sequence number, or a real refusal: the head tells
            if _head_now(db) == after:  # nobody else appended: a real refusal
                raise
    with db.write():  # the head read and the insert under the table's write lock
        if db.dialect == "postgres":
            db.execute("LOCK TABLE audit_access IN EXCLUSIVE MODE")
        out = chained(entries, head(db))
        _insert(db, out)
    return out


def _head_now(db: Db) -> Head:
    with db.snapshot():
        return head(db)


class AccessRecorder:
    """Durable, group-committed appends from many requests, threads or coroutines.

    One writer thread (``GroupCommit``) writes everything queued in one transaction
    and only then answers the callers, so requests that arrive while a commit is in
    flight share the next one. ``arecord`` waits on the event loop without a thread
    of its own. On SQLite the access-log file commits with ``synchronous=FULL``
    (the WAL is fsynced at every commit, as the event store's are): a record survives
    a power cut, not only a crash of the process. The writer remembers the chain's
    head between batches (one statement less per commit); another process appending
    meanwhile (a CLI read) is caught by the sequence number's primary key.

    A record not durable within ``timeout_s`` raises AccessLogError (the read is
    refused); it may still be written later — a record of a read that was not
    shown, never the reverse.

    With ``process``, ``arecord`` goes instead to a writer process of the calling
    event loop (``replays.audit.access_writer``: the loop sends and reads, no thread
    shares its GIL); ``record`` still uses the writer thread. Both chain into one log.
    """

    #: most entries written in one transaction (a burst is split, nothing is refused)
    MAX_BATCH = 512
    #: a loop hands its records to the writer once this many are queued (or at the end
    #: of its turn). 16, not GroupCommit's 8: fewer commits, each an fsync (and, while
    #: the access log shared ``read.db``, a reset of the page cache of every other
    #: connection to it; it has its own file now). Paired runs of ``bench timeline``'s
    #: servers: the writer's CPU a page 76-83 -> 57-59 us.
    HAND_OVER_AT = 16

    def __init__(self, store: ReadStore, *, timeout_s: float | None = None,
                 process: bool = False) -> None:
        self.store = store
        #: ``arecord`` writes through a writer process per event loop
        #: (``replays.audit.access_writer``), ``record`` through the writer thread
        self.process = process
        self._channels: dict[Any, Any] = {}
        self._channels_lock = threading.Lock()
        self._timeout_s = float(store.timeout_s) if timeout_s is None else timeout_s
        self._db: Db | None = None
        self._head: Head | None = None
        self._commit: GroupCommit[AccessEntry, None] = GroupCommit(
            self._append, name="access-log-writer", max_batch=self.MAX_BATCH,
            timeout_s=self._timeout_s, on_error=lambda _: self._reset(),
            hand_over_at=self.HAND_OVER_AT)

    def _conn(self) -> Db:
        if self._db is None:
            # On SQLite its writes go to the access-log file, which every read-store
            # connection opens with synchronous=FULL (``ReadStore.connect``).
            db = self.store.connect()
            try:
                ensure_schema(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _append(self, entries: list[AccessEntry]) -> list[None]:
        written = append(self._conn(), entries, after=self._head)
        self._head = (written[-1].seq, written[-1].hash)
        return [None] * len(written)

    def record(self, entry: AccessEntry) -> None:
        """Return once ``entry`` is durable; AccessLogError if it could not be written."""
        try:
            self._commit.wait(entry)
        except GroupCommitTimeout as exc:
            raise AccessLogError(f"the access record was not written in time: {exc}") from exc
        except Exception as exc:
            raise AccessLogError(f"the access record could not be written: {exc}") from exc

    async def arecord(self, entry: AccessEntry) -> None:
        """``record`` for a coroutine: the event loop keeps serving while it waits."""
        try:
            await (self._channel().submit(tuple(entry)) if self.process
                   else self._commit.future(entry))
        except GroupCommitTimeout as exc:
            raise AccessLogError(f"the access record was not written in time: {exc}") from exc
        except Exception as exc:
            raise AccessLogError(f"the access record could not be written: {exc}") from exc

    def _channel(self) -> Any:
        """This event loop's channel to its writer process (a new one if it has none, or
        if its writer stopped); channels of loops that have closed are closed."""
        from replays.audit.access_writer import Channel

        loop = asyncio.get_running_loop()
        channel = self._channels.get(loop)
        if channel is not None and channel.alive:
            return channel
        self.close_closed_loops()
        with self._channels_lock:  # loops of other threads may be making theirs
            stopped = self._channels.pop(loop, None)
            channel = self._channels[loop] = Channel(
                loop, self.store.uri, timeout_s=self._timeout_s, max_batch=self.MAX_BATCH,
                hand_over_at=self.HAND_OVER_AT)
        if stopped is not None:
            stopped.close(timeout_s=5)
        return channel

    def close_closed_loops(self) -> None:
        """Stop the writer processes of event loops that have closed (a finished
        ``asyncio.run``, a test client's loop): each would otherwise wait for its socket
        to close until this process exits."""
        with self._channels_lock:
            stale = [self._channels.pop(k) for k in list(self._channels) if k.is_closed()]
        for channel in stale:
            channel.close(timeout_s=5)

    def _reset(self) -> None:
        db, self._db, self._head = self._db, None, None
        if db is not None:
            with suppress(Exception):  # already broken: nothing to close cleanly
                db.close()

    def close(self) -> None:
        """Write what is queued, stop the writers, close the connection."""
        with self._channels_lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()
        self._commit.close()
        self._reset()


def records(db: Db, *, customer_id: str | None = None, key_id: str | None = None,
            since: str | None = None, limit: int = 1000) -> list[AccessRecord]:
    """Access records, oldest first, for one customer or one key, from ``since``."""
    where, params = [], []
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if key_id is not None:
        where.append("key_id = ?")
        params.append(key_id)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    sql = (f"SELECT {_COLUMNS} FROM {_TABLE[db.dialect]}"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq LIMIT ?")
    return [_record(r) for r in db.all(sql, (*params, limit))]


def verify_chain(db: Db) -> list[str]:
    """Problems in the chain (empty when intact): each names the first bad sequence number."""
    problems: list[str] = []
    previous, expected_seq = GENESIS, 1
    for row in db.execute(f"SELECT {_COLUMNS} FROM {_TABLE[db.dialect]} ORDER BY seq"):
        rec = _record(row)
        if rec.seq != expected_seq:
            problems.append(f"access records {expected_seq}..{rec.seq - 1} are missing")
        if rec.previous != previous or rec.hash != chain_hash(rec.entry, rec.previous):
            problems.append(f"access record {rec.seq} was altered or its predecessor removed")
        previous, expected_seq = rec.hash, rec.seq + 1
        if len(problems) >= 20:
            break
    return problems


@dataclass(frozen=True)
class _Notification:
    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


class AccessLog:
    """The access rows through the recorder notification API, for sealing and verifying."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *,
                             inclusive_of_start: bool = True) -> Sequence[Any]:
        low = 0 if start is None else start
        op = ">=" if inclusive_of_start else ">"
        sql = f"SELECT {_COLUMNS} FROM {_TABLE[self.db.dialect]} WHERE seq {op} ?"
        params: list[Any] = [low]
        if stop is not None:
            sql += " AND seq <= ?"
            params.append(stop)
        rows = self.db.all(sql + " ORDER BY seq LIMIT ?", (*params, limit))
        return [self._notification(_record(r)) for r in rows]

    @staticmethod
    def _notification(rec: AccessRecord) -> _Notification:
        return _Notification(rec.seq, rec.entry.customer_id, rec.seq, TOPIC,
                             canonical(rec.entry, rec.previous) + rec.hash.encode("ascii"))

    def max_notification_id(self) -> int | None:
        found = self.db.scalar(f"SELECT MAX(seq) FROM {_TABLE[self.db.dialect]}")
        return None if found is None else int(found)
