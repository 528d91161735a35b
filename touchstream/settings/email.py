"""Email settings: inbound rules (``TOUCHSTREAM_EMAIL_*``), IMAP and SMTP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from channels.email.config import ImapConfig, InboundRules, SmtpConfig
from touchstream.settings.base import CommaList, Section, split_commas

MAX_IMAP_POLL_S = 29 * 60  # RFC 2177: re-issue IDLE within 29 minutes
FaxNumbers = Literal["national", "international"]  # channels.email.config.FAX_NUMBER_FORMATS


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
    fax_numbers: FaxNumbers = Field("national", description=(
        "How fax gateways write the sender number (subject, else the address's digits): "
        "`national` (read with the default region) or `international` (country code "
        "first, no `+`)."))

    _split_lists = field_validator("staff", "fax_gateways", mode="before")(split_commas)

    @field_validator("fax_numbers", mode="before")
    @classmethod
    def _fold_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def rules(self) -> InboundRules:
        staff = [s.lower() for s in self.staff]
        return InboundRules(
            staff_domains=frozenset(s.lstrip("@") for s in staff if "@" not in s.lstrip("@")),
            staff_addresses=frozenset(s for s in staff if "@" in s.lstrip("@")),
            fax_gateways=frozenset(s.lower().lstrip("@") for s in self.fax_gateways),
            max_bytes=self.max_bytes, max_depth=self.max_depth, body_cap=self.body_cap,
            fax_number_format=self.fax_numbers,
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

    _split_lists = field_validator("folders", mode="before")(split_commas)

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
