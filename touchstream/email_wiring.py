"""Composition of the email channel: settings → ingester / sender around one write model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from channels.blobs import BlobStore
from channels.email.config import ImapConfig
from channels.email.imap import ImapIngester, IngestHooks
from channels.email.inbound import InboundMail
from channels.email.state import ImapState
from commands.hub import Hub
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
    mail = InboundMail(hub, blob_store(settings), email_settings.inbound_rules(env))
    return ImapIngester(config, mail, ImapState(imap_state_path(settings)), hooks=hooks)
