"""The store factory: turns settings into a configured write model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.utils import get_topic

from commands.hub import Hub, StreamNaming
from projections.events import is_customer_topic
from touchstream.adapters.recorders import (
    PostgresKeyedRecorder,
    PostgresStoreFactory,
    SQLiteKeyedRecorder,
)
from touchstream.adapters.transcoder import OrjsonTranscoder
from touchstream.privacy.datakeys import (
    DataKeys,
    KeyTable,
    PostgresKeyTable,
    SQLiteKeyTable,
    load_master_key,
)
from touchstream.privacy.mapper import PersonalDataMapper
from touchstream.settings import Settings, SettingsError, sqlite_path, store_kind

SCHEMA_LOCK_ID = 0x70C5_7EA3


def postgres_env(uri: str, store_timeout_s: int = 5) -> dict[str, str]:
    """The eventsourcing library's POSTGRES_* settings from one URI.

    ``store_timeout_s`` bounds the pool wait and the table-lock wait. The pool
    does not ping a connection before handing it out (that was one more round
    trip on every read and every save, as much as the save itself now that it
    is one call): a connection broken by a server restart fails its statement,
    and the recorders retry on a fresh one while the store timeout lasts
    (``touchstream.adapters.recorders``; proven by
    ``tests/integration/test_store_outages.py``, a restart under load)."""
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    if not parts.path.strip("/"):
        raise SettingsError(f"PostgreSQL URI without a database name: {uri!r}")
    env = {
        "POSTGRES_DBNAME": unquote(parts.path.strip("/")),
        "POSTGRES_HOST": parts.hostname or query.get("host", ["localhost"])[0],
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": str(store_timeout_s),
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": str(store_timeout_s),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
    }
    return env


def event_store_env(settings: Settings) -> dict[str, str]:
    kind = store_kind(settings.event_store)
    if kind == "sqlite":
        path = sqlite_path(settings.event_store)
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": str(settings.store_timeout_s),
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteKeyedRecorder),
            "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
        }
    if kind == "postgres":
        return {
            "PERSISTENCE_MODULE": get_topic(PostgresStoreFactory),
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresKeyedRecorder),
            "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
            **postgres_env(settings.event_store, settings.store_timeout_s),
        }
    env = {
        "PERSISTENCE_MODULE": "touchstream.adapters.kurrentdb:RetrySafeKurrentDBFactory",
        "KURRENTDB_URI": settings.event_store,
    }
    if settings.kurrentdb_root_certificates:
        env["KURRENTDB_ROOT_CERTIFICATES"] = settings.kurrentdb_root_certificates
    return env


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """Serialise table creation: PostgreSQL fails concurrent CREATE … IF NOT EXISTS."""
    if store_kind(settings.event_store) != "postgres":
        yield
        return
    with psycopg.connect(settings.event_store, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))


def build_hub(settings: Settings, env_overrides: dict[str, str] | None = None,
              keys: DataKeys | None = None, *, encrypt: bool = True) -> Hub:
    """The write model on the configured event store (``env_overrides``: library settings
    such as ``AGGREGATE_CACHE_MAXSIZE`` for benchmarks; ``keys``: data keys to share
    with the blob store, else its own).

    ``encrypt=False`` is for the benchmarks only (``touchstream.bench`` measures the
    cost of encryption against it, on a fresh temporary store): the library's own
    mapper, personal fields in clear; ids are keyed as in production. Every other
    caller leaves it on (a unit test fails when code outside ``touchstream/bench``
    passes it)."""
    kind = store_kind(settings.event_store)
    with schema_lock(settings):
        return _hub(settings, kind, env_overrides or {}, keys or build_data_keys(settings),
                    encrypt)


def _hub(settings: Settings, kind: str, env_overrides: dict[str, str], keys: DataKeys,
         encrypt: bool) -> Hub:
    hub = Hub(
        env={**event_store_env(settings), **env_overrides},
        naming=StreamNaming(prefixed=(kind == "kurrentdb"), secret=keys.id_secret),
        default_region=settings.default_region,
        unknown_contacts=settings.unknown_contacts,
        snapshot_interval=settings.snapshot_interval,
        mapper_factory=(lambda transcoder: PersonalDataMapper(transcoder, keys)) if encrypt
        else None,
        shredder=keys,
        max_future_skew=timedelta(seconds=settings.max_future_skew_s),
    )
    hub.context = replace(hub.context, policies={"sales": settings.sales.pipeline(),
                                                      "work": settings.work.policy()})
    if encrypt:
        refuse_unencrypted_history(hub, keys)
    return hub


def build_data_keys(settings: Settings) -> DataKeys:
    """Per-customer data keys beside the events (in the read store's database when the
    events are on EventStoreDB, which has no tables)."""
    master = load_master_key(settings.data_dir, settings.master_key)
    where = settings.event_store if settings.event_store_kind != "kurrentdb" else settings.read_store
    table: KeyTable
    if store_kind(where) == "sqlite":
        path = sqlite_path(where)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = SQLiteKeyTable(path)
    else:
        table = PostgresKeyTable(where)
    return DataKeys(table, master)


def refuse_unencrypted_history(hub: Hub, keys: DataKeys) -> None:
    """A store written before per-customer encryption is refused, never mixed silently."""
    first = hub.recorder.select_notifications(1, 50)
    for note in first:
        if is_customer_topic(note.topic) and b'"_sealed"' not in note.state:
            raise SettingsError(
                "this event store holds customer events written before per-customer "
                "encryption (personal data in clear); Touchstream refuses to mix them. "
                "Start with an empty data folder/database and re-import (see README, Privacy)."
            )
