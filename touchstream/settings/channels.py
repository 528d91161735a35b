"""Phone, fax, call-record and web-form settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from channels.phone.config import CtiConfig, FaxConfig, TwilioConfig
from channels.web.config import FormConfigError, FormsConfig, FormSpec, forms_from_json
from touchstream.settings.base import CommaList, Section, SettingsError, split_commas, zone


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

    _split_lists = field_validator("media_hosts", mode="before")(split_commas)

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


class FormsSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_FORMS_")
    title = "Web forms"

    secret: SecretStr = Field(SecretStr(""), description=(
        "Signs form render tokens (at least 16 characters). Default: generated once, into "
        "the PostgreSQL state store when the stores are PostgreSQL (shared by every host), "
        "else into `<data>/forms.secret`."))
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
