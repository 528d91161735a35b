"""Service commands: cases, complaints, CSAT answers, contracts, the installed base.

Each handler reads load → decide → save on the customer's own stream through
``Hub.record_on`` (idempotent by source key on every store); the rules are in
``domain.service``. Opening a case from a touchpoint finds that touchpoint on
the customer's stream (the write model never trusts a read model for that).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

from pydantic import Field

from commands import messages as m
from commands.ports import Recorded
from domain import service as s
from domain.customer import TOUCHPOINT_EVENTS, Customer
from domain.errors import TouchpointUnknownError

Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:/-]+$")]
Priority = Literal["urgent", "high", "normal", "low"]
Text = Annotated[str, Field(min_length=1, max_length=20000)]


class CaseCommand(m.Command):
    """A command about one case of one customer."""

    customer_id: UUID = Field(description="The customer whose case it is.")
    case_id: UUID = Field(description="The case's id (uuid).")


class OpenCase(CaseCommand):
    """Open a case, from a touchpoint (``origin_event_id``, the event id shown on the
    timeline: email, call, fax, form) or by an agent. One case per touchpoint."""

    kind: Literal["open-case"] = "open-case"
    case_kind: Literal["request", "complaint"] = "request"
    category: Code
    priority: Priority = "normal"
    channel: Literal["phone", "email", "fax", "visit", "web", "system"] = "phone"
    queue: Code = "default"
    subject: m.Short
    origin_event_id: UUID | None = None
    account_id: UUID | None = Field(default=None, description="The account (company) it is for.")
    product_id: UUID | None = Field(default=None, description="An installed product of the "
                                    "customer; the contract check uses its product code.")
    severity: Literal["minor", "major", "critical"] | None = None
    cause_category: Code | None = None

    def default_source_key(self) -> str:
        if self.origin_event_id is not None:
            return f"open-case:{self.customer_id}:{self.origin_event_id}"
        return f"open-case:{self.case_id}"


class AssignCase(CaseCommand):
    kind: Literal["assign-case"] = "assign-case"
    queue: Code
    agent: Code | None = None


class ReprioritiseCase(CaseCommand):
    kind: Literal["reprioritise-case"] = "reprioritise-case"
    priority: Priority


class LinkTouchpoint(CaseCommand):
    """Link another touchpoint of the customer to the case."""

    kind: Literal["link-touchpoint"] = "link-touchpoint"
    event_id: UUID = Field(description="The touchpoint's event id (from the timeline).")

    def default_source_key(self) -> str:
        return f"link-touchpoint:{self.case_id}:{self.event_id}"


class AddCaseNote(CaseCommand):
    """An internal note, or a shared one (a reply the customer sees: a first response)."""

    kind: Literal["case-note"] = "case-note"
    text: Text
    visibility: Literal["internal", "shared"] = "internal"


class WaitOnCustomer(CaseCommand):
    """The case waits on the customer: its SLA clocks stop until it resumes."""

    kind: Literal["wait-on-customer"] = "wait-on-customer"
    reason: m.Short | None = None


class ResumeCase(CaseCommand):
    kind: Literal["resume-case"] = "resume-case"


class ResolveCase(CaseCommand):
    """Resolve with a resolution code; first-contact resolution is derived, never typed."""

    kind: Literal["resolve-case"] = "resolve-case"
    resolution_code: Code


class ReopenCase(CaseCommand):
    kind: Literal["reopen-case"] = "reopen-case"
    reason: m.Short | None = None


class CloseCase(CaseCommand):
    kind: Literal["close-case"] = "close-case"

    def default_source_key(self) -> str:
        return f"close-case:{self.case_id}"


class OfferCompensation(CaseCommand):
    kind: Literal["offer-compensation"] = "offer-compensation"
    amount: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"


class AnswerCompensation(CaseCommand):
    kind: Literal["answer-compensation"] = "answer-compensation"
    accepted: bool


class ScheduleFollowUp(CaseCommand):
    """A follow-up call or email after a complaint's resolution ("customer care")."""

    kind: Literal["schedule-follow-up"] = "schedule-follow-up"
    on: date
    follow_up_channel: Literal["phone", "email"] = "phone"


class RecordSatisfaction(CaseCommand):
    """A CSAT answer (1–5 and a comment) on a resolved case; one per case."""

    kind: Literal["record-satisfaction"] = "record-satisfaction"
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=5000)] | None = None

    def default_source_key(self) -> str:
        return f"record-satisfaction:{self.case_id}"


class AddContract(m.Command):
    """A service contract: period, covered product codes (none: all), SLA policy, visits."""

    kind: Literal["add-contract"] = "add-contract"
    customer_id: UUID
    contract_id: UUID
    starts_on: date
    ends_on: date
    covered_products: Annotated[list[Code], Field(max_length=100)] = Field(default_factory=list)
    sla_policy: Code = "standard"
    visits_included: Annotated[int, Field(ge=0, le=10000)] = 0
    account_id: UUID | None = None

    def default_source_key(self) -> str:
        return f"add-contract:{self.contract_id}"


