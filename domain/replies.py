"""Replies: message templates, automatic acknowledgements (RFC 3834) and sent material.

A *message template* is a non-customer record (``MessageTemplate``, its own
stream): each change adds a numbered version for one language, so every email
rendered from it names the exact version it used and the history can be
replayed and audited. A template holds no personal data (the customer's data
comes in at render time, from the customer's own stream).

On the customer's stream (``Customer.BusinessEvent``, area ``replies``):

``TemplateRendered``   the email (or fax) just queued was rendered from a template
``AutoReplyQueued``    the queued email is an automatic acknowledgement of a new case
``AutoReplyWithheld``  a new case was not acknowledged, and why (a loop rule)
``MaterialSent``       a document from the library went out by email or fax

The loop rules (``auto_reply_refusal``) are pure: the inbound message's
headers, whether its sender bounced, and when that sender was last
auto-answered decide. The area state keeps, per recipient *key* (a keyed
digest made by the command layer, never the address), when it was last
auto-answered, so the per-address window holds on the write model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain import service
from domain.customer import Customer, Provenance
from domain.errors import DomainError
from domain.records import Record

AREA = "replies"
TEMPLATE_CHANNELS = ("email", "fax")
PURPOSES = ("staff-reply", "auto-ack", "campaign", "material")
_TEMPLATE_NAMESPACE = uuid5(NAMESPACE_URL, "touchstream:message-template")
#: ``Precedence`` values of mail nobody should answer automatically (RFC 3834 §2).
BULK_PRECEDENCE = ("bulk", "junk", "list")
#: Local parts of senders that never want an automatic answer (RFC 3834 §2).
_NO_REPLY_LOCALS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply",
                    "donotreply")


class TemplateError(DomainError):
    """Raised when a template change or choice is not possible (no version in any fitting
    language, an unknown channel, an empty body)."""


class AutoReplyError(DomainError):
    """Raised when an acknowledgement names a case the customer does not have."""


def template_id(name: str) -> UUID:
    """A template's id: the same for the same name everywhere (settings name templates)."""
    return uuid5(_TEMPLATE_NAMESPACE, name.strip().lower())


# -- the template record -------------------------------------------------------------
class MessageTemplate(Record):
    """A named email or fax template with numbered versions per language."""

    class Defined(Record.Created):
        name: str
        template_channel: str
        fallback_language: str

    class VersionAdded(Record.Event):
        language: str
        version: int
        subject: str
        body_text: str
        body_html: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.versions.setdefault(self.language, []).append({
                "version": self.version, "subject": self.subject,
                "body_text": self.body_text, "body_html": self.body_html})
            aggregate.latest = self.version

    def __init__(self, name: str, template_channel: str, fallback_language: str,
                 **_: Any) -> None:
        self.name = name
        self.template_channel = template_channel
        self.fallback_language = fallback_language
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.latest = 0

    def pick(self, language: str | None) -> tuple[str, dict[str, Any]]:
        """The newest version for ``language`` ("de-AT" falls back to "de"), else for the
        template's fallback language."""
        wanted = (language or "").strip().lower()
        for lang in (wanted, wanted.partition("-")[0], self.fallback_language):
            if lang and self.versions.get(lang):
                return lang, self.versions[lang][-1]
        raise TemplateError(f"template {self.name!r} has no version in {wanted or 'any'} "
                            f"or its fallback {self.fallback_language}")

    def version_of(self, language: str, number: int) -> dict[str, Any]:
        for v in self.versions.get(language, []):
            if v["version"] == number:
                return v
        raise TemplateError(f"template {self.name!r} has no version {number} in {language}")


def check_channel(channel: str) -> None:
    if channel not in TEMPLATE_CHANNELS:
        raise TemplateError(f"a template is for {' or '.join(TEMPLATE_CHANNELS)}, "
                            f"not {channel!r}")


def changed(template: MessageTemplate, language: str, subject: str, body_text: str,
            body_html: str | None) -> bool:
    """Whether these texts differ from the newest version in ``language`` (same: no event)."""
    if not body_text.strip():
        raise TemplateError("a template needs a text body")
    newest = (template.versions.get(language) or [None])[-1]
    return newest is None or (newest["subject"], newest["body_text"], newest["body_html"]) != (
        subject, body_text, body_html)


