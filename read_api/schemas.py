"""Response schemas of the read API (OpenAPI documentation; routes answer with orjson)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.customer import CHANNELS, DIRECTIONS
from projections.events import all_kinds

_CUSTOMER = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_EVENT = "9d4f1b0e-2c7a-5e3b-8f61-0a2b3c4d5e6f"


class TimelineEntryPublic(BaseModel):
    position: int = Field(description="Position in the event log (unique, grows with time).")
    customer_id: str = Field(description="Stream the event is on (a merged-in customer's id "
                                         "for its history).")
    event_id: str
    kind: str = Field(description="call, call_step, email, fax, visit, web_form, note, "
                                  "registered, merged_into, …")
    channel: str
    direction: str
    occurred_at: str = Field(description="When it happened at the source.")
    recorded_at: str = Field(description="When the hub recorded it.")
    actor: str | None = Field(None, description="Staff user or adapter (not shown to partners).")
    subject: str | None
    summary: str | None = Field(description="At most 240 characters; the body is on "
                                            "/events/{event_id}/body.")
    internal: bool
    has_body: bool
    voided: bool = Field(False, description="Voided by staff: shown, but no longer counted.")
    corrected: bool = Field(False, description="Date or text corrected by staff.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "position": 1042, "customer_id": _CUSTOMER, "event_id": _EVENT, "kind": "email",
        "channel": "email", "direction": "inbound",
        "occurred_at": "2026-11-24T09:30:00+00:00", "recorded_at": "2026-11-24T09:30:02+00:00",
        "actor": "imap:support", "subject": "Invoice question",
        "summary": "Hello, I was charged twice…", "internal": False, "has_body": True}]})


class TimelinePagePublic(BaseModel):
    customer_id: str = Field(description="The customer shown (the root of a merge group).")
    requested_id: str
    items: list[TimelineEntryPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; "
                                                "null on the last page.")
    as_of: int = Field(description="Log position the pages are a snapshot of.")


class EventDetailPublic(BaseModel):
    entry: TimelineEntryPublic
    data: dict[str, Any] = Field(description="Every field of the event (bodies included).")


class ContactPointPublic(BaseModel):
    kind: str
    value: str
    label: str | None = None


class DirectoryEntryPublic(BaseModel):
    customer_id: str
    name: str
    company: str | None
    lifecycle_stage: str | None
    partner_id: str | None
    registered_at: str | None
    contact_points: list[ContactPointPublic]
    merged_from: list[str]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": _CUSTOMER, "name": "Ada Lovelace", "company": "Analytical Engines Ltd",
        "lifecycle_stage": "current", "partner_id": None,
        "registered_at": "2026-01-05T10:00:00+00:00",
        "contact_points": [{"kind": "email", "value": "ada@example.com", "label": None},
                           {"kind": "phone", "value": "+442079460018", "label": "work"}],
        "merged_from": []}]})


class DirectoryResultsPublic(BaseModel):
    items: list[DirectoryEntryPublic]


class SearchResultsPublic(BaseModel):
    items: list[DirectoryEntryPublic] = Field(description="Sorted by name, then id.")
    next_cursor: str | None = Field(description="Pass as ?cursor= (with the same q) for the "
                                                "next page; null on the last page.")
    incomplete: bool = Field(description="True when more than 1,000 index terms matched, so "
                                         "some customers are missing: refine q.")


class ChannelStatsPublic(BaseModel):
    touches: int
    last_contact_at: str | None


class BusinessOpportunityPublic(BaseModel):
    opportunity_id: str
    title: str | None = Field(description="None once the customer was erased.")
    stage: str
    probability: int
    amount: str
    currency: str
    expected_close: str | None
    opened_at: str | None


class BusinessOrderPublic(BaseModel):
    order_number: str
    placed_at: str | None
    total: str
    currency: str
    status: str = Field(description="placed, paid, shipped, partly returned, returned, "
                                    "cancelled.")


class BusinessSalesPublic(BaseModel):
    open_opportunities: int
    opportunities: list[BusinessOpportunityPublic] = Field(
        description="The newest open ones (at most 5).")
    orders: int
    recent_orders: list[BusinessOrderPublic] = Field(description="The newest (at most 5).")


class BusinessConsentPublic(BaseModel):
    consent_channel: str
    purpose: str
    state: str
    valid: bool = Field(description="Given and not expired at the block's as_of.")
    expires_at: str | None
    changed_at: str | None


class BusinessCasePublic(BaseModel):
    case_id: str
    case_kind: str
    subject: str | None = Field(description="None once the customer was erased.")
    priority: str
    status: str
    queue: str | None
    opened_at: str | None
    contract_id: str | None
    outside_contract: bool
    sla_state: str | None = Field(description="ok, at_risk or breached at the block's as_of.")
    next_deadline: str | None


class BusinessServicePublic(BaseModel):
    open_cases: int
    cases_total: int
    cases: list[BusinessCasePublic] = Field(description="The newest open ones (at most 5).")


class BusinessWorkOrderPublic(BaseModel):
    work_order_id: str
    case_id: str | None
    stage: str
    skill: str
    priority: str
    window_start: str | None
    window_end: str | None
    late: bool
    overdue: bool
    summary: str | None = Field(description="None once the customer was erased.")


class BusinessDispatchPublic(BaseModel):
    open_work_orders: int = Field(description="Among the customer's newest 200 work orders.")
    work_orders: list[BusinessWorkOrderPublic] = Field(
        description="The newest open ones (at most 5).")


class BusinessContractPublic(BaseModel):
    contract_id: str
    starts_on: str
    ends_on: str
    sla_policy: str
    visits_included: int
    covered_products: list[str] = Field(description="Product codes; empty covers every one.")


class BusinessContractsPublic(BaseModel):
    active_contracts: int = Field(description="Contracts in force on the block's day.")
    contracts: list[BusinessContractPublic] = Field(
        description="The active ones, newest start first (at most 5).")
    installed_products: int = Field(description="Installed products not removed.")


class BusinessPublic(BaseModel):
    """A customer's business objects (merged-in customers' included). A part is null when
    the caller's role may not read that area (the roles of its per-customer route)."""

    as_of: str = Field(description="When SLA states, consent validity and lateness are judged.")
    sales: BusinessSalesPublic | None = Field(description="sales, partner (and admin).")
    consent: list[BusinessConsentPublic] | None = Field(
        description="By channel and purpose; marketing, agent, sales, service (and admin).")
    service: BusinessServicePublic | None = Field(
        description="Every role that reads summaries.")
    dispatch: BusinessDispatchPublic | None = Field(
        description="dispatcher, service, agent (and admin).")
    contracts: BusinessContractsPublic | None = Field(
        description="service, agent, dispatcher (and admin).")


