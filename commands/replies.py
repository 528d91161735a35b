"""Reply commands: message templates, templated staff replies, automatic
acknowledgements and sent material.

* ``SaveTemplate`` adds a version of a template (a ``MessageTemplate`` record),
  once per source key; identical texts record nothing.
* ``SendEmail`` with a ``template_id`` (the staff reply): rendered against the
  customer's data, queued through the outbox like any email, and marked with
  the template version it used (``TemplateRendered``) in the same save.
* ``AcknowledgeCase`` (the auto-reply policy sends it, keyed by the event that
  opened the case, so its Message-ID is the same on every retry): the loop
  rules decide; a reply is queued with ``Auto-Submitted: auto-replied`` in the
  thread of the inbound message, or the refusal is recorded.
* ``SendMaterial``: a document from the library (the blob store) by email, as
  an attachment through the outbox, or by fax, recorded as an outbound fax
  queued for the provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from commands import email_messages as em
from commands import messages as m
from commands.context import WriteContext
from commands.handling import on_customer
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import RecordProvenance, load, on_record
from commands.rendering import Rendered, TemplateRenderError, context, render
from commands.touchpoints import record_touchpoint
from domain import replies as r
from domain.customer import Customer, Provenance
from domain.errors import DomainError
from domain.service import join_thread

KIND = "message-template"
Language = Annotated[str, Field(min_length=2, max_length=20, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")]
Variables = Annotated[dict[Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                           Annotated[str, Field(max_length=5000)]], Field(max_length=50)]
Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@/-]+$")]


class NoEmailAddressError(DomainError):
    """Raised when a reply or material by email is for a customer without an email address
    (or a fax for one without a fax number)."""


class SaveTemplate(m.Command):
    """Add a version of a message template (created on first save). The id is derived
    from the name, so settings and rules can name templates."""

    kind: Literal["save-template"] = "save-template"
    name: Code
    template_channel: Literal["email", "fax"] = "email"
    language: Language
    fallback_language: Language = "en"
    subject: Annotated[str, Field(max_length=2000)] = ""
    body_text: Annotated[str, Field(min_length=1, max_length=64_000)]
    body_html: Annotated[str, Field(max_length=200_000)] | None = None


class AcknowledgeCase(m.Command):
    """Acknowledge a new case automatically (the auto-reply policy sends it): the loop
    facts come from the auto-replies read model and the inbound message's headers."""

    kind: Literal["acknowledge-case"] = "acknowledge-case"
    customer_id: UUID
    case_id: UUID
    trigger_event_id: UUID = Field(description="The event that opened the case.")
    template: Code = "auto-ack"
    from_address: m.Short
    to: m.Short = Field(description="The inbound message's sender.")
    in_reply_to: m.Short | None = None
    references: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=200)] = \
        Field(default_factory=list)
    headers: Annotated[dict[Annotated[str, Field(max_length=100)],
                            Annotated[str, Field(max_length=2000)]], Field(max_length=20)] = Field(
        default_factory=dict, description="The inbound message's loop headers "
        "(Auto-Submitted, Precedence, List-Id, Return-Path).")
    variables: Variables = Field(default_factory=dict, description=(
        "What the template may use beside the customer and case (the inbound subject)."))
    bounced: bool = False
    last_replied_at: m.AwareDatetime | None = None
    window_days: Annotated[int, Field(ge=0, le=365)] = 4

    def default_source_key(self) -> str:
        return f"acknowledge-case:{self.trigger_event_id}"


class SendMaterial(m.Command):
    """Send a document from the library by email (an attachment) or fax."""

    kind: Literal["send-material"] = "send-material"
    customer_id: UUID
    material_id: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="The document's address in the blob store.")
    name: m.Short
    content_type: m.Short = "application/pdf"
    size: Annotated[int, Field(ge=0)]
    send_channel: Literal["email", "fax"] = "email"
    from_address: m.Short | None = Field(default=None, description="For email.")
    subject: Annotated[str, Field(max_length=2000)] = ""
    body_text: Annotated[str, Field(max_length=64_000)] = ""
    template_id: UUID | None = None
    variables: Variables = Field(default_factory=dict)
    rule: Code | None = None
    send_id: UUID = Field(description="The send's id; a retry with it sends once.")

    def default_source_key(self) -> str:
        return f"send-material:{self.send_id}"