# -- customer events -------------------------------------------------------------------
class TemplateRendered(Customer.BusinessEvent):
    """The email queued just before (or the fax) was rendered from a template version."""

    message_id: str
    template_id: str
    template_version: int
    language: str
    purpose: str
    variables: dict[str, str]  # what the sender filled in: personal
    body_html: str | None  # the rendered HTML alternative (the text is on the queued email)


class AutoReplyQueued(Customer.BusinessEvent):
    """The email queued just before acknowledges a new case automatically (RFC 3834)."""

    case_id: str
    trigger_event_id: str
    message_id: str
    recipient_key: str  # a keyed digest of the address (the window is per address)

    def apply(self, aggregate: Any) -> None:
        area = aggregate.area(AREA)
        area.setdefault("acknowledged", {})[self.trigger_event_id] = self.case_id
        area.setdefault("last_auto_reply", {})[self.recipient_key] = \
            self.occurred_at.isoformat()


class AutoReplyWithheld(Customer.BusinessEvent):
    """A new case was deliberately not acknowledged; ``reason`` is the loop rule."""

    case_id: str
    trigger_event_id: str
    reason: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("acknowledged", {})[self.trigger_event_id] = None


class MaterialSent(Customer.BusinessEvent):
    """A document from the library sent to the customer: by email (the queued email's
    ``message_id`` carries it as an attachment) or by fax (queued for the fax provider)."""

    material_id: str  # the blob address of the document
    name: str
    content_type: str
    size: int
    send_channel: str
    message_id: str | None
    fax_id: str | None
    rule: str | None  # the rule that sent it (None: staff)


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (
    TemplateRendered, AutoReplyQueued, AutoReplyWithheld, MaterialSent)


# -- RFC 3834 loop prevention ---------------------------------------------------------
def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def auto_reply_refusal(headers: Mapping[str, str], *, sender: str | None, bounced: bool,
                       last_replied_at: datetime | None, now: datetime,
                       window: timedelta) -> str | None:
    """Why an automatic reply to this message must not be sent, or None to send it.

    In order: no sender or a sender that never wants answers (``MAILER-DAEMON``, a
    null ``Return-Path``, ``noreply``…), ``Auto-Submitted`` anything but ``no``,
    ``Precedence: bulk/junk/list``, a ``List-Id`` (a mailing list), an address that
    bounced, and an address answered automatically within ``window``."""
    address = (sender or "").strip().lower()
    local = address.partition("@")[0]
    return_path = _header(headers, "Return-Path")
    if not address or "@" not in address:
        return "no-sender"
    if (return_path is not None and return_path.strip() in ("<>", "")) or \
            local in _NO_REPLY_LOCALS or local.startswith("owner-") or \
            local.endswith("-request"):
        return "no-reply-sender"
    auto = _header(headers, "Auto-Submitted")
    if auto is not None and auto.strip().split(";")[0].strip().lower() != "no":
        return "auto-submitted"
    precedence = (_header(headers, "Precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return "precedence-" + precedence
    if _header(headers, "List-Id") is not None:
        return "mailing-list"
    if bounced:
        return "bounced"
    if last_replied_at is not None and now - last_replied_at < window:
        return "recently-auto-replied"
    return None


def acknowledgement_due(customer: Customer, *, case_id: str, trigger_event_id: str,
                        recipient_key: str, now: datetime, window: timedelta,
                        refusal: str | None) -> str | None:
    """The final word on an acknowledgement: ``"done"`` when this trigger was answered
    (or withheld) already, a refusal reason, or None to send. The window is checked
    here too, on the write model's own record of auto-replies to this address."""
    area = customer.area(AREA)
    if trigger_event_id in area.get("acknowledged", {}):
        return "done"
    if case_id not in customer.area(service.AREA).get("cases", {}):
        raise AutoReplyError(f"customer has no case {case_id}")
    if refusal is not None:
        return refusal
    last = area.get("last_auto_reply", {}).get(recipient_key)
    if last is not None and now - datetime.fromisoformat(last) < window:
        return "recently-auto-replied"
    return None


def withhold(customer: Customer, prov: Provenance, *, case_id: str, trigger_event_id: str,
             reason: str) -> None:
    customer.record_business(AutoReplyWithheld, prov, case_id=case_id,
                             trigger_event_id=trigger_event_id, reason=reason)
