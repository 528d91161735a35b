"""API keys and idempotency fingerprints, kept in the read store (SQLite or PostgreSQL).

A key is a random token (``tsk_`` + 32 bytes from ``secrets``, 256 bits) shown
once at creation; only its SHA-256 is stored. A plain fast hash is enough here
because the token is not a password: with 256 random bits there is nothing to
guess or look up in a dictionary, so a slow KDF (bcrypt, argon2) would add
~100 ms per request and no security. A fast hash also lets a request find its
key with one indexed lookup, and a stolen copy of the table does not let
anyone call the API.

The same database holds the HTTP layer's idempotency fingerprints: which
request body was first sent with a given ``Idempotency-Key`` (so the same key
with a different body is refused instead of silently answered).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from touchstream.settings import Settings, sqlite_path, store_kind

ROLES = (
    "agent", "sales", "marketing", "service", "dispatcher",
    "analyst", "auditor", "privacy", "admin", "adapter", "partner",
    "monitoring",  # GET /metrics only (touchstream.metrics)
)
TOKEN_PREFIX = "tsk_"
MAX_TOKEN_CHARS = 200
SCHEMA_LOCK_ID = 0x70C5_7EA4
#: On PostgreSQL a key found is answered from memory for this long: the bound on how
#: late a revocation made by another process (``touchstream keys revoke``) takes effect
#: in a running server. This store's own revocations take effect at once.
KEY_CACHE_S = 1.0
KEY_CACHE_MAX = 1024  # keys remembered at once (then all are forgotten and looked up again)


class KeyStoreError(Exception):
    """Base of the key store's errors."""


class UnknownRoleError(KeyStoreError, ValueError):
    """Raised when a key is created with a role Touchstream does not know."""


class PartnerScopeError(KeyStoreError, ValueError):
    """Raised when a partner key lacks a partner id, or another role is given one."""


class UnknownKeyError(KeyStoreError, LookupError):
    """Raised when revoking a key id that does not exist."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, never with its token."""

    id: str
    name: str
    role: str
    partner_id: str | None
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS touchstream_api_keys ("
    "id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
    "role TEXT NOT NULL, partner_id TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"),
    ("CREATE TABLE IF NOT EXISTS touchstream_idempotency ("
    "scope TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL, created_at TEXT NOT NULL)"),
)
_COLUMNS = "id, name, role, partner_id, created_at, revoked_at"