_BUSINESS_EXAMPLE = {
    "as_of": "2026-11-30T12:00:00+00:00",
    "sales": {"open_opportunities": 1, "opportunities": [{
        "opportunity_id": "5f0c9a1e-7b2d-4c3e-9a8f-1e2d3c4b5a69", "title": "Fleet renewal",
        "stage": "proposal", "probability": 60, "amount": "12500.00", "currency": "EUR",
        "expected_close": "2026-12-20", "opened_at": "2026-10-02T09:00:00+00:00"}],
        "orders": 3, "recent_orders": [{
            "order_number": "ERP-10442", "placed_at": "2026-09-14T10:12:00+00:00",
            "total": "840.00", "currency": "EUR", "status": "shipped"}]},
    "consent": [{"consent_channel": "email", "purpose": "newsletter", "state": "given",
                 "valid": True, "expires_at": None,
                 "changed_at": "2026-03-02T08:00:00+00:00"}],
    "service": {"open_cases": 1, "cases_total": 4, "cases": [{
        "case_id": "3b1d7e2a-9c4f-4a6b-8e1d-2f3a4b5c6d7e", "case_kind": "incident",
        "subject": "Boiler leaks", "priority": "high", "status": "open", "queue": "field",
        "opened_at": "2026-11-29T16:40:00+00:00", "contract_id": "SC-2026-118",
        "outside_contract": False, "sla_state": "at_risk",
        "next_deadline": "2026-11-30T12:40:00+00:00"}]},
    "dispatch": {"open_work_orders": 1, "work_orders": [{
        "work_order_id": "7c2e4f6a-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
        "case_id": "3b1d7e2a-9c4f-4a6b-8e1d-2f3a4b5c6d7e", "stage": "assigned",
        "skill": "boiler", "priority": "high", "window_start": "2026-12-01T08:00:00+00:00",
        "window_end": "2026-12-01T10:00:00+00:00", "late": False, "overdue": False,
        "summary": "Boiler leaks"}]},
    "contracts": {"active_contracts": 1, "contracts": [{
        "contract_id": "SC-2026-118", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
        "sla_policy": "gold", "visits_included": 2, "covered_products": ["BOILER-S"]}],
        "installed_products": 1},
}


