"""Core and store settings (``TOUCHSTREAM_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from touchstream.settings.base import Section, store_kind


class CoreSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_")
    title = "Core"

    data: Path = Field(Path("./touchstream-data"), description=(
        "Data folder: SQLite files (`events.db`, `read.db`, the access log `audit.db`, …), "
        "blobs, checkpoints, key and email state."))
    default_region: str | None = Field(None, description=(
        "ISO region (`GB`, `DE`, `US`…) for numbers written without `+<country>`; "
        "no country is assumed when unset."))
    unknown_contacts: Literal["create", "triage"] = Field("create", description=(
        "A touchpoint from an unknown address/number creates a prospect owning it (`create`) "
        "or is held whole for triage (`triage`)."))
    max_body_bytes: PositiveInt = Field(1 << 20, description=(
        "Largest HTTP request body; larger answers 413."))
    max_query_bytes: PositiveInt = Field(8192, description=(
        "Longest HTTP query string; longer answers 414."))
    max_future_skew_s: PositiveInt = Field(86_400, description=(
        "A touchpoint dated more than this many seconds ahead of the hub's clock is refused "
        "(a mistyped year would otherwise become the last contact forever)."))
    audit_seal_interval: PositiveInt = Field(3600, description=(
        "Seconds between the seals `touchstream serve` appends to the audit log "
        "(one more at shutdown)."))
    audit_writer: Literal["process", "thread"] = Field("process", description=(
        "Where a server writes the read audit's access records: `process`, a writer "
        "process per server process fed by the event loop (the loop does not share the "
        "GIL with the writing), or `thread`, a writer thread in the server process."))
    master_key: SecretStr | None = Field(None, description=(
        "Master key wrapping every customer's data key (urlsafe base64 of 32 bytes); when "
        "unset, `<data>/master.key` is generated on first start (mode 0600). Back it up apart "
        "from the data: without it the personal data cannot be read."))
    public_base_url: str = Field("", description=(
        "Public base URL the providers and customers call (e.g. `https://hub.example.com`): "
        "Twilio signatures behind a proxy, links in emails (case status links in "
        "auto-acknowledgements)."))

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value


class StoreSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_")
    title = "Stores"

    event_store: str | None = Field(None, description=(
        "Default `sqlite:///<data>/events.db`. `sqlite:///path`, `postgresql://user:pw@host/db` "
        "(or `?host=/socket/dir`), or `esdb://…` / `kurrentdb://…` for EventStoreDB/KurrentDB."))
    read_store: str | None = Field(None, description=(
        "Default `sqlite:///<data>/read.db`. Where read models and API keys live: SQLite or "
        "PostgreSQL, whatever the event store. On SQLite the read audit's access log is a "
        "second file beside it, `audit.db` (see Read audit)."))
    snapshot_interval: int = Field(50, ge=0, description=(
        "Snapshot a customer every N events, so long streams load as fast as short ones."))
    kurrentdb_root_certificates: str | None = Field(None, description=(
        "PEM for TLS to EventStoreDB/KurrentDB."))
    store_timeout: PositiveInt = Field(5, description=(
        "Seconds a request waits on an unavailable store (PostgreSQL pool and table lock, "
        "SQLite lock, key and read stores) before answering 503 with `Retry-After` "
        "(CLI: exit 5). Pools check connections, so a restarted server needs no restart here."))

    @field_validator("event_store")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        if value is not None:
            store_kind(value)
        return value

    @field_validator("read_store")
    @classmethod
    def _sql_store(cls, value: str | None) -> str | None:
        if value is not None and store_kind(value) == "kurrentdb":
            raise ValueError("read models live in SQLite or PostgreSQL, not in the event store")
        return value
