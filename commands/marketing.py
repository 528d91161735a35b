"""Marketing commands: consent, double opt-in, campaigns, segments, campaign email sends.

Every handler reads load -> decide -> save through ``on_customer`` (consent,
campaign emails: the customer's stream) or ``on_record`` (campaigns, segments),
idempotent by source key. ``ClearMarketingEmail`` is the outbox's question at
send time: it records ``CampaignEmailSuppressed`` when the customer has no valid
consent then, and records nothing (the email may go) when they have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from html import escape
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import Field, model_validator

from commands import messages as m
from commands import replies
from commands.context import WriteContext
from commands.handling import on_customer
from commands.identity import normalise
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import RecordProvenance, load, on_record
from commands.replies import Variables
from domain import marketing as mk
from domain import replies as rd
from domain.customer import Customer, Provenance
from domain.errors import DomainError

_IDS = UUID("5b0f6a52-0f55-4c8e-9a35-7d1c6ce0a3f1")
ConsentChannel = Literal["email", "phone"]
Purpose = Literal["marketing", "newsletter"]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$",
                            description="Upper-case code people type or forms carry.")]


class NoEmailAddressError(DomainError):
    """Raised when an email must go to a customer who has no email address."""


class GiveConsent(m.Command):
    """Record consent given, with its evidence (a form submission id or a call id)."""

    kind: Literal["give-consent"] = "give-consent"
    customer_id: UUID
    consent_channel: ConsentChannel
    purpose: Purpose
    evidence_kind: Literal["form-submission", "call"]
    evidence_id: m.Short
    expires_at: m.AwareDatetime | None = None

    def default_source_key(self) -> str:
        return (f"give-consent:{self.customer_id}:{self.consent_channel}:{self.purpose}:"
                f"{self.evidence_kind}:{self.evidence_id}")


class WithdrawConsent(m.Command):
    """Withdraw a consent (at the customer's request, or an unsubscribe from a campaign)."""

    kind: Literal["withdraw-consent"] = "withdraw-consent"
    customer_id: UUID
    consent_channel: ConsentChannel
    purpose: Purpose
    reason: Literal["request", "unsubscribe"] = "request"
    campaign_id: UUID | None = None

    def default_source_key(self) -> str | None:
        if self.campaign_id is None:
            return None
        return f"withdraw-consent:{self.campaign_id}:{self.customer_id}:{self.purpose}"


class ExpireConsents(m.Command):
    """Record the expiry of every consent of the customer past its end at ``as_of``."""

    kind: Literal["expire-consents"] = "expire-consents"
    customer_id: UUID
    as_of: m.AwareDatetime

    def default_source_key(self) -> str:
        return f"expire-consents:{self.customer_id}:{self.as_of.isoformat()}"


class RequestConsent(m.Command):
    """Start a double opt-in: record the request and email the signed confirmation link."""

    kind: Literal["request-consent"] = "request-consent"
    customer_id: UUID
    request_id: UUID
    consent_channel: ConsentChannel = "email"
    purpose: Purpose
    evidence_kind: Literal["form-submission", "call"] = "form-submission"
    evidence_id: m.Short | None = None
    from_address: m.Short
    confirm_url: m.Short = Field(description="The signed link the hub serves (built by it).")

    def default_source_key(self) -> str:
        return f"request-consent:{self.request_id}"


class ConfirmConsent(m.Command):
    """The double opt-in link was followed: the consent is given."""

    kind: Literal["confirm-consent"] = "confirm-consent"
    customer_id: UUID
    request_id: UUID

    def default_source_key(self) -> str:
        return f"confirm-consent:{self.request_id}"


class DefineCampaign(m.Command):
    kind: Literal["define-campaign"] = "define-campaign"
    campaign_id: UUID | None = Field(default=None, description="Derived from the key if absent.")
    name: m.Short
    channel: Literal["email", "phone", "web"]
    purpose: Purpose = "marketing"
    budget: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    starts_on: date
    ends_on: date
    segment_id: UUID | None = None
    code: Code
    tracked_number: m.Short | None = Field(default=None, description="Calls to it respond.")
    attribution_window_days: Annotated[int, Field(ge=0, le=365)] = 30


class LaunchCampaign(m.Command):
    kind: Literal["launch-campaign"] = "launch-campaign"
    campaign_id: UUID

    def default_source_key(self) -> str:
        return f"launch-campaign:{self.campaign_id}"


class CloseCampaign(m.Command):
    kind: Literal["close-campaign"] = "close-campaign"
    campaign_id: UUID

    def default_source_key(self) -> str:
        return f"close-campaign:{self.campaign_id}"


class DefineSegment(m.Command):
    """Define (or redefine) a segment by a rule (README, Marketing: segments)."""

    kind: Literal["define-segment"] = "define-segment"
    segment_id: UUID | None = Field(default=None, description="Derived from the key if absent.")
    name: m.Short
    rule: dict[str, Any]


class QueueCampaignEmail(m.Command):
    """One campaign email to one customer, through the outbox (Message-ID from the key)."""

    kind: Literal["queue-campaign-email"] = "queue-campaign-email"
    customer_id: UUID
    campaign_id: UUID
    from_address: m.Short
    subject: Annotated[str, Field(max_length=2000)] = Field(
        default="", description="The subject; with a template, it overrides the template's.")
    body_text: Annotated[str, Field(max_length=64_000)] = Field(
        default="", description="The text; or give template_id.")
    unsubscribe_url: m.Short
    template_id: UUID | None = Field(default=None, description=(
        "Render the subject and text (and an HTML alternative) from this message template, "
        "in each customer's own language; the unsubscribe link is added below either way."))
    variables: Variables = Field(default_factory=dict, description="The template's variables.")

    @model_validator(mode="after")
    def _text_or_template(self) -> QueueCampaignEmail:
        if self.template_id is None and not (self.subject and self.body_text):
            raise ValueError("give subject and body_text, or a template_id to render them from")
        if self.template_id is None and self.variables:
            raise ValueError("variables go with a template_id")
        return self

    def default_source_key(self) -> str:
        return f"queue-campaign-email:{self.campaign_id}:{self.customer_id}"


class ClearMarketingEmail(m.Command):
    """The outbox's check at send time; suppresses the email when consent is not valid."""

    kind: Literal["clear-marketing-email"] = "clear-marketing-email"
    customer_id: UUID
    campaign_id: UUID
    message_id: m.Short
    purpose: Purpose

    def default_source_key(self) -> str:
        return f"clear-marketing-email:{self.message_id}"


def record_id(w: WriteContext, cmd: m.Command, given: UUID | None) -> UUID:
    return given if given is not None else uuid5(_IDS, w.naming.digest(source_key(cmd)))


# -- consent -------------------------------------------------------------------------------
def _on(hub: Any, cmd: m.Command, decide: Callable[[Customer, Iterator[Provenance]], object],
        channel: str = "system", direction: str = "internal") -> Recorded:
    """Decide on the command's customer (what ``decide`` returns is not needed)."""
    def run(customer: Customer, provs: Iterator[Provenance]) -> None:
        decide(customer, provs)

    customer_id = cmd.customer_id  # type: ignore[attr-defined]
    return on_customer(hub.context, customer_id, source_key(cmd), run, cmd, channel,
                       direction)


def give_consent(hub: Any, cmd: GiveConsent) -> Recorded:
    return _on(hub, cmd, lambda c, p: mk.give_consent(
        c, next(p), cmd.consent_channel, cmd.purpose, cmd.evidence_kind, cmd.evidence_id,
        cmd.expires_at))


def withdraw_consent(hub: Any, cmd: WithdrawConsent) -> Recorded:
    campaign = str(cmd.campaign_id) if cmd.campaign_id else None
    return _on(hub, cmd, lambda c, p: mk.withdraw_consent(
        c, next(p), cmd.consent_channel, cmd.purpose, cmd.reason, campaign))


def expire_consents(hub: Any, cmd: ExpireConsents) -> Recorded:
    return _on(hub, cmd, lambda c, p: mk.expire_consents(c, p, cmd.as_of))


def request_consent(hub: Any, cmd: RequestConsent) -> Recorded:
    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        to = _email_of(customer)
        mk.request_consent(customer, next(provs), str(cmd.request_id), cmd.consent_channel,
                           cmd.purpose, cmd.evidence_kind, cmd.evidence_id)
        body = ("Please confirm that you want to receive our "
                f"{'newsletter' if cmd.purpose == 'newsletter' else 'marketing messages'} "
                f"by {'email' if cmd.consent_channel == 'email' else 'phone'}:\n\n"
                f"{cmd.confirm_url}\n\nIf you did not ask for this, ignore this email.\n")
        customer.record(Customer.EmailQueued, next(provs), from_address=cmd.from_address,
                        to=[to], cc=[], subject="Please confirm your subscription",
                        body_text=body, in_reply_to=None, references=[])

    return _on(hub, cmd, decide, "email", "outbound")


def confirm_consent(hub: Any, cmd: ConfirmConsent) -> Recorded:
    return _on(hub, cmd, lambda c, p: mk.confirm_consent(
        c, next(p), str(cmd.request_id), None))


def _email_of(customer: Customer) -> str:
    found = customer.contact_points.get("email", [])
    if not found:
        raise NoEmailAddressError(f"customer {customer.id} has no email address")
    return str(found[0])


# -- campaigns and segments ----------------------------------------------------------------
def define_campaign(hub: Any, cmd: DefineCampaign) -> Recorded:
    w: WriteContext = hub.context
    rid = record_id(w, cmd, cmd.campaign_id)
    starts, ends = cmd.starts_on.isoformat(), cmd.ends_on.isoformat()
    mk.check_campaign(cmd.channel, cmd.purpose, starts, ends, cmd.attribution_window_days)
    number = normalise("phone", cmd.tracked_number, w.default_region) \
        if cmd.tracked_number else None

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> mk.Campaign:
        if record is not None:
            raise mk.CampaignStateError(f"campaign {rid} is defined already")
        return mk.Campaign._create(  # type: ignore[no-any-return]
            mk.Campaign.Defined, id=rid, name=cmd.name, channel=cmd.channel,
            purpose=cmd.purpose, budget=f"{cmd.budget:.2f}", currency=cmd.currency,
            starts_on=starts, ends_on=ends,
            segment_id=str(cmd.segment_id) if cmd.segment_id else None, code=cmd.code,
            tracked_number=number, attribution_window_days=cmd.attribution_window_days,
            **next(provs).fields())

    return on_record(w, "campaign", rid, cmd, decide)


def _campaign_step(hub: Any, cmd: LaunchCampaign | CloseCampaign, step: str) -> Recorded:
    def decide(record: Any, provs: Iterator[RecordProvenance]) -> mk.Campaign:
        if record is None:
            load(hub.context, "campaign", cmd.campaign_id)  # raises RecordNotFoundError
        getattr(record, step)(next(provs).fields())
        return record  # type: ignore[no-any-return]

    return on_record(hub.context, "campaign", cmd.campaign_id, cmd, decide)


def define_segment(hub: Any, cmd: DefineSegment) -> Recorded:
    w: WriteContext = hub.context
    rid = record_id(w, cmd, cmd.segment_id)
    mk.check_rule(cmd.rule)

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> mk.Segment:
        fields = next(provs).fields()
        if record is None:
            return mk.Segment._create(  # type: ignore[no-any-return]
                mk.Segment.Defined, id=rid, name=cmd.name, rule=cmd.rule, **fields)
        if record.name != cmd.name or record.rule != cmd.rule:
            record.trigger_event(mk.Segment.Redefined, name=cmd.name, rule=cmd.rule, **fields)
        return record  # type: ignore[no-any-return]

    return on_record(w, "segment", rid, cmd, decide)


def queue_campaign_email(hub: Any, cmd: QueueCampaignEmail) -> Recorded:
    key = source_key(cmd)
    if (done := hub.context.keys.lookup(key)) is not None:
        return done  # queued before: a retry answers so even once the campaign closed
    campaign = load(hub.context, "campaign", cmd.campaign_id)
    campaign.check_sendable(cmd.occurred_at or hub.context.clock())
    found = None if cmd.template_id is None else replies.template(hub, cmd.template_id)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        to = _email_of(customer)
        subject, text, html = cmd.subject, cmd.body_text, None
        if found is not None:
            lang, number, out = replies.render_for(customer, found, dict(cmd.variables))
            subject, text = cmd.subject or out.subject, out.body_text
            if out.body_html is not None:
                url = escape(cmd.unsubscribe_url)
                html = f'{out.body_html}<p>Unsubscribe: <a href="{url}">{url}</a></p>'
        body = f"{text}\n\n--\nUnsubscribe: {cmd.unsubscribe_url}\n"
        customer.record(Customer.EmailQueued, next(provs), from_address=cmd.from_address,
                        to=[to], cc=[], subject=subject, body_text=body, in_reply_to=None,
                        references=[])
        queued = customer.pending_events[-1]
        message_id = queued.message_id  # type: ignore[attr-defined]
        customer.record_business(mk.CampaignEmailQueued, next(provs),
                                 campaign_id=str(cmd.campaign_id), message_id=message_id,
                                 purpose=campaign.purpose, unsubscribe_url=cmd.unsubscribe_url)
        if found is not None:
            customer.record_business(rd.TemplateRendered, next(provs), message_id=message_id,
                                     template_id=str(found.id), template_version=number,
                                     language=lang, purpose="campaign",
                                     variables=dict(cmd.variables), body_html=html)

    return on_customer(hub.context, cmd.customer_id, key, decide, cmd, "email", "outbound",
                       looked_up=True)


def clear_marketing_email(hub: Any, cmd: ClearMarketingEmail) -> Recorded:
    return _on(hub, cmd, lambda c, p: mk.suppress_unless_consented(
        c, next(p), str(cmd.campaign_id), cmd.message_id, cmd.purpose))


HANDLERS: dict[type, Callable[[Any, Any], Recorded]] = {
    GiveConsent: give_consent,
    WithdrawConsent: withdraw_consent,
    ExpireConsents: expire_consents,
    RequestConsent: request_consent,
    ConfirmConsent: confirm_consent,
    DefineCampaign: define_campaign,
    LaunchCampaign: lambda hub, cmd: _campaign_step(hub, cmd, "launch"),
    CloseCampaign: lambda hub, cmd: _campaign_step(hub, cmd, "close"),
    DefineSegment: define_segment,
    QueueCampaignEmail: queue_campaign_email,
    ClearMarketingEmail: clear_marketing_email,
}
