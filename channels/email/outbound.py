"""Delivering queued emails with aiosmtplib, and recording what happened.

The intent (``SendEmail``) is recorded first with a deterministic Message-ID;
this sender builds the same bytes for every attempt, asks for delivery status
notifications (``NOTIFY=FAILURE,DELAY``, ``RET=HDRS``, ``ENVID``) when the
server offers DSN, and classifies: 2xx → sent, 5xx → failed, anything else
(4xx, disconnect, timeout) → outcome unknown, retried later with backoff. The
write model keeps at most one "sent" per Message-ID whatever happens. The
queue comes from the outbox read model, never from loading aggregates, and
rebuilding that read model sends nothing.

Several senders (one per host) share the queue: before an attempt a sender
claims the email (``SendClaims``, a lease per Message-ID), then checks, caught
up with the log, that it is still queued with the attempts it was listed with;
the claim is released only after the outcome is recorded, so the next sender
to claim it sees that outcome. An email claimed elsewhere is skipped ("busy").

A campaign email (the outbox row names its campaign and purpose) is sent only
to someone who consents *at send time*: before each attempt the sender asks
the write model (``ClearMarketingEmail``), which records the email as
suppressed when consent is missing, withdrawn or expired; such an email is
never sent. It carries RFC 8058 one-click ``List-Unsubscribe`` headers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib

from channels.email.config import SmtpConfig
from channels.email.inbound import CommandSink
from commands import email_messages as em
from commands import marketing as cm

log = logging.getLogger("touchstream.email.smtp")


class PendingEmail(Protocol):
    """One queued email as the outbox read model gives it."""

    message_id: str
    customer_id: str
    envelope_id: str
    queued_at: datetime
    from_address: str
    to: list[str]
    cc: list[str]
    subject: str
    body_text: str
    in_reply_to: str | None
    references: list[str]
    attempts: int


class Outbox(Protocol):
    """The outbox read model: caught up from the event log, then asked what is due."""

    def refresh(self) -> None: ...

    def due(self, now: datetime, base: timedelta, cap: timedelta) -> Sequence[PendingEmail]: ...

    def still_due(self, message_id: str, attempts: int) -> bool:
        """Caught up with the log: still queued, with ``attempts`` attempts so far."""


class SendClaims(Protocol):
    """One sender per queued email at a time, across every sender sharing the queue."""

    def claim(self, message_id: str) -> bool:
        """Take the email for one attempt; False when another sender holds it."""

    def release(self, message_id: str) -> None:
        """Give it back once the attempt's outcome is recorded."""


class Attachments(Protocol):
    """Where a queued email's attachments are read (the blob store)."""

    def get(self, address: str) -> bytes: ...


def build_message(item: PendingEmail, attachments: Attachments | None = None) -> bytes:
    """The exact bytes of an email: the same for every attempt."""
    unsubscribe = getattr(item, "list_unsubscribe", None)
    # A folded URL would be encoded as RFC 2047 words and break; RFC 5322 allows lines of
    # up to 998 characters, so a campaign email's headers are not folded at 78.
    msg = EmailMessage(policy=SMTP.clone(max_line_length=998) if unsubscribe else SMTP)
    msg["From"] = item.from_address
    msg["To"] = ", ".join(item.to)
    if item.cc:
        msg["Cc"] = ", ".join(item.cc)
    msg["Subject"] = item.subject
    msg["Date"] = format_datetime(item.queued_at.astimezone(UTC))
    msg["Message-ID"] = item.message_id
    if item.in_reply_to:
        msg["In-Reply-To"] = item.in_reply_to
    if item.references:
        msg["References"] = " ".join(item.references)
    if unsubscribe:  # RFC 8058: a POST to this URL unsubscribes, no page to click through
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if auto := getattr(item, "auto_submitted", None):  # RFC 3834 §5: an automatic answer
        msg["Auto-Submitted"] = auto
    msg.set_content(item.body_text)
    if html := getattr(item, "body_html", None):
        msg.add_alternative(html, subtype="html")
    for part in getattr(item, "attachments", None) or []:
        if attachments is None:
            raise LookupError(f"{item.message_id} has attachments and no blob store was given")
        maintype, _, subtype = part["content_type"].partition("/")
        msg.add_attachment(attachments.get(part["address"]), maintype=maintype,
                           subtype=subtype or "octet-stream", filename=part["name"])
    return msg.as_bytes()


def dsn_options(server_offers_dsn: bool, envelope_id: str) -> tuple[list[str], list[str]]:
    """MAIL FROM and RCPT TO parameters asking for delivery status notifications."""
    if not server_offers_dsn:
        return [], []
    return ["RET=HDRS", f"ENVID={envelope_id}"], ["NOTIFY=FAILURE,DELAY"]


