"""Composition of the email channel: ingester / sender over the bootstrap's dependencies."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from channels.email.config import ImapConfig, SmtpConfig
from channels.email.imap import ImapIngester, IngestHooks
from channels.email.inbound import InboundMail
from channels.email.outbound import SmtpSender
from channels.email.state import ImapState
from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import Hub
from commands.ports import Recorded
from projections.engine import Worker
from projections.outbox.projection import OutboxProjection
from projections.outbox.view import OutboxEntry, OutboxView
from projections.views import ProjectionNotReadyError
from replays.rebuild import RebuildResult, rebuild
from touchstream.bootstrap import Dependencies
from touchstream.settings import Settings, SettingsError

T = TypeVar("T")


def imap_state_path(settings: Settings) -> Path:
    return settings.data_dir / "email" / "imap-state.db"


def imap_state(settings: Settings) -> ImapState:
    """The IMAP checkpoint/ledger/index file (the caller closes it)."""
    return ImapState(imap_state_path(settings))


def build_ingester(deps: Dependencies, *, config: ImapConfig | None = None,
                   hooks: IngestHooks | None = None) -> ImapIngester:
    """The IMAP ingester for the configured account (``TOUCHSTREAM_IMAP_*``)."""
    config = config or deps.imap
    if config is None:
        raise SettingsError("no IMAP account configured: set TOUCHSTREAM_IMAP_HOST and _USER")
    hub = deps.hub
    outbox = HubOutbox(deps)
    state = imap_state(deps.settings)
    mail = InboundMail(hub, deps.blobs, deps.inbound_rules,
                       envelope_lookup=outbox.message_for_envelope,
                       sent_lookup=outbox.customer_for_message, sent_roots=outbox.sent_roots,
                       batch_sink=BulkSink(hub), index=state)
    return ImapIngester(config, deps.metrics.instrument_inbound(mail), state, hooks=hooks)


class BulkSink:
    """The write model's bulk path as the email channel's batch sink: one IMAP batch is
    recorded in a few transactions, with the same source-key dedup."""

    def __init__(self, hub: Hub) -> None:
        self.importer = BulkImporter(hub)

    def execute_many(self, commands: Sequence[m.Touchpoint]) -> list[Recorded | str]:
        return [r.recorded if r.recorded is not None else (r.error or "refused")
                for r in self.importer.import_history(commands)]


class HubOutbox:
    """The outbox read model as the sender's and the bounce matcher's port.

    The outbox is a projection like every read model (``projections.outbox``): the
    projection runner keeps it, and ``refresh`` catches its live generation up to the
    log head first, so the sender never works from a stale queue. Both advance it
    under the engine's position check, so each event is applied once.
    """

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.projection = OutboxProjection()
        self.view = OutboxView(deps.read_store)

    def refresh(self) -> None:
        db = self.deps.read_store.connect()
        source = self.deps.event_source()
        try:
            Worker(db, source, [(self.projection, None)]).catch_up()
        finally:
            source.close()
            db.close()

    def rebuild(self) -> RebuildResult:
        """Rebuild from position 0 beside the live generation and swap (sends nothing)."""
        source = self.deps.event_source()
        try:
            (result,) = rebuild(self.deps.read_store, source, [self.projection])
        finally:
            source.close()
        return result

    def due(self, now: datetime, base: timedelta, cap: timedelta) -> list[OutboxEntry]:
        return self.view.due(now, base, cap)

    def message_for_envelope(self, envelope_id: str) -> str | None:
        self.refresh()
        return self.view.message_for_envelope(envelope_id)

    def sent_roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Thread roots of mail the hub sent, for replies that name only their parent."""
        ids = list(message_ids)
        found = self._known(lambda: self.view.roots(ids), {})
        if len(found) < len(set(ids)):
            self.refresh()
            found = self.view.roots(ids)
        return found

    def customer_for_message(self, message_id: str) -> str | None:
        """The customer of mail the hub sent under ``message_id`` (None: not sent here)."""
        found = self._known(lambda: self.view.customer_for_message(message_id), None)
        if found is None:
            self.refresh()
            found = self.view.customer_for_message(message_id)
        return found

    @staticmethod
    def _known(query: Callable[[], T], never_built: T) -> T:
        # Rows never change once queued, so a hit needs no catch-up; only a miss
        # (or a read model never built) pays for one.
        try:
            return query()
        except ProjectionNotReadyError:
            return never_built


def build_sender(deps: Dependencies, *, config: SmtpConfig | None = None) -> SmtpSender:
    """The SMTP sender for the configured relay (``TOUCHSTREAM_SMTP_*``)."""
    config = config or deps.smtp
    if config is None:
        raise SettingsError("no SMTP relay configured: set TOUCHSTREAM_SMTP_HOST")
    return deps.metrics.instrument_sender(SmtpSender(config, deps.hub, HubOutbox(deps)))


class EmailService:
    """IMAP following or SMTP sending in a thread beside the API (``touchstream serve``)."""

    def __init__(self, deps: Dependencies, role: str) -> None:
        self.deps = deps
        self.role = role  # "imap" or "smtp"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"touchstream-{self.role}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with exclusive_runner(self.deps.settings, self.role, self._stop) as acquired:
            if not acquired:
                return
            if self.role == "imap":
                ingester = build_ingester(self.deps)
                try:
                    ingester.follow(self._stop)
                finally:
                    ingester.state.close()
            else:
                build_sender(self.deps).follow(self._stop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def email_services(deps: Dependencies) -> list[EmailService]:
    """The email services configured: an IMAP follower and/or an SMTP sender."""
    services = []
    if deps.imap is not None:
        services.append(EmailService(deps, "imap"))
    if deps.smtp is not None:
        services.append(EmailService(deps, "smtp"))
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
