"""Settings: one typed tree (pydantic-settings), read from the environment when asked.

Each section is a ``BaseSettings`` with its own prefix (``TOUCHSTREAM_IMAP_``…),
so multi-word fields keep their names (``TOUCHSTREAM_IMAP_USE_SSL`` would be
split by a nested delimiter). ``load(env)`` reads every section from ``env``
(``os.environ`` when None) and validates them all at once: a bad value anywhere
is one ``SettingsError`` naming each offending variable, raised before anything
is built. Each field's ``description`` is its documentation: the README's
settings table is ``markdown_table()`` (a test keeps them equal; regenerate with
``python -m touchstream.settings``). Nothing is read at import time.

Sections live beside this module: ``core`` (core, stores), ``email`` (inbound
rules, IMAP, SMTP) and ``channels`` (Twilio, CTI, fax, call records, forms).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from touchstream.settings.base import Section, SettingsError, sqlite_path, store_kind, zone
from touchstream.settings.channels import (
    CdrSettings,
    CtiSettings,
    FaxSettings,
    FormsSettings,
    TwilioSettings,
)
from touchstream.settings.core import CoreSettings, StoreSettings
from touchstream.settings.email import EmailSettings, ImapSettings, SmtpSettings
from touchstream.settings.fleet import FleetSettings
from touchstream.settings.operations import OperationsSettings
from touchstream.settings.sales import SalesSettings
from touchstream.settings.service import ServiceSettings
from touchstream.settings.value import ValueSettings
from touchstream.settings.work import WorkSettings

__all__ = [
    "SECTIONS", "CdrSettings", "CoreSettings", "CtiSettings", "EmailSettings", "FaxSettings",
    "FleetSettings", "FormsSettings", "ImapSettings", "OperationsSettings", "SalesSettings",
    "Section", "ServiceSettings", "Settings", "SettingsError", "SmtpSettings",
    "StoreSettings", "TwilioSettings", "ValueSettings", "WorkSettings", "load", "markdown_table",
    "sqlite_path", "store_kind",
    "zone",
]

SECTIONS: dict[str, type[Section]] = {
    "core": CoreSettings, "stores": StoreSettings, "email": EmailSettings,
    "imap": ImapSettings, "smtp": SmtpSettings, "twilio": TwilioSettings, "cti": CtiSettings,
    "fax": FaxSettings, "cdr": CdrSettings, "forms": FormsSettings, "sales": SalesSettings,
    "service": ServiceSettings, "value": ValueSettings, "work": WorkSettings,
    "fleet": FleetSettings, "operations": OperationsSettings,
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
    sales: SalesSettings
    service: ServiceSettings
    value: ValueSettings
    work: WorkSettings
    fleet: FleetSettings
    operations: OperationsSettings

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
    def store_timeout_s(self) -> int:
        return self.stores.store_timeout

    @property
    def max_body_bytes(self) -> int:
        return self.core.max_body_bytes

    @property
    def audit_seal_interval_s(self) -> int:
        return self.core.audit_seal_interval

    @property
    def audit_writer(self) -> str:
        return self.core.audit_writer

    @property
    def master_key(self) -> str | None:
        key = self.core.master_key
        return key.get_secret_value() if key is not None else None

    @property
    def max_future_skew_s(self) -> int:
        return self.core.max_future_skew_s

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