# -- templates ----------------------------------------------------------------------------
def save_template(w: Any, cmd: SaveTemplate) -> Recorded:
    rid = r.template_id(cmd.name)
    language = cmd.language.lower()

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> r.MessageTemplate:
        r.check_channel(cmd.template_channel)
        fields = next(provs).fields()
        if record is None:
            record = r.MessageTemplate._create(
                r.MessageTemplate.Defined, id=rid, name=cmd.name,
                template_channel=cmd.template_channel,
                fallback_language=cmd.fallback_language.lower(), **fields)
            fields = next(provs).fields()
        elif record.template_channel != cmd.template_channel:
            raise r.TemplateError(f"template {cmd.name!r} is for {record.template_channel}")
        if r.changed(record, language, cmd.subject, cmd.body_text, cmd.body_html):
            record.trigger_event(r.MessageTemplate.VersionAdded, language=language,
                                 version=record.latest + 1, subject=cmd.subject,
                                 body_text=cmd.body_text, body_html=cmd.body_html, **fields)
        return record  # type: ignore[no-any-return]

    return on_record(_ctx(w), KIND, rid, cmd, decide)


def template(w: Any, template_ref: UUID | str) -> r.MessageTemplate:
    """A template by id or name (``RecordNotFoundError`` when there is none)."""
    rid = template_ref if isinstance(template_ref, UUID) else _id_of(template_ref)
    return load(_ctx(w), KIND, rid)  # type: ignore[no-any-return]


