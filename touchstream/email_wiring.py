"""Composition of the email channel: settings → ingester / sender around one write model."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from channels.blobs import BlobStore
from channels.email.config import ImapConfig, SmtpConfig
from channels.email.imap import ImapIngester, IngestHooks
from channels.email.inbound import InboundMail
from channels.email.outbound import SmtpSender
from channels.email.state import ImapState
from commands.hub import Hub
from projections.outbox.view import OutboxEntry, OutboxView
from touchstream import email_settings
from touchstream.settings import Settings, SettingsError


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(settings.data_dir / "blobs")


def imap_state_path(settings: Settings) -> Path:
    return settings.data_dir / "email" / "imap-state.db"


def build_ingester(
    settings: Settings, hub: Hub, env: Mapping[str, str] | None = None,
    *, config: ImapConfig | None = None, hooks: IngestHooks | None = None,
) -> ImapIngester:
    """The IMAP ingester for the configured account (``TOUCHSTREAM_IMAP_*``)."""
    config = config or email_settings.imap_config(env)
    if config is None:
        raise SettingsError("no IMAP account configured: set TOUCHSTREAM_IMAP_HOST and _USER")
    outbox = HubOutbox(hub, outbox_path(settings))
    mail = InboundMail(hub, blob_store(settings), email_settings.inbound_rules(env),
                       envelope_lookup=outbox.message_for_envelope)
    return ImapIngester(config, mail, ImapState(imap_state_path(settings)), hooks=hooks)


def outbox_path(settings: Settings) -> Path:
    return settings.data_dir / "email" / "outbox.db"


class HubOutbox:
    """The outbox read model kept up to date from the hub's event log."""

    def __init__(self, hub: Hub, path: Path) -> None:
        self.hub = hub
        self.view = OutboxView(path)

    def refresh(self) -> None:
        self.view.catch_up(self.hub.recorder, self.hub.mapper)  # type: ignore[arg-type]

    def rebuild(self) -> int:
        return self.view.rebuild(self.hub.recorder, self.hub.mapper)  # type: ignore[arg-type]

    def due(self, now: datetime, base: timedelta, cap: timedelta) -> list[OutboxEntry]:
        return self.view.due(now, base, cap)

    def message_for_envelope(self, envelope_id: str) -> str | None:
        self.refresh()
        return self.view.message_for_envelope(envelope_id)

    def close(self) -> None:
        self.view.close()


def build_sender(
    settings: Settings, hub: Hub, env: Mapping[str, str] | None = None,
    *, config: SmtpConfig | None = None,
) -> SmtpSender:
    """The SMTP sender for the configured relay (``TOUCHSTREAM_SMTP_*``)."""
    config = config or email_settings.smtp_config(env)
    if config is None:
        raise SettingsError("no SMTP relay configured: set TOUCHSTREAM_SMTP_HOST")
    return SmtpSender(config, hub, HubOutbox(hub, outbox_path(settings)))