class EndContract(m.Command):
    kind: Literal["end-contract"] = "end-contract"
    customer_id: UUID
    contract_id: UUID
    ends_on: date


class RecordInstalledProduct(m.Command):
    kind: Literal["install-product"] = "install-product"
    customer_id: UUID
    product_id: UUID
    product_code: Code
    serial_number: Code
    installed_on: date | None = None

    def default_source_key(self) -> str:
        return f"install-product:{self.product_id}"


class RemoveInstalledProduct(m.Command):
    kind: Literal["remove-product"] = "remove-product"
    customer_id: UUID
    product_id: UUID
    reason: m.Short | None = None


class Writer(Protocol):
    """What the handlers need from the write model (``commands.hub.Hub``)."""

    def record_on(self, cmd: m.Command, customer_id: UUID,
                  decide: Callable[[Customer, Any], None]) -> Recorded: ...

    def stream(self, customer_id: UUID) -> Any: ...

    def customer(self, customer_id: UUID) -> Customer: ...


def touchpoint(w: Writer, customer_id: UUID, event_id: UUID) -> Customer.Event:
    """A touchpoint of the customer's own stream, or ``TouchpointUnknownError``."""
    w.customer(customer_id)  # a clear "no such customer" first
    for event in w.stream(customer_id):
        if event.event_id == event_id:
            if type(event) not in TOUCHPOINT_EVENTS:
                raise TouchpointUnknownError(f"event {event_id} is not a touchpoint")
            return event  # type: ignore[no-any-return]
    raise TouchpointUnknownError(f"no touchpoint {event_id} on customer {customer_id}")


def _on(w: Writer, cmd: Any, rule: Callable[..., None], *args: Any, **kw: Any) -> Recorded:
    return w.record_on(cmd, cmd.customer_id, lambda c, p: rule(c, next(iter(p)), *args, **kw))


def open_case(w: Writer, cmd: OpenCase) -> Recorded:
    origin = touchpoint(w, cmd.customer_id, cmd.origin_event_id) if cmd.origin_event_id else None
    return _on(w, cmd, s.open_case, case_id=str(cmd.case_id), case_kind=cmd.case_kind,
               category=cmd.category, priority=cmd.priority, case_channel=cmd.channel,
               queue=cmd.queue, subject=cmd.subject, origin=origin,
               account_id=_s(cmd.account_id), product_id=_s(cmd.product_id),
               severity=cmd.severity, cause_category=cmd.cause_category)


def link(w: Writer, cmd: LinkTouchpoint) -> Recorded:
    found = touchpoint(w, cmd.customer_id, cmd.event_id)
    return _on(w, cmd, s.link_touchpoint, str(cmd.case_id), found)


def _s(value: object | None) -> str | None:
    return None if value is None else str(value)


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    OpenCase: open_case,
    AssignCase: lambda w, c: _on(w, c, s.assign_case, str(c.case_id), c.queue, c.agent),
    ReprioritiseCase: lambda w, c: _on(w, c, s.reprioritise_case, str(c.case_id), c.priority),
    LinkTouchpoint: link,
    AddCaseNote: lambda w, c: _on(w, c, s.add_case_note, str(c.case_id), c.text, c.visibility),
    WaitOnCustomer: lambda w, c: _on(w, c, s.wait_on_customer, str(c.case_id), c.reason),
    ResumeCase: lambda w, c: _on(w, c, s.resume_case, str(c.case_id)),
    ResolveCase: lambda w, c: _on(w, c, s.resolve_case, str(c.case_id), c.resolution_code),
    ReopenCase: lambda w, c: _on(w, c, s.reopen_case, str(c.case_id), c.reason),
    CloseCase: lambda w, c: _on(w, c, s.close_case, str(c.case_id)),
    OfferCompensation: lambda w, c: _on(w, c, s.offer_compensation, str(c.case_id),
                                        f"{c.amount:.2f}", c.currency),
    AnswerCompensation: lambda w, c: _on(w, c, s.answer_compensation, str(c.case_id),
                                         c.accepted),
    ScheduleFollowUp: lambda w, c: _on(w, c, s.schedule_follow_up, str(c.case_id), c.on,
                                       c.follow_up_channel),
    RecordSatisfaction: lambda w, c: _on(w, c, s.record_satisfaction, str(c.case_id), c.score,
                                         c.comment),
    AddContract: lambda w, c: _on(
        w, c, s.add_contract, contract_id=str(c.contract_id), starts_on=c.starts_on,
        ends_on=c.ends_on, covered_products=list(c.covered_products), sla_policy=c.sla_policy,
        visits_included=c.visits_included, account_id=_s(c.account_id)),
    EndContract: lambda w, c: _on(w, c, s.end_contract, str(c.contract_id), c.ends_on),
    RecordInstalledProduct: lambda w, c: _on(
        w, c, s.record_product, product_id=str(c.product_id), product_code=c.product_code,
        serial_number=c.serial_number, installed_on=c.installed_on),
    RemoveInstalledProduct: lambda w, c: _on(w, c, s.remove_product, str(c.product_id),
                                             c.reason),
}
