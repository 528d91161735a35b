"""Settings: read from the environment when asked, never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


class SettingsError(ValueError):
    """Raised when a setting has a value Touchstream cannot use."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    event_store: str
    read_store: str
    default_region: str | None
    unknown_contacts: str
    snapshot_interval: int
    kurrentdb_root_certificates: str | None
    max_body_bytes: int = 1 << 20
    max_query_bytes: int = 8192
    # TOUCHSTREAM_STORE_TIMEOUT: seconds a request waits on an unavailable store
    # (pool wait, SQLite lock, PostgreSQL lock) before answering 503 / exiting 5.
    store_timeout_s: int = 5

    @property
    def event_store_kind(self) -> str:
        return store_kind(self.event_store)


def store_kind(uri: str) -> str:
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover", "kdb", "kdb+discover"):
        return "kurrentdb"
    raise SettingsError(
        f"unsupported store URI {uri!r}: use sqlite:///path, postgresql://… or esdb://…"
    )


def sqlite_path(uri: str) -> Path:
    """``sqlite:///relative/file.db`` or ``sqlite:////absolute/file.db``."""
    path = unquote(urlsplit(uri).path)
    path = path.removeprefix("/")
    if not path:
        raise SettingsError(f"sqlite URI without a file: {uri!r}")
    return Path(path)


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("TOUCHSTREAM_DATA", "./touchstream-data"))
    event_store = env.get("TOUCHSTREAM_EVENT_STORE") or f"sqlite:///{data_dir / 'events.db'}"
    read_store = env.get("TOUCHSTREAM_READ_STORE") or f"sqlite:///{data_dir / 'read.db'}"
    unknown = env.get("TOUCHSTREAM_UNKNOWN_CONTACTS", "create")
    if unknown not in ("create", "triage"):
        raise SettingsError("TOUCHSTREAM_UNKNOWN_CONTACTS must be 'create' or 'triage'")
    try:
        interval = int(env.get("TOUCHSTREAM_SNAPSHOT_INTERVAL", "50"))
    except ValueError as exc:
        raise SettingsError("TOUCHSTREAM_SNAPSHOT_INTERVAL must be an integer") from exc
    max_body = positive_int(env, "TOUCHSTREAM_MAX_BODY_BYTES", 1 << 20)
    max_query = positive_int(env, "TOUCHSTREAM_MAX_QUERY_BYTES", 8192)
    settings = Settings(
        data_dir=data_dir,
        event_store=event_store,
        read_store=read_store,
        default_region=(env.get("TOUCHSTREAM_DEFAULT_REGION") or None),
        unknown_contacts=unknown,
        snapshot_interval=interval,
        kurrentdb_root_certificates=env.get("TOUCHSTREAM_KURRENTDB_ROOT_CERTIFICATES") or None,
        max_body_bytes=max_body,
        max_query_bytes=max_query,
        store_timeout_s=positive_int(env, "TOUCHSTREAM_STORE_TIMEOUT", 5),
    )
    store_kind(settings.event_store)
    if store_kind(settings.read_store) == "kurrentdb":
        raise SettingsError("read models live in SQLite or PostgreSQL, not in the event store")
    return settings


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """The setting as a positive integer, ``default`` when unset; SettingsError otherwise."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value