class SmtpSender:
    def __init__(
        self, config: SmtpConfig, sink: CommandSink, outbox: Outbox,
        *, clock: Callable[[], datetime] | None = None, actor: str = "smtp",
        claims: SendClaims | None = None, attachments: Attachments | None = None,
    ) -> None:
        self.attachments = attachments
        self.claims = claims  # None: the only sender (tests, one-shot CLI runs)
        self.config = config
        self.sink = sink
        self.outbox = outbox
        self.clock = clock or (lambda: datetime.now(UTC))
        self.actor = actor

    def run_once(self) -> list[str]:
        """Deliver every due email once; returns the outcomes ("sent", "failed", "unknown")."""
        self.outbox.refresh()
        cfg = self.config
        items = self.outbox.due(self.clock(), timedelta(seconds=cfg.retry_base_s),
                                timedelta(seconds=cfg.retry_max_s))
        if not items:
            return []
        return asyncio.run(self._deliver_all(items))

    def follow(self, stop: threading.Event) -> None:
        """Keep delivering until ``stop`` is set (a thread in ``serve`` or its own process)."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the store or the network: try again next round
                log.warning("smtp sender: %s: %s", type(exc).__name__, exc)
            stop.wait(self.config.poll_s)

    async def _deliver_all(self, items: Sequence[PendingEmail]) -> list[str]:
        return [await self.deliver(item) for item in items]

    async def deliver(self, item: PendingEmail) -> str:
        """One attempt, unless another sender holds the email or got to it first."""
        if self.claims is None:
            return await self._attempt(item)
        if not self.claims.claim(item.message_id):
            return "busy"
        try:
            if not self.outbox.still_due(item.message_id, item.attempts):
                return "busy"
            return await self._attempt(item)
        finally:
            self.claims.release(item.message_id)

    async def _attempt(self, item: PendingEmail) -> str:
        attempt = item.attempts + 1
        if self._suppressed(item):
            return "suppressed"
        try:
            response = await self._send(item)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(500 <= c < 600 for c in codes):
                return self._failed(item, attempt, f"recipients refused: {exc}")
            return self._unknown(item, attempt, f"recipients deferred: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                return self._failed(item, attempt, f"{exc.code} {exc.message}")
            return self._unknown(item, attempt, f"{exc.code} {exc.message}")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            return self._unknown(item, attempt, f"{type(exc).__name__}: {exc}")
        self.sink.execute(em.RecordEmailSent(
            customer_id=item.customer_id, message_id=item.message_id, attempt=attempt,  # type: ignore[arg-type]
            response=response[:2000], actor=self.actor, occurred_at=self.clock(),
        ))
        return "sent"

    def _suppressed(self, item: PendingEmail) -> bool:
        """A marketing send without valid consent now: recorded as suppressed, not sent."""
        purpose = getattr(item, "purpose", None)
        campaign = getattr(item, "campaign_id", None)
        if not purpose or not campaign:
            return False
        result = self.sink.execute(cm.ClearMarketingEmail(
            customer_id=item.customer_id, campaign_id=campaign, message_id=item.message_id,  # type: ignore[arg-type]
            purpose=purpose, actor=self.actor, occurred_at=self.clock()))
        return bool(result.event_ids) or result.duplicate

    async def _send(self, item: PendingEmail) -> str:
        cfg = self.config
        context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.security != "plain" else None
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout_s,
            use_tls=cfg.security == "tls", start_tls=cfg.security == "starttls",
            tls_context=context,
        )
        await smtp.connect()
        try:
            if cfg.user:
                await smtp.login(cfg.user, cfg.password or "")
            mail_opts, rcpt_opts = dsn_options(smtp.supports_extension("dsn"), item.envelope_id)
            _, response = await smtp.sendmail(
                item.from_address, [*item.to, *item.cc], build_message(item, self.attachments),
                mail_options=mail_opts, rcpt_options=rcpt_opts,
            )
        finally:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:  # already accepted or already lost
                log.debug("quit: %s", exc)
                smtp.close()
        return response

    def _failed(self, item: PendingEmail, attempt: int, reason: str, permanent: bool = True) -> str:
        self.sink.execute(em.RecordEmailSendFailed(
            customer_id=item.customer_id, message_id=item.message_id, attempt=attempt,  # type: ignore[arg-type]
            reason=reason[:2000], permanent=permanent, actor=self.actor, occurred_at=self.clock(),
        ))
        return "failed"

    def _unknown(self, item: PendingEmail, attempt: int, reason: str) -> str:
        self.sink.execute(em.RecordEmailOutcomeUnknown(
            customer_id=item.customer_id, message_id=item.message_id, attempt=attempt,  # type: ignore[arg-type]
            reason=reason[:2000], actor=self.actor, occurred_at=self.clock(),
        ))
        if attempt >= self.config.max_attempts:
            return self._failed(item, attempt, f"gave up after {attempt} attempts: {reason}",
                                permanent=False)
        return "unknown"