class KeyStore(ABC):
    """API keys and idempotency fingerprints; SQL shared by both backends (``?`` marks)."""

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; rows if it returns any."""

    def close(self) -> None:
        """Release connections."""

    # -- keys --------------------------------------------------------------
    def create(self, role: str, partner_id: str | None = None, name: str = "") -> tuple[ApiKey, str]:
        """A new key and its token; the token is not kept and cannot be shown again."""
        if role not in ROLES:
            raise UnknownRoleError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if role == "partner" and not partner_id:
            raise PartnerScopeError("a partner key needs --partner ID (the partner it may see)")
        if role != "partner" and partner_id:
            raise PartnerScopeError(f"only partner keys carry a partner id, not {role} keys")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id="key_" + secrets.token_hex(6), name=name or role, role=role,
                     partner_id=partner_id, created_at=_now())
        self._run(
            "INSERT INTO touchstream_api_keys (id, token_sha256, name, role, partner_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key.id, hash_token(token), key.name, key.role, key.partner_id, key.created_at),
        )
        return key, token

    def list_keys(self) -> list[ApiKey]:
        rows = self._run(f"SELECT {_COLUMNS} FROM touchstream_api_keys ORDER BY created_at, id")
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent); raises ``UnknownKeyError`` for an unknown id."""
        self._run(
            "UPDATE touchstream_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (_now(), key_id),
        )
        rows = self._run(f"SELECT {_COLUMNS} FROM touchstream_api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise UnknownKeyError(f"no API key {key_id!r} (see: touchstream keys list)")
        return ApiKey(*rows[0])

    def authenticate(self, token: str) -> ApiKey | None:
        """The key a token belongs to (revoked keys included: the caller checks)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        return self._lookup(hash_token(token))

    def recent(self, token: str) -> ApiKey | None:
        """The key of ``token`` if this store found it within its cache period, from memory
        (never waits); None otherwise: then ``authenticate``."""
        return None

    def _lookup(self, digest: str) -> ApiKey | None:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM touchstream_api_keys WHERE token_sha256 = ?", (digest,))
        return ApiKey(*rows[0]) if rows else None

    # -- idempotency fingerprints -----------------------------------------
    def fingerprint(self, scope: str) -> str | None:
        """The body hash first recorded under ``scope``, if any."""
        rows = self._run("SELECT body_sha256 FROM touchstream_idempotency WHERE scope = ?",
                         (scope,))
        return str(rows[0][0]) if rows else None

    def remember(self, scope: str, body_sha256: str) -> None:
        """Record the body hash for ``scope`` unless one is already recorded."""
        self._run(
            "INSERT INTO touchstream_idempotency (scope, body_sha256, created_at) "
            "VALUES (?, ?, ?) ON CONFLICT (scope) DO NOTHING",
            (scope, body_sha256, _now()),
        )


class SQLiteKeyStore(KeyStore):
    lookup_is_local = True  # a file on this machine: cheap enough to query on the event loop

    def __init__(self, path: str, timeout_s: float = 5) -> None:
        self.path = path
        self.timeout_s = timeout_s
        # One connection per thread, kept open: a key lookup costs ~10 µs instead
        # of ~200 µs with a connection per call, and revocation stays immediate.
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            conn.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                                   check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL. Every API request looks its key up, and a lookup is a round
    trip (and a thread hop off the event loop): a key found is remembered for
    ``cache_s`` (``KEY_CACHE_S``) and answered by ``recent`` meanwhile. Unknown tokens are
    never remembered (a key just created elsewhere works at once; guessing fills nothing)."""

    def __init__(self, uri: str, timeout_s: float = 5, *, cache_s: float = KEY_CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_s = cache_s
        self._clock = clock
        self._found: dict[str, tuple[float, ApiKey]] = {}  # token hash -> (asked at, key)
        self._revocations = 0  # a lookup that began before a revocation is not remembered
        self._revoking = threading.Lock()
        # check: a connection broken by a server restart is replaced on checkout,
        # not handed to a request; timeout: the wait for a connection (then 503).
        # No ``check`` on checkout: its ping is a round trip of its own, and every API
        # request looks its key up here. Statements run on a connection found broken (a
        # server restart) are asked again on another one instead (``_run``).
        self.pool: ConnectionPool[Any] = ConnectionPool(
            uri, min_size=1, max_size=4, open=True, kwargs={"autocommit": True},
            name="touchstream-keys", timeout=timeout_s,
        )
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            for statement in _SCHEMA:
                conn.execute(statement)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Only a connection found broken is asked again (the pool drops it on return);
        # every statement here may run twice: lookups, ON CONFLICT inserts, a revocation
        # by id, and a key's insert by its id (a commit lost with its connection then
        # fails on the id, never adds a second key).
        for attempt in range(self.pool.max_size + 1):
            with self.pool.connection() as conn:
                try:
                    cur = conn.execute(sql.replace("?", "%s"), tuple(params))
                    return cur.fetchall() if cur.description else []
                except psycopg.OperationalError:
                    if not conn.broken or attempt == self.pool.max_size:
                        raise
        raise AssertionError("unreachable")

    def recent(self, token: str) -> ApiKey | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        hit = self._found.get(hash_token(token))
        if hit is None or self._clock() - hit[0] >= self.cache_s:
            return None
        return hit[1]

    def _lookup(self, digest: str) -> ApiKey | None:
        # The age counts from before the read: whatever was revoked by then is seen.
        asked_at, revocations = self._clock(), self._revocations
        key = super()._lookup(digest)
        if key is not None and revocations == self._revocations:
            if len(self._found) >= KEY_CACHE_MAX:
                self._found = {}
            self._found[digest] = (asked_at, key)
        return key

    def revoke(self, key_id: str) -> ApiKey:
        self._count_revocation()
        try:
            return super().revoke(key_id)
        finally:  # after the update: no lookup from before it is remembered
            self._count_revocation()
            found = list(self._found.items())  # one step: lookups may add meanwhile
            self._found = {d: hit for d, hit in found if hit[1].id != key_id}

    def _count_revocation(self) -> None:
        with self._revoking:
            self._revocations += 1

    def close(self) -> None:
        self.pool.close()


def open_key_store(settings: Settings) -> KeyStore:
    """The key store in the configured read store."""
    if store_kind(settings.read_store) == "postgres":
        return PostgresKeyStore(settings.read_store, settings.store_timeout_s)
    path = sqlite_path(settings.read_store)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteKeyStore(str(path), settings.store_timeout_s)


class KeyLookup(Protocol):
    """What ``authorize`` needs from a key store."""

    def authenticate(self, token: str) -> ApiKey | None: ...

    def recent(self, token: str) -> ApiKey | None: ...
