"""Settings: one typed tree (pydantic-settings), read from the environment when asked.

Each section is a ``BaseSettings`` with its own prefix (``TOUCHSTREAM_IMAP_``…),
so multi-word fields keep their names (``TOUCHSTREAM_IMAP_USE_SSL`` would be
split by a nested delimiter). ``load(env)`` reads every section from ``env``
(``os.environ`` when None) and validates them all at once: a bad value anywhere
is one ``SettingsError`` naming each offending variable, raised before anything
is built. Each field's ``description`` is its documentation: the README's
settings table is ``markdown_table()`` (a test keeps them equal; regenerate with
``python -m touchstream.settings``). Nothing is read at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from channels.email.config import ImapConfig, InboundRules, SmtpConfig
from channels.phone.config import CtiConfig, FaxConfig, TwilioConfig
from channels.web.config import FormConfigError, FormsConfig, FormSpec, forms_from_json

MAX_IMAP_POLL_S = 29 * 60  # RFC 2177: re-issue IDLE within 29 minutes


class SettingsError(ValueError):
    """Raised when a setting has a value Touchstream cannot use."""


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


CommaList = Annotated[tuple[str, ...], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


class Section(BaseSettings):
    """One group of settings sharing a prefix; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)
    title: ClassVar[str] = ""

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # only the values ``from_env`` read from the mapping given

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Any:
        """The section from ``env`` alone (never ``os.environ`` unless that is ``env``)."""
        return cls(**_MappingSource(cls, env)())


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over an explicit mapping (tests pass a dict)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # As pydantic-settings reads os.environ: names folded to lower case, empties dropped.
        return {k if self.case_sensitive else k.lower(): v for k, v in self._env.items()
                if not (self.env_ignore_empty and v == "")}


class CoreSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_")
    title = "Core"

    data: Path = Field(Path("./touchstream-data"), description=(
        "Data folder: SQLite files, blobs, checkpoints, key and email state."))
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
    public_base_url: str = Field("", description=(
        "Public base URL the providers call (e.g. `https://hub.example.com`), for Twilio "
        "signatures behind a proxy."))

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
        "PostgreSQL, whatever the event store."))
    snapshot_interval: int = Field(50, ge=0, description=(
        "Snapshot a customer every N events, so long streams load as fast as short ones."))
    kurrentdb_root_certificates: str | None = Field(None, description=(
        "PEM for TLS to EventStoreDB/KurrentDB."))

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


class EmailSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_EMAIL_")
    title = "Email (inbound rules)"

    staff: CommaList = Field((), description=(
        "Staff domains and addresses (comma-separated): their mail is outbound."))
    fax_gateways: CommaList = Field((), description=(
        "Sender domains/addresses of email-to-fax gateways (comma-separated)."))
    max_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest message taken whole.")
    max_depth: int = Field(50, ge=1, description="Deepest MIME nesting parsed.")
    body_cap: int = Field(32_000, ge=100, description="Characters of body text kept per event.")

    _split_lists = field_validator("staff", "fax_gateways", mode="before")(_split)

    def rules(self) -> InboundRules:
        staff = [s.lower() for s in self.staff]
        return InboundRules(
            staff_domains=frozenset(s.lstrip("@") for s in staff if "@" not in s.lstrip("@")),
            staff_addresses=frozenset(s for s in staff if "@" in s.lstrip("@")),
            fax_gateways=frozenset(s.lower().lstrip("@") for s in self.fax_gateways),
            max_bytes=self.max_bytes, max_depth=self.max_depth, body_cap=self.body_cap,
        )


Security = Literal["tls", "starttls", "plain"]  # channels.email.config.SECURITY_MODES


class ImapSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_IMAP_")
    title = "IMAP (inbound email; off unless HOST is set)"

    host: str | None = Field(None, description="IMAP server; setting it turns the follower on.")
    port: int | None = Field(None, ge=1, le=65535, description="Default 993 (tls) or 143.")
    security: Security = Field("tls", description="`tls`, `starttls` or `plain`.")
    user: str | None = Field(None, description="Login (required with HOST).")
    password: SecretStr = Field(SecretStr(""), description="Password.")
    ca_file: str | None = Field(None, description="CA bundle for a private server certificate.")
    folders: CommaList = Field(("INBOX",), description="Folders followed (comma-separated).")
    account: str = Field("", description="Account name on events; default `user@host`.")
    timeout: float = Field(60, ge=1, description="Seconds per server round trip.")
    poll_seconds: float = Field(60, ge=0.1, description=(
        f"Poll interval without IDLE (capped at {MAX_IMAP_POLL_S} s)."))
    batch: int = Field(100, ge=1, description="Messages fetched and recorded per batch.")
    after: str = Field("none", description=(
        "What to do with a recorded message: `none`, `seen`, `flag` or `move:<folder>`."))
    backoff_seconds: float = Field(1, ge=0.05, description="First pause after a failure.")
    backoff_max_seconds: float = Field(300, ge=0.05, description="Longest pause after failures.")

    _split_lists = field_validator("folders", mode="before")(_split)

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        if value not in ("none", "seen", "flag") and not (value.startswith("move:") and value[5:]):
            raise ValueError("must be none, seen, flag or move:<folder>")
        return value

    @model_validator(mode="after")
    def _user_with_host(self) -> ImapSettings:
        if self.host and not self.user:
            raise ValueError("TOUCHSTREAM_IMAP_USER is required with TOUCHSTREAM_IMAP_HOST")
        return self

    def config(self) -> ImapConfig | None:
        """The follower's config; None when no host is configured."""
        if not self.host or not self.user:
            return None
        return ImapConfig(
            host=self.host, port=self.port or (993 if self.security == "tls" else 143),
            user=self.user, password=self.password.get_secret_value(), security=self.security,
            folders=self.folders or ("INBOX",), account=self.account, ca_file=self.ca_file,
            timeout_s=self.timeout, poll_s=min(self.poll_seconds, MAX_IMAP_POLL_S),
            batch=self.batch, after=self.after, backoff_initial_s=self.backoff_seconds,
            backoff_max_s=self.backoff_max_seconds,
        )


class SmtpSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_SMTP_")
    title = "SMTP (outbound email; off unless HOST is set)"

    host: str | None = Field(None, description="SMTP relay; setting it turns the sender on.")
    port: int | None = Field(None, ge=1, le=65535, description=(
        "Default 465 (tls), 587 (starttls) or 25 (plain)."))
    security: Security = Field("starttls", description="`tls`, `starttls` or `plain`.")
    user: str | None = Field(None, description="Login, if the relay asks for one.")
    password: SecretStr | None = Field(None, description="Password.")
    ca_file: str | None = Field(None, description="CA bundle for a private relay certificate.")
    timeout: float = Field(60, ge=1, description="Seconds per relay round trip.")
    max_attempts: int = Field(8, ge=1, description="Attempts before a send is given up.")
    retry_seconds: float = Field(60, ge=0, description="First retry delay (doubles each time).")
    retry_max_seconds: float = Field(3600, ge=0, description="Longest retry delay.")
    poll_seconds: float = Field(5, ge=0.05, description="How often the outbox is checked.")

    def config(self) -> SmtpConfig | None:
        """The sender's config; None when no host is configured."""
        if not self.host:
            return None
        default_port = {"tls": 465, "starttls": 587, "plain": 25}[self.security]
        return SmtpConfig(
            host=self.host, port=self.port or default_port, security=self.security,
            user=self.user or None,
            password=(self.password.get_secret_value() or None) if self.password else None,
            ca_file=self.ca_file, timeout_s=self.timeout, max_attempts=self.max_attempts,
            retry_base_s=self.retry_seconds, retry_max_s=self.retry_max_seconds,
            poll_s=self.poll_seconds,
        )


class TwilioSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_TWILIO_")
    title = "Twilio voice"

    auth_token: SecretStr = Field(SecretStr(""), description=(
        "Twilio auth token; with `TOUCHSTREAM_PUBLIC_BASE_URL`, mounts the Twilio webhooks."))

    def config(self, public_base_url: str) -> TwilioConfig:
        return TwilioConfig(auth_token=self.auth_token.get_secret_value(),
                            public_base_url=public_base_url)


class CtiSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_CTI_")
    title = "CTI"

    secret: SecretStr = Field(SecretStr(""), description=(
        "CTI HMAC secret; mounts `/webhooks/cti`."))
    window_s: PositiveInt = Field(300, description="Accepted clock skew of signed timestamps.")

    def config(self) -> CtiConfig:
        return CtiConfig(secret=self.secret.get_secret_value(), window_s=float(self.window_s))


class FaxSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_FAX_")
    title = "Fax"

    secret: SecretStr = Field(SecretStr(""), description="Fax webhook secret; mounts the webhook.")
    media_hosts: CommaList = Field((), description=(
        "Hosts documents may be fetched from (exact host or `.suffix`, comma-separated)."))
    max_bytes: PositiveInt = Field(20 * 1024 * 1024, description="Largest document fetched.")
    allow_private_addresses: bool = Field(False, description=(
        "Fetch from private/loopback addresses (tests only)."))

    _split_lists = field_validator("media_hosts", mode="before")(_split)

    def config(self) -> FaxConfig:
        return FaxConfig(
            secret=self.secret.get_secret_value(),
            allowed_hosts=frozenset(h.lower() for h in self.media_hosts),
            max_document_bytes=self.max_bytes,
            allow_private_addresses=self.allow_private_addresses,
        )


class CdrSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_CDR_")
    title = "Call records import"

    timezone: str = Field("UTC", description=(
        "Zone of Master.csv local times (`--timezone` overrides)."))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; SettingsError (a ValueError) when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"unknown time zone {name!r} (use an IANA name such as "
                            "Europe/London)") from exc


class FormsSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_FORMS_")
    title = "Web forms"

    secret: SecretStr = Field(SecretStr(""), description=(
        "Signs form render tokens (at least 16 characters; set it when several hosts serve "
        "forms). Default: generated once into `<data>/forms.secret`."))
    file: Path | None = Field(None, description="JSON form definitions replacing the defaults.")
    min_fill_s: float = Field(3, ge=0, description="Fastest plausible human fill time.")
    rate_limit: PositiveInt = Field(10, description="Submissions per client per minute.")
    trust_forwarded_for: bool = Field(False, description=(
        "Take the client from `X-Forwarded-For` (only behind a proxy you trust)."))

    _forms: dict[str, FormSpec] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _read_forms(self) -> FormsSettings:
        secret = self.secret.get_secret_value()
        if secret and len(secret) < 16:
            raise ValueError("TOUCHSTREAM_FORMS_SECRET must be at least 16 characters")
        if self.file is not None:
            try:
                self._forms = forms_from_json(json.loads(self.file.read_text()))
            except (OSError, ValueError) as exc:  # FormConfigError is a ValueError
                raise ValueError(f"TOUCHSTREAM_FORMS_FILE {str(self.file)!r}: {exc}") from exc
        return self

    def config(self, secret: str, default_region: str | None) -> FormsConfig:
        extra: dict[str, Any] = {} if self._forms is None else {"forms": self._forms}
        try:
            return FormsConfig(secret=secret, default_region=default_region,
                               min_fill_s=self.min_fill_s, rate_limit=self.rate_limit,
                               trust_forwarded_for=self.trust_forwarded_for, **extra)
        except FormConfigError as exc:
            raise SettingsError(f"web forms: {exc}") from exc


SECTIONS: dict[str, type[Section]] = {
    "core": CoreSettings, "stores": StoreSettings, "email": EmailSettings,
    "imap": ImapSettings, "smtp": SmtpSettings, "twilio": TwilioSettings, "cti": CtiSettings,
    "fax": FaxSettings, "cdr": CdrSettings, "forms": FormsSettings,
}


class Settings(BaseModel):
    """The whole tree. The flat properties are shortcuts to the core and store values."""

    model_config = ConfigDict(frozen=True)

    core: CoreSettings
    stores: StoreSettings
    email: EmailSettings
    imap: ImapSettings
    smtp: SmtpSettings
    twilio: TwilioSettings
    cti: CtiSettings
    fax: FaxSettings
    cdr: CdrSettings
    forms: FormsSettings

    @property
    def data_dir(self) -> Path:
        return self.core.data

    @property
    def event_store(self) -> str:
        return self.stores.event_store or f"sqlite:///{self.data_dir / 'events.db'}"

    @property
    def read_store(self) -> str:
        return self.stores.read_store or f"sqlite:///{self.data_dir / 'read.db'}"

    @property
    def event_store_kind(self) -> str:
        return store_kind(self.event_store)

    @property
    def default_region(self) -> str | None:
        return self.core.default_region

    @property
    def unknown_contacts(self) -> str:
        return self.core.unknown_contacts

    @property
    def snapshot_interval(self) -> int:
        return self.stores.snapshot_interval

    @property
    def kurrentdb_root_certificates(self) -> str | None:
        return self.stores.kurrentdb_root_certificates

    @property
    def max_body_bytes(self) -> int:
        return self.core.max_body_bytes

    @property
    def max_query_bytes(self) -> int:
        return self.core.max_query_bytes


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Every section from ``env`` (``os.environ`` when None), validated together."""
    env = os.environ if env is None else env
    sections: dict[str, Section] = {}
    problems: list[str] = []
    for name, cls in SECTIONS.items():
        try:
            sections[name] = cls.from_env(env)
        except ValidationError as exc:
            problems.extend(_describe(cls, exc))
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**sections)  # type: ignore[arg-type]


def _describe(cls: type[Section], exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["loc"]:
            out.append(f"{cls.env_name(str(err['loc'][0]))}: {msg}")
        else:
            out.append(msg)
    return out


def markdown_table() -> str:
    """The README's settings table: every setting, its default and its meaning."""
    lines = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for cls in SECTIONS.values():
        lines.append(f"| **{cls.title}** | | |")
        for name, field in cls.model_fields.items():
            lines.append(f"| `{cls.env_name(name)}` | {_default(field.default)} | "
                         f"{field.description} |")
    return "\n".join(lines)


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value in ("", ()):
        return "unset"
    if isinstance(value, tuple):
        value = ",".join(value)
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return f"`{value}`"


if __name__ == "__main__":
    print(markdown_table())
