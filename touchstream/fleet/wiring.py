"""Which store holds the channels' state, and the factories of its ports.

``state_uri``: the read store when it is PostgreSQL, else the event store when
it is PostgreSQL, else None (SQLite files in the data folder, one host).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from channels.email.state import ImapState, SQLiteImapState
from channels.phone.directory import CallDirectory, SQLiteCallDirectory
from channels.web.config import FormsConfig
from channels.web.guards import RateLimit
from touchstream.fleet.calls import PostgresCallDirectory
from touchstream.fleet.imap_state import PostgresImapState
from touchstream.fleet.leases import Leases, PostgresLeases, SQLiteLeases, owner_id
from touchstream.fleet.pg import StatePool
from touchstream.fleet.rate_limits import PostgresRateLimiter, SQLiteRateLimiter
from touchstream.settings import Settings, store_kind

if TYPE_CHECKING:  # the console (and FastAPI) load only where it is served
    from touchstream.console.sessions import SessionStore


def state_uri(settings: Settings) -> str | None:
    """The PostgreSQL database the channels' state lives in, or None (SQLite files)."""
    for uri in (settings.read_store, settings.event_store):
        if store_kind(uri) == "postgres":
            return uri
    return None


def imap_state_path(settings: Settings) -> Path:
    return settings.data_dir / "email" / "imap-state.db"


def open_imap_state(settings: Settings) -> ImapState:
    """The IMAP checkpoint/ledger/index (the caller closes it)."""
    uri = state_uri(settings)
    if uri is not None:
        return PostgresImapState(uri, settings.store_timeout_s)
    return SQLiteImapState(imap_state_path(settings))


def existing_imap_state(settings: Settings) -> ImapState | None:
    """The IMAP state if the email channel may have run here (erasure), else None."""
    if state_uri(settings) is None and not imap_state_path(settings).exists():
        return None
    return open_imap_state(settings)


def call_directory_path(settings: Settings) -> Path:
    return settings.data_dir / "phone" / "calls.db"


def open_call_directory(settings: Settings) -> CallDirectory:
    uri = state_uri(settings)
    if uri is not None:
        return PostgresCallDirectory(uri, settings.store_timeout_s)
    return SQLiteCallDirectory(call_directory_path(settings))


def open_leases(settings: Settings) -> Leases:
    uri = state_uri(settings)
    if uri is not None:
        return PostgresLeases(uri, settings.store_timeout_s)
    return SQLiteLeases(settings.data_dir / "leases.db")


def lease_owner(settings: Settings) -> str:
    """A fresh owner name for a lease holder of this process."""
    return owner_id(settings.fleet.node)


def open_rate_limiter(settings: Settings, config: FormsConfig) -> RateLimit:
    """The forms' and surveys' per-client limit, counted across the hub's processes."""
    uri = state_uri(settings)
    if uri is not None:
        return PostgresRateLimiter(uri, config.rate_limit, config.rate_window_s, config.clock,
                                   settings.store_timeout_s)
    return SQLiteRateLimiter(settings.data_dir / "web" / "rate-limits.db", config.rate_limit,
                             config.rate_window_s, config.clock)


def open_session_store(settings: Settings, idle_s: float) -> SessionStore:
    """The console's sessions: one table for the fleet, else a file for this host."""
    from touchstream.console.sessions import SessionStore
    from touchstream.fleet.sessions import PostgresSessionStore

    uri = state_uri(settings)
    if uri is not None:
        return PostgresSessionStore(uri, idle_s=idle_s, timeout_s=settings.store_timeout_s)
    return SessionStore(settings.data_dir / "console" / "sessions.db", idle_s=idle_s)


_SECRET_DDL = (("CREATE TABLE IF NOT EXISTS ts_shared_secret (name TEXT PRIMARY KEY, "
               "value TEXT NOT NULL)"),)


def shared_secret(settings: Settings, name: str) -> str | None:
    """A secret generated once for the whole fleet (the forms' token key when none is
    configured), or None on SQLite, where the data folder keeps it."""
    uri = state_uri(settings)
    if uri is None:
        return None
    db = StatePool(uri, _SECRET_DDL, name="touchstream-secret", timeout_s=settings.store_timeout_s)
    try:
        with db.connection() as conn:
            conn.execute("INSERT INTO ts_shared_secret VALUES (%s, %s) ON CONFLICT (name) "
                         "DO NOTHING", (name, secrets.token_urlsafe(32)))
            row = conn.execute("SELECT value FROM ts_shared_secret WHERE name=%s",
                               (name,)).fetchone()
    finally:
        db.close()
    assert row is not None
    return str(row[0])
