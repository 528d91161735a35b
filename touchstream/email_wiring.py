"""Composition of the email channel: settings → ingester / sender around one write model."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from channels.blobs import BlobStore
from channels.email.config import ImapConfig, SmtpConfig
from channels.email.imap import ImapIngester, IngestHooks
from channels.email.inbound import InboundMail
from channels.email.outbound import SmtpSender
from channels.email.state import ImapState
from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import Hub
from commands.ports import Recorded
from projections.outbox.view import OutboxEntry, OutboxView
from touchstream import email_settings
from touchstream.settings import Settings, SettingsError
from touchstream.wiring import build_hub


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(settings.data_dir / "blobs")


def imap_state_path(settings: Settings) -> Path:
    return settings.data_dir / "email" / "imap-state.db"


def imap_state(settings: Settings) -> ImapState:
    """The IMAP checkpoint/ledger/index file (the caller closes it)."""
    return ImapState(imap_state_path(settings))


def build_ingester(
    settings: Settings, hub: Hub, env: Mapping[str, str] | None = None,
    *, config: ImapConfig | None = None, hooks: IngestHooks | None = None,
) -> ImapIngester:
    """The IMAP ingester for the configured account (``TOUCHSTREAM_IMAP_*``)."""
    config = config or email_settings.imap_config(env)
    if config is None:
        raise SettingsError("no IMAP account configured: set TOUCHSTREAM_IMAP_HOST and _USER")
    outbox = HubOutbox(hub, outbox_path(settings))
    state = imap_state(settings)
    mail = InboundMail(hub, blob_store(settings), email_settings.inbound_rules(env),
                       envelope_lookup=outbox.message_for_envelope,
                       sent_lookup=outbox.customer_for_message, sent_roots=outbox.sent_roots,
                       batch_sink=BulkSink(hub),
                       index=state)
    return ImapIngester(config, mail, state, hooks=hooks)


class BulkSink:
    """The write model's bulk path as the email channel's batch sink: one IMAP batch is
    recorded in a few transactions, with the same source-key dedup."""

    def __init__(self, hub: Hub) -> None:
        self.importer = BulkImporter(hub)

    def execute_many(self, commands: Sequence[m.Touchpoint]) -> list[Recorded | str]:
        return [r.recorded if r.recorded is not None else (r.error or "refused")
                for r in self.importer.import_history(commands)]


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

    def sent_roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Thread roots of mail the hub sent, for replies that name only their parent."""
        self.refresh()
        return self.view.roots(list(message_ids))

    def customer_for_message(self, message_id: str) -> str | None:
        """The customer of mail the hub sent under ``message_id`` (None: not sent here)."""
        found = self.view.customer_for_message(message_id)
        if found is None:
            self.refresh()
            found = self.view.customer_for_message(message_id)
        return found

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


class EmailService:
    """IMAP following or SMTP sending in a thread beside the API (``touchstream serve``)."""

    def __init__(self, settings: Settings, role: str, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.role = role  # "imap" or "smtp"
        self.env = env
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"touchstream-{self.role}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with exclusive_runner(self.settings, self.role, self._stop) as acquired:
            if not acquired:
                return
            hub = build_hub(self.settings)
            try:
                if self.role == "imap":
                    ingester = build_ingester(self.settings, hub, self.env)
                    try:
                        ingester.follow(self._stop)
                    finally:
                        ingester.state.close()
                else:
                    build_sender(self.settings, hub, self.env).follow(self._stop)
            finally:
                hub.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def email_services(settings: Settings, env: Mapping[str, str] | None = None) -> list[EmailService]:
    """The email services configured: an IMAP follower and/or an SMTP sender."""
    services = []
    if email_settings.imap_config(env) is not None:
        services.append(EmailService(settings, "imap", env))
    if email_settings.smtp_config(env) is not None:
        services.append(EmailService(settings, "smtp", env))
    return services


@contextmanager
def exclusive_runner(
    settings: Settings, role: str, stop: threading.Event, poll_s: float = 1.0
) -> Iterator[bool]:
    """One follower/sender per data folder at a time (several API workers, a CLI follower):
    the others wait on a file lock and take over if the holder dies. Yields False if
    ``stop`` was set before the lock was acquired."""
    path = settings.data_dir / "email" / f"{role}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop.wait(poll_s):
                    yield False
                    return
        yield True
    finally:
        os.close(fd)  # closing releases the lock