def _id_of(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        return r.template_id(ref)


def preview(w: Any, template_ref: UUID | str, customer_id: UUID, *,
            variables: dict[str, str], language: str | None = None,
            case_id: str | None = None) -> dict[str, Any]:
    """Render a template against a customer's data without sending or recording anything."""
    found = template(w, template_ref)
    customer = _ctx(w).store.load(customer_id)
    lang, version = found.pick(language or customer.profile.get("language"))
    out = render(version, context(customer, variables, case_id))
    return {"template_id": str(found.id), "name": found.name, "channel": found.template_channel,
            "language": lang, "version": version["version"], "subject": out.subject,
            "body_text": out.body_text, "body_html": out.body_html}


def render_for(customer: Customer, found: r.MessageTemplate, variables: dict[str, str],
               language: str | None = None, case_id: str | None = None,
               ) -> tuple[str, int, Rendered]:
    """(language, version number, rendering) of ``found`` for ``customer`` (their own
    language unless one is given): for any command that queues a templated email."""
    lang, version = found.pick(language or customer.profile.get("language"))
    return lang, version["version"], render(version, context(customer, variables, case_id))


def _queue(customer: Customer, provs: Iterator[Provenance], *, found: r.MessageTemplate | None,
           lang: str, number: int, out: Rendered, purpose: str, variables: dict[str, str],
           **email: Any) -> str:
    """Queue one email (and mark its template); returns its Message-ID."""
    customer.record(Customer.EmailQueued, next(provs), cc=[], subject=out.subject,
                    body_text=out.body_text, **email)
    queued = customer.pending_events[-1]
    join_thread(customer, queued)  # type: ignore[arg-type]
    message_id = str(queued.message_id)  # type: ignore[attr-defined]
    if found is not None:
        customer.record_business(r.TemplateRendered, next(provs), message_id=message_id,
                                 template_id=str(found.id), template_version=number,
                                 language=lang, purpose=purpose, variables=variables,
                                 body_html=out.body_html)
    return message_id


# -- staff replies ------------------------------------------------------------------------
def send_email(w: Any, cmd: em.SendEmail) -> Recorded:
    """A staff email: as before without a template; with one, rendered and marked."""
    if cmd.template_id is None:
        return record_touchpoint(_ctx(w), cmd)
    if cmd.customer_id is None:
        raise NoEmailAddressError("a templated email names its customer_id")
    found = template(w, cmd.template_id)
    case = None if cmd.case_id is None else str(cmd.case_id)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        lang, number, out = render_for(customer, found, dict(cmd.variables), cmd.language, case)
        subject = cmd.subject or out.subject
        _queue(customer, provs, found=found, lang=lang, number=number,
               out=Rendered(subject, out.body_text, out.body_html), purpose="staff-reply",
               variables=dict(cmd.variables), from_address=cmd.from_address, to=list(cmd.to),
               in_reply_to=cmd.in_reply_to, references=list(cmd.references))

    return on_customer(_ctx(w), cmd.customer_id, source_key(cmd), decide, cmd, "email",
                       "outbound")


# -- automatic acknowledgements -------------------------------------------------------------
def acknowledge_case(w: Any, cmd: AcknowledgeCase) -> Recorded:
    ctx = _ctx(w)
    now = cmd.occurred_at or ctx.clock()
    window = timedelta(days=cmd.window_days)
    recipient_key = ctx.naming.digest(f"auto-reply-to:{cmd.to.strip().lower()}")
    refusal = r.auto_reply_refusal(cmd.headers, sender=cmd.to, bounced=cmd.bounced,
                                   last_replied_at=cmd.last_replied_at, now=now, window=window)
    found = None if refusal else template(w, cmd.template)
    case, trigger = str(cmd.case_id), str(cmd.trigger_event_id)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        verdict = r.acknowledgement_due(customer, case_id=case, trigger_event_id=trigger,
                                        recipient_key=recipient_key, now=now, window=window,
                                        refusal=refusal)
        if verdict == "done":
            return
        if verdict is not None or found is None:
            r.withhold(customer, next(provs), case_id=case, trigger_event_id=trigger,
                       reason=verdict or "no-template")
            return
        try:
            lang, number, out = render_for(customer, found, dict(cmd.variables), None, case)
        except TemplateRenderError:
            # recorded once, not retried on every pass: an acknowledgement is only worth
            # sending while the case is new, and the template is fixed for the next cases
            r.withhold(customer, next(provs), case_id=case, trigger_event_id=trigger,
                       reason="template-error")
            return
        message_id = _queue(customer, provs, found=found, lang=lang, number=number, out=out,
                            purpose="auto-ack", variables=dict(cmd.variables), from_address=cmd.from_address,
                            to=[cmd.to], in_reply_to=cmd.in_reply_to,
                            references=list(cmd.references))
        customer.record_business(r.AutoReplyQueued, next(provs), case_id=case,
                                 trigger_event_id=trigger, message_id=message_id,
                                 recipient_key=recipient_key)

    return on_customer(ctx, cmd.customer_id, source_key(cmd), decide, cmd, "email", "outbound")


# -- material ------------------------------------------------------------------------------
def send_material(w: Any, cmd: SendMaterial) -> Recorded:
    ctx = _ctx(w)
    found = None if cmd.template_id is None else template(w, cmd.template_id)
    key = source_key(cmd)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        message_id = fax_id = None
        if cmd.send_channel == "email":
            to = customer.contact_points.get("email", [])
            if not to or not cmd.from_address:
                raise NoEmailAddressError(
                    "material by email needs the customer's email address and a from_address")
            if found is not None:
                lang, number, out = render_for(customer, found, dict(cmd.variables), None, None)
            else:
                lang, number, out = "", 0, Rendered(cmd.subject or cmd.name,
                                                     cmd.body_text or f"{cmd.name} attached.\n",
                                                     None)
            message_id = _queue(customer, provs, found=found, lang=lang, number=number, out=out,
                                purpose="material", variables=dict(cmd.variables),
                                from_address=cmd.from_address, to=[str(to[0])],
                                in_reply_to=None, references=[])
        else:
            numbers = customer.contact_points.get("fax", [])
            if not numbers:
                raise NoEmailAddressError(f"customer {cmd.customer_id} has no fax number")
            fax_id = f"material-{cmd.send_id}"
            # Queued for the fax provider: nothing here transmits faxes (see README).
            customer.record(Customer.FaxRecorded, next(provs), fax_id=fax_id, from_number=None,
                            to_number=str(numbers[0]), pages=None,
                            document_sha256=cmd.material_id, document_size=cmd.size,
                            content_type=cmd.content_type, status="queued")
        customer.record_business(r.MaterialSent, next(provs), material_id=cmd.material_id,
                                 name=cmd.name, content_type=cmd.content_type, size=cmd.size,
                                 send_channel=cmd.send_channel, message_id=message_id,
                                 fax_id=fax_id, rule=cmd.rule)

    channel = "email" if cmd.send_channel == "email" else "fax"
    return on_customer(ctx, cmd.customer_id, key, decide, cmd, channel, "outbound")


def _ctx(w: Any) -> WriteContext:
    return w.context if hasattr(w, "context") else w  # type: ignore[no-any-return]


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    SaveTemplate: save_template,
    em.SendEmail: send_email,
    AcknowledgeCase: acknowledge_case,
    SendMaterial: send_material,
}
