"""Composition of the email channel: ingester / sender over the bootstrap's dependencies."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
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
from projections.outbox.projection import QUEUED, OutboxProjection
from projections.outbox.view import OutboxEntry, OutboxView
from projections.views import ProjectionNotReadyError
from replays.rebuild import RebuildResult, rebuild
from touchstream.bootstrap import Dependencies
from touchstream.fleet import wiring as fleet
from touchstream.fleet.leases import LeaseGroup, Leases, acquire
from touchstream.settings import Settings, SettingsError

T = TypeVar("T")

# Every Message-ID the hub sends is ``<uuid@domain>`` (domain.customer.outbound_email_fields)
HUB_MESSAGE_ID = re.compile(r"<[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@[^<>]*>")


def imap_state_path(settings: Settings) -> Path:
    return fleet.imap_state_path(settings)


def imap_state(settings: Settings) -> ImapState:
    """The IMAP checkpoint/ledger/index: PostgreSQL when the stores are, else a SQLite
    file (the caller closes it)."""
    return fleet.open_imap_state(settings)


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
        self._caught_up_to: int | None = None

    def refresh(self) -> None:
        # A catch-up opens a read-store connection and an event source: ~12% of an email
        # ingest when each reply to unknown mail asked for one. If the log head has not
        # moved since a catch-up that began at that head, there is nothing to apply.
        head = int(self.deps.hub.recorder.max_notification_id() or 0)
        if head == self._caught_up_to:
            return
        self.deps.catch_up(self.projection)
        self._caught_up_to = head  # read before the catch-up: never past what it applied

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

    def still_due(self, message_id: str, attempts: int) -> bool:
        """After catching up: still queued with no attempt since it was listed (another
        sender may have sent it, or tried, meanwhile)."""
        self.refresh()
        return self.view.state_of(message_id) == (QUEUED, attempts)

    def message_for_envelope(self, envelope_id: str) -> str | None:
        self.refresh()
        return self.view.message_for_envelope(envelope_id)

    def sent_roots(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Thread roots of mail the hub sent, for replies that name only their parent.
        Ids the hub never makes are not asked about (nor do they cost a catch-up)."""
        ids = [i for i in message_ids if HUB_MESSAGE_ID.fullmatch(i)]
        if not ids:
            return {}
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
    return deps.metrics.instrument_sender(SmtpSender(
        config, deps.hub, HubOutbox(deps),
        claims=SendClaims(deps.leases, fleet.lease_owner(deps.settings),
                          send_claim_s(deps.settings, config)),
        attachments=deps.blobs))


def send_claim_s(settings: Settings, config: SmtpConfig) -> float:
    """How long a sender's claim on one email lasts: the lease plus three SMTP timeouts
    (connect, send, quit), so a slow send is never taken over while it is still going."""
    return settings.fleet.lease + 3 * config.timeout_s


class SendClaims:
    """One sender per queued email across the fleet: a lease per Message-ID, held from
    before the attempt until its outcome is recorded."""

    def __init__(self, leases: Leases, owner: str, ttl_s: float) -> None:
        self.leases = leases
        self.owner = owner
        self.ttl_s = ttl_s

    def claim(self, message_id: str) -> bool:
        return acquire(self.leases, "send:" + message_id, self.owner, self.ttl_s)

    def release(self, message_id: str) -> None:
        self.leases.release("send:" + message_id, self.owner)


def follow_imap(deps: Dependencies, stop: threading.Event,
                hooks: IngestHooks | None = None) -> None:
    """Follow the configured account's folders until ``stop``: one follower per
    (account, folder) across the fleet, by lease; the folders this process does not
    hold are retried at every renewal and taken over when their holder dies."""
    config = deps.imap
    if config is None:
        raise SettingsError("no IMAP account configured: set TOUCHSTREAM_IMAP_HOST and _USER")

    def work(owned: frozenset[str], round_over: threading.Event) -> None:
        mine = replace(config, folders=tuple(f for f in config.folders if f in owned))
        ingester = build_ingester(deps, config=mine, hooks=hooks)
        try:
            ingester.follow(round_over)
        finally:
            ingester.state.close()

    group = LeaseGroup(deps.leases, f"imap:{config.account_name}:", config.folders,
                       fleet.lease_owner(deps.settings), deps.settings.fleet.lease)
    group.run(stop, work)


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
        if self.role == "imap":
            follow_imap(self.deps, self._stop)
        else:  # every host sends; each email is claimed by one of them
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

