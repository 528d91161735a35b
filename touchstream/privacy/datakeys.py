"""Per-subject data keys, wrapped by a master key, kept beside the events.

One row per data subject (a customer): its 256-bit data key, wrapped with
AES-256-GCM under the master key (authenticated data binds the wrapped key to
its subject, so a wrapped key copied onto another row does not unwrap).
Erasure overwrites the wrapped key with NULL and stamps ``erased_at``; the row
stays so that a later read can tell "erased" from "never had a key" and no
code path can quietly create a fresh key for an erased subject.

SQLite: the table lives in the events file; the connection runs with
``secure_delete`` so the overwritten key's bytes are zeroed, and erasure
checkpoints the WAL (TRUNCATE) so no old page image keeps it either.
PostgreSQL: the table lives in the events database; an erasure is followed by
a ``VACUUM`` of the table so the dead tuple holding the old key is reclaimed.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
MASTER_KEY_FILE = "master.key"
CACHE_SIZE = 10_000
IDS_SUBJECT = "__ids__"
# A cached key is re-checked against the store after this long, so a process that
# did not itself erase a subject stops using the key within this bound.
CACHE_TTL_S = 30.0
# Subjects per statement in ``prepare_for_write`` (well under SQLite's variable limit).
PREPARE_CHUNK = 500


class PrivacyError(Exception):
    """Base of the privacy adapter's errors."""


class SubjectErasedError(PrivacyError):
    """Raised when a data subject's key was destroyed (its personal data was erased)."""


class DataKeyMissingError(PrivacyError):
    """Raised when an encrypted record names a subject that never had a key (a damaged store)."""


class MasterKeyError(PrivacyError):
    """Raised when the master key is malformed or does not unwrap the stored data keys."""


def load_master_key(data_dir: Path, configured: str | None) -> bytes:
    """The master key: ``TOUCHSTREAM_MASTER_KEY`` (urlsafe base64 of 32 bytes) if set,
    else ``<data>/master.key``, generated on first use with mode 0600."""
    if configured:
        return _decode_master(configured, "TOUCHSTREAM_MASTER_KEY")
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        token = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently: read theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    return _decode_master(path.read_text().strip(), str(path))