class SummaryCorePublic(BaseModel):
    """A customer's summary as the screen-pop shows it (no business block)."""

    customer_id: str
    name: str
    company: str | None
    lifecycle_stage: str | None
    stage_changed_at: str | None
    partner_id: str | None
    profile: dict[str, Any]
    registered_at: str | None
    contact_points: list[dict[str, Any]]
    channels: dict[str, ChannelStatsPublic]
    last_contact_at: str | None
    events: int
    notes: dict[str, int] = Field(description="Counts by visibility; partners see 'shared' only.")
    open_items: list[dict[str, Any]] = Field(description="Callbacks requested, not completed.")
    merged_from: list[str]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": _CUSTOMER, "name": "Ada Lovelace", "company": "Analytical Engines Ltd",
        "lifecycle_stage": "current", "stage_changed_at": "2026-03-01T12:00:00+00:00",
        "partner_id": None, "profile": {"name": "Ada Lovelace",
                                        "company": "Analytical Engines Ltd"},
        "registered_at": "2026-01-05T10:00:00+00:00",
        "contact_points": [{"kind": "email", "value": "ada@example.com", "label": None,
                            "customer_id": _CUSTOMER}],
        "channels": {"email": {"touches": 12, "last_contact_at": "2026-11-24T09:30:00+00:00"},
                     "phone": {"touches": 3, "last_contact_at": "2026-11-20T15:02:00+00:00"}},
        "last_contact_at": "2026-11-24T09:30:00+00:00", "events": 21,
        "notes": {"shared": 1, "internal": 2},
        "open_items": [{"kind": "callback", "callback_id": "cb-17", "customer_id": _CUSTOMER,
                        "requested_at": "2026-11-24T08:00:00+00:00", "requested_for": None,
                        "number": "+442079460018", "reason": "billing"}],
        "merged_from": []}]})


class SummaryPublic(SummaryCorePublic):
    business: BusinessPublic = Field(description="Opportunities, orders, consent, cases, "
                                                 "work orders and contracts at a glance.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **SummaryCorePublic.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
        "business": _BUSINESS_EXAMPLE}]})


class ProjectionStatusPublic(BaseModel):
    name: str
    generation: int
    live: bool
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    rate_per_s: float | None
    events_applied: int
    updated_at: float | None


class ProjectionStatusListPublic(BaseModel):
    items: list[ProjectionStatusPublic]


Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
Kind = Literal[all_kinds()]  # type: ignore[misc]
MAX_FILTER_VALUES = 10


class TimelineQuery(BaseModel):
    """Query parameters of the timeline route (unknown ones and unknown values answer 422)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200, description="Page size (≤ 200).")
    cursor: str | None = Field(None, max_length=400,
                               description="`next_cursor` of the previous page of this customer.")
    channel: list[Channel] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                   examples=[["phone"]], description="Repeatable.")
    direction: list[Direction] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                       examples=[["inbound"]], description="Repeatable.")
    kind: list[Kind] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                             examples=[["call", "email"]], description="Repeatable.")
    since: AwareDatetime | None = Field(None, description="occurred_at ≥ since (with timezone)")
    until: AwareDatetime | None = Field(None, description="occurred_at < until (with timezone)")
    q: str | None = Field(None, min_length=1, max_length=200, examples=["invoice"],
                          description="Words that must all start a word of the subject or "
                                      "summary.")
    min_position: int | None = Field(None, ge=0, le=2**62, description=(
        "Wait (≤ 2 s) until the read model has applied this log position (a command "
        "response's `position`): read-your-writes."))


class ScreenPopMatchPublic(BaseModel):
    customer: SummaryCorePublic
    recent: list[TimelineEntryPublic] = Field(description="Newest first.")


class ScreenPopPublic(BaseModel):
    number: str = Field(description="The caller's number in E.164.")
    known: bool
    message: str | None = Field(None, description="'unknown caller' when no customer matched.")
    matches: list[ScreenPopMatchPublic]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "number": "+442079460018", "known": False, "message": "unknown caller",
        "matches": []}]})
