"""The read audit: who read whose personal data, as a hash chain that is sealed like the log.

One row per read (``audit_access`` in the read store): time, key id, role, route,
customer, request id, client address, and ``hash`` = SHA-256(previous row's hash ‖
this row's canonical bytes), so removing or editing a row breaks every later hash.

The rows are also an append-only log with the recorder's notification API
(``AccessLog``), so the seal and verify code of the event log seals them too
(``SealStore(db, prefix="audit_access")``).

Appending is group-committed (``AccessRecorder``): concurrent ``record`` /
``arecord`` calls share one transaction, and each returns only once its row is
durable (or raises, so the caller can refuse the response).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

from projections.store import Db, ReadStore

TOPIC = "touchstream.access/1"
GENESIS = "0" * 64


class AccessLogError(Exception):
    """Raised when an access record could not be made durable (the read must be refused)."""


@dataclass(frozen=True)
class AccessEntry:
    """One read of a customer's data."""

    at: str  # ISO 8601 UTC
    key_id: str
    role: str
    route: str
    customer_id: str
    request_id: str
    client: str


@dataclass(frozen=True)
class AccessRecord:
    seq: int
    entry: AccessEntry
    previous: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, **asdict(self.entry), "previous": self.previous,
                "hash": self.hash}


def canonical(entry: AccessEntry, previous: str) -> bytes:
    # vars(), not asdict(): the fields are plain strings, and asdict's recursive deep
    # copy was measured at half the cost of an append. The bytes are the same.
    return json.dumps({**vars(entry), "previous": previous}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(entry: AccessEntry, previous: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + canonical(entry, previous)).hexdigest()


_COLUMNS = "seq, at, key_id, role, route, customer_id, request_id, client, previous, hash"


def ensure_schema(db: Db) -> None:
    with db.write():
        db.execute("CREATE TABLE IF NOT EXISTS audit_access (seq BIGINT PRIMARY KEY, "
                   "at TEXT NOT NULL, key_id TEXT NOT NULL, role TEXT NOT NULL, "
                   "route TEXT NOT NULL, customer_id TEXT NOT NULL, request_id TEXT NOT NULL, "
                   "client TEXT NOT NULL, previous TEXT NOT NULL, hash TEXT NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS audit_access_customer "
                   "ON audit_access (customer_id, seq)")
        db.execute("CREATE INDEX IF NOT EXISTS audit_access_key ON audit_access (key_id, seq)")


def _record(row: Sequence[Any]) -> AccessRecord:
    return AccessRecord(int(row[0]), AccessEntry(*row[1:8]), row[8], row[9])


def append(db: Db, entries: Sequence[AccessEntry]) -> list[AccessRecord]:
    """Append ``entries`` in one transaction, chained to the last row."""
    with db.write():
        if db.dialect == "postgres":
            db.execute("LOCK TABLE audit_access IN EXCLUSIVE MODE")
        last = db.one("SELECT seq, hash FROM audit_access ORDER BY seq DESC LIMIT 1")
        seq, previous = (int(last[0]), last[1]) if last else (0, GENESIS)
        out = []
        for entry in entries:
            seq += 1
            digest = chain_hash(entry, previous)
            out.append(AccessRecord(seq, entry, previous, digest))
            previous = digest
        db.executemany(f"INSERT INTO audit_access ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       [(r.seq, *vars(r.entry).values(), r.previous, r.hash) for r in out])
    return out


class AccessRecorder:
    """Durable, group-committed appends from many requests, threads or coroutines.

    One writer thread per recorder does every append: it takes everything queued,
    writes it in one transaction, and only then wakes the callers, so requests that
    arrive while a commit is in flight share the next one. A coroutine waits without
    a thread of its own (``arecord``), so a request on the event loop costs no thread
    hop. On SQLite the writer's connection commits with ``synchronous=FULL`` (the WAL
    is fsynced at every commit, as the event store's are): a record survives a power
    cut, not only a crash of the process.
    """

    #: most entries written in one transaction (a burst is split, nothing is refused)
    MAX_BATCH = 512

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self._db: Db | None = None
        self._queue: list[tuple[AccessEntry, Future[None]]] = []
        self._wake = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closing = False

    def _conn(self) -> Db:
        if self._db is None:
            db = self.store.connect()
            try:
                if db.dialect == "sqlite":
                    db.execute("PRAGMA synchronous=FULL")
                ensure_schema(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def submit(self, entry: AccessEntry) -> Future[None]:
        """Queue ``entry``; the future completes once it is durable (or with
        AccessLogError when it could not be written)."""
        done: Future[None] = Future()
        with self._wake:
            if self._writer is None or not self._writer.is_alive():
                self._closing = False
                self._writer = threading.Thread(target=self._write_queued,
                                                name="access-log-writer", daemon=True)
                self._writer.start()
            self._queue.append((entry, done))
            self._wake.notify()
        return done

    def record(self, entry: AccessEntry) -> None:
        """Return once ``entry`` is durable; AccessLogError if it could not be written."""
        self.submit(entry).result()

    async def arecord(self, entry: AccessEntry) -> None:
        """``record`` for a coroutine: the event loop keeps serving while it waits."""
        await asyncio.wrap_future(self.submit(entry))

    def _write_queued(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
            try:
                append(self._conn(), [entry for entry, _ in batch])
            except Exception as exc:  # noqa: BLE001 — handed to every waiter; the next batch reconnects
                self._reset()
                failed = AccessLogError(f"the access record could not be written: {exc}")
                for _, done in batch:
                    done.set_exception(failed)
                continue
            for _, done in batch:
                done.set_result(None)

    def _reset(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with suppress(Exception):  # already broken: nothing to close cleanly
                db.close()

    def close(self) -> None:
        """Write what is queued, stop the writer, close the connection."""
        with self._wake:
            writer, self._closing = self._writer, True
            self._wake.notify()
        if writer is not None:
            writer.join()
        with self._wake:
            self._writer = None
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
    sql = (f"SELECT {_COLUMNS} FROM audit_access"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq LIMIT ?")
    return [_record(r) for r in db.all(sql, (*params, limit))]


def verify_chain(db: Db) -> list[str]:
    """Problems in the chain (empty when intact): each names the first bad sequence number."""
    problems: list[str] = []
    previous, expected_seq = GENESIS, 1
    for row in db.execute(f"SELECT {_COLUMNS} FROM audit_access ORDER BY seq"):
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
        sql = f"SELECT {_COLUMNS} FROM audit_access WHERE seq {op} ?"
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
        found = self.db.scalar("SELECT MAX(seq) FROM audit_access")
        return None if found is None else int(found)