def _decode_master(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except ValueError as exc:
        raise MasterKeyError(f"{where}: not base64") from exc
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{where}: a master key is 32 bytes, got {len(key)}")
    return key


def new_master_key() -> str:
    """A fresh master key in the form ``TOUCHSTREAM_MASTER_KEY`` takes."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def wrap(master: bytes, subject: str, key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, key, b"touchstream-dk|" + subject.encode())


def unwrap(master: bytes, subject: str, wrapped: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"touchstream-dk|" + subject.encode()
        )
    except InvalidTag as exc:
        raise MasterKeyError(
            f"the data key of {subject} does not unwrap with this master key "
            "(wrong TOUCHSTREAM_MASTER_KEY / master.key, or a damaged key row)"
        ) from exc


class KeyTable(Protocol):
    """The storage a :class:`DataKeys` uses: rows of (subject, wrapped key or None)."""

    def get(self, subject: str) -> tuple[bool, bytes | None]:
        """(row exists, wrapped key or None when erased)."""

    def insert(self, subject: str, wrapped: bytes, now: float) -> None:
        """Insert a key row unless the subject already has one."""

    def get_many(self, subjects: Sequence[str]) -> dict[str, bytes | None]:
        """The rows of those subjects that exist: subject → wrapped key (None when erased)."""

    def insert_many(self, rows: Sequence[tuple[str, bytes]], now: float) -> None:
        """``insert`` of each row, all in one transaction (one durable commit)."""

    def erase(self, subject: str, now: float) -> bool:
        """Destroy the subject's key; True if a key was destroyed now."""

    def rows(self) -> list[tuple[str, bytes]]:
        """Every live (subject, wrapped key)."""

    def erased(self) -> list[str]:
        """Every subject whose key was destroyed."""

    def replace(self, rows: list[tuple[str, bytes]]) -> None:
        """Overwrite the wrapped keys of the given subjects in one transaction."""

    def close(self) -> None: ...


class _Cached(NamedTuple):
    key: bytes
    cipher: AESGCM  # built once per key: constructing one costs as much as a small encrypt
    at: float


class DataKeys:
    """Data keys by subject, with a bounded in-memory cache (short TTL).

    The cache is ordered by when a key was last fetched from the store (every
    ``CACHE_TTL_S`` at most for a key in use), and the oldest goes first when it
    is full: the ciphers' hot path is a dict lookup without the lock (a dict
    read is atomic), so a hit does not reorder it."""

    def __init__(self, table: KeyTable, master: bytes,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self._master = master
        self._clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        self._erased: set[str] = set()  # subjects whose key was destroyed, as last read
        self._erased_at: float | None = None
        self._destroyed: set[str] = set()  # destroyed by this process
        # The key of the keyed ids (stream ids, stored source keys, claims): random,
        # kept like a data key (so a master rotation rewraps it and ids never change).
        self.id_secret = self._for_write(IDS_SUBJECT).key

    def key_for_write(self, subject: str) -> bytes:
        """The subject's key, created on its first event; an erased subject has none."""
        if subject == IDS_SUBJECT:
            return self.id_secret
        return self._for_write(subject).key

    def key_for_read(self, subject: str) -> bytes:
        """The subject's key; ``SubjectErasedError`` once erased, never a new key."""
        if subject == IDS_SUBJECT:
            return self.id_secret
        return self._for_read(subject).key

    def cipher_for_write(self, subject: str) -> AESGCM:
        """``key_for_write`` as a ready AES-GCM cipher (cached with the key)."""
        hit = self._cache.get(subject)  # the hot path of every sealed event: no lock
        if hit is not None and self._clock() - hit.at <= CACHE_TTL_S:
            return hit.cipher
        return self._for_write(subject).cipher

    def cipher_for_read(self, subject: str) -> AESGCM:
        """``key_for_read`` as a ready AES-GCM cipher (cached with the key)."""
        hit = self._cache.get(subject)
        if hit is not None and self._clock() - hit.at <= CACHE_TTL_S:
            return hit.cipher
        return self._for_read(subject).cipher

    def _for_write(self, subject: str) -> _Cached:
        if (hit := self._cached(subject)) is not None:
            return hit
        exists, wrapped = self.table.get(subject)
        if not exists:
            self.table.insert(subject, wrap(self._master, subject, os.urandom(KEY_BYTES)),
                              time.time())
            exists, wrapped = self.table.get(subject)
        return self._remember(subject, wrapped)

    def prepare_for_write(self, subjects: Iterable[str]) -> None:
        """Make sure every subject has a key, creating the missing ones in one transaction:
        a batch writer's one durable commit instead of one per new subject (the email
        channel's blobs, a key each, spent ~30% of an ingest in those commits). An erased
        subject is left as it is: ``key_for_write`` refuses it as before."""
        wanted = [s for s in dict.fromkeys(subjects)
                  if s != IDS_SUBJECT and self._cached(s) is None]
        for start in range(0, len(wanted), PREPARE_CHUNK):
            chunk = wanted[start:start + PREPARE_CHUNK]
            found = self.table.get_many(chunk)
            missing = [s for s in chunk if s not in found]
            if missing:
                self.table.insert_many(
                    [(s, wrap(self._master, s, os.urandom(KEY_BYTES))) for s in missing],
                    time.time())
                found.update(self.table.get_many(missing))  # a concurrent writer's key wins
            for subject, wrapped in found.items():
                if wrapped is not None:
                    self._remember(subject, wrapped)

    def _for_read(self, subject: str) -> _Cached:
        if (hit := self._cached(subject)) is not None:
            return hit
        exists, wrapped = self.table.get(subject)
        if not exists:
            raise DataKeyMissingError(f"no data key for {subject}: the key store is damaged")
        return self._remember(subject, wrapped)

    def is_erased(self, subject: str) -> bool:
        """True once the subject's key was destroyed. Answered from the set of erased
        subjects, read again when older than ``CACHE_TTL_S`` (this process's own erasures
        join it at once): the bound a cached key already has. A blob is addressed two or
        three times per message, each a key-table round trip otherwise (a third of a
        PostgreSQL email ingest). Acting on a stale "not erased" fails safe: sealing
        under an erased key raises ``SubjectErasedError``, it never makes a new key."""
        now = self._clock()
        if self._erased_at is None or now - self._erased_at > CACHE_TTL_S:
            erased = set(self.table.erased())
            with self._lock:
                self._erased, self._erased_at = erased, now
        return subject in self._erased or subject in self._destroyed

    def destroy(self, subject: str) -> bool:
        """Destroy the subject's key (idempotent); True if it was destroyed by this call."""
        self.forget(subject)
        destroyed = self.table.erase(subject, time.time())
        with self._lock:
            self._destroyed.add(subject)  # kept beside the set: a re-read may predate it
        return destroyed

    def forget(self, subject: str) -> None:
        """Drop the subject's key from this process's cache."""
        with self._lock:
            self._cache.pop(subject, None)

    def rotate_master(self, new_master: bytes) -> int:
        """Rewrap every live data key under ``new_master``; events are untouched."""
        rows = [(s, wrap(new_master, s, unwrap(self._master, s, w))) for s, w in self.table.rows()]
        self.table.replace(rows)
        self._master = new_master
        return len(rows)

    def _cached(self, subject: str) -> _Cached | None:
        with self._lock:
            hit = self._cache.get(subject)
            if hit is None or self._clock() - hit.at > CACHE_TTL_S:
                return None
            self._cache.move_to_end(subject)
            return hit

    def _remember(self, subject: str, wrapped: bytes | None) -> _Cached:
        if wrapped is None:
            raise SubjectErasedError(f"the personal data of {subject} was erased")
        key = unwrap(self._master, subject, wrapped)
        entry = _Cached(key, AESGCM(key), self._clock())
        with self._lock:
            self._cache[subject] = entry
            self._cache.move_to_end(subject)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return entry


_DDL = (
    "CREATE TABLE IF NOT EXISTS data_keys (subject TEXT PRIMARY KEY, wrapped {blob}, "
    "created_at DOUBLE PRECISION NOT NULL, erased_at DOUBLE PRECISION)"
)


class SQLiteKeyTable:
    """Data keys in a SQLite file (the events file), zeroed on erasure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(_DDL.format(blob="BLOB"))

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
        yield conn

    def get(self, subject: str) -> tuple[bool, bytes | None]:
        with self._conn() as conn:
            row = conn.execute("SELECT wrapped FROM data_keys WHERE subject = ?",
                               (subject,)).fetchone()
        return (False, None) if row is None else (True, row[0])

    def insert(self, subject: str, wrapped: bytes, now: float) -> None:
        with self._conn() as conn:
            conn.execute("INSERT OR IGNORE INTO data_keys VALUES (?, ?, ?, NULL)",
                         (subject, wrapped, now))

    def get_many(self, subjects: Sequence[str]) -> dict[str, bytes | None]:
        marks = ",".join("?" * len(subjects))
        with self._conn() as conn:
            return dict(conn.execute(
                f"SELECT subject, wrapped FROM data_keys WHERE subject IN ({marks})",
                list(subjects)).fetchall())

    def insert_many(self, rows: Sequence[tuple[str, bytes]], now: float) -> None:
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO data_keys VALUES (?, ?, ?, NULL)",
                                 [(s, w, now) for s, w in rows])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def erase(self, subject: str, now: float) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE data_keys SET wrapped = NULL, erased_at = ? "
                "WHERE subject = ? AND wrapped IS NOT NULL", (now, subject))
            if cur.rowcount == 0:
                conn.execute("INSERT OR IGNORE INTO data_keys VALUES (?, NULL, ?, ?)",
                             (subject, now, now))
                return False
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True

    def erased(self) -> list[str]:
        with self._conn() as conn:
            return [s for (s,) in conn.execute(
                "SELECT subject FROM data_keys WHERE wrapped IS NULL")]

    def rows(self) -> list[tuple[str, bytes]]:
        with self._conn() as conn:
            return [(s, w) for s, w in conn.execute(
                "SELECT subject, wrapped FROM data_keys WHERE wrapped IS NOT NULL")]

    def replace(self, rows: list[tuple[str, bytes]]) -> None:
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE data_keys SET wrapped = ? WHERE subject = ?",
                                 [(w, s) for s, w in rows])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class PostgresKeyTable:
    """Data keys in the PostgreSQL events database; erasure vacuums the old tuple away."""

    def __init__(self, uri: str, connect: Callable[[str], Any] | None = None) -> None:
        import psycopg

        self._connect = connect or (lambda u: psycopg.connect(u, autocommit=True,
                                                             connect_timeout=10))
        self.uri = uri
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (0x70C5_DA7A,))
            try:
                conn.execute(_DDL.format(blob="BYTEA"))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (0x70C5_DA7A,))

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._connect(self.uri)
            self._local.conn = conn
        yield conn

    def get(self, subject: str) -> tuple[bool, bytes | None]:
        with self._conn() as conn:
            row = conn.execute("SELECT wrapped FROM data_keys WHERE subject = %s",
                               (subject,)).fetchone()
        return (False, None) if row is None else (True, None if row[0] is None else bytes(row[0]))

    def insert(self, subject: str, wrapped: bytes, now: float) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO data_keys VALUES (%s, %s, %s, NULL) "
                         "ON CONFLICT (subject) DO NOTHING", (subject, wrapped, now))

    def get_many(self, subjects: Sequence[str]) -> dict[str, bytes | None]:
        with self._conn() as conn:
            return {s: None if w is None else bytes(w) for s, w in conn.execute(
                "SELECT subject, wrapped FROM data_keys WHERE subject = ANY(%s)",
                (list(subjects),))}

    def insert_many(self, rows: Sequence[tuple[str, bytes]], now: float) -> None:
        with self._conn() as conn, conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO data_keys VALUES (%s, %s, %s, NULL) "
                "ON CONFLICT (subject) DO NOTHING", [(s, w, now) for s, w in rows])

    def erase(self, subject: str, now: float) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE data_keys SET wrapped = NULL, erased_at = %s "
                "WHERE subject = %s AND wrapped IS NOT NULL", (now, subject))
            if cur.rowcount == 0:
                conn.execute("INSERT INTO data_keys VALUES (%s, NULL, %s, %s) "
                             "ON CONFLICT (subject) DO NOTHING", (subject, now, now))
                return False
            conn.execute("VACUUM data_keys")
        return True

    def erased(self) -> list[str]:
        with self._conn() as conn:
            return [s for (s,) in conn.execute(
                "SELECT subject FROM data_keys WHERE wrapped IS NULL")]

    def rows(self) -> list[tuple[str, bytes]]:
        with self._conn() as conn:
            return [(s, bytes(w)) for s, w in conn.execute(
                "SELECT subject, wrapped FROM data_keys WHERE wrapped IS NOT NULL")]

    def replace(self, rows: list[tuple[str, bytes]]) -> None:
        with self._conn() as conn, conn.transaction():
            conn.cursor().executemany("UPDATE data_keys SET wrapped = %s WHERE subject = %s",
                                      [(w, s) for s, w in rows])
        with self._conn() as conn:
            conn.execute("VACUUM data_keys")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
