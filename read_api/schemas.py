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


class SummaryPublic(BaseModel):
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
    customer: SummaryPublic
    recent: list[TimelineEntryPublic] = Field(description="Newest first.")


class ScreenPopPublic(BaseModel):
    number: str = Field(description="The caller's number in E.164.")
    known: bool
    message: str | None = Field(None, description="'unknown caller' when no customer matched.")
    matches: list[ScreenPopMatchPublic]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "number": "+442079460018", "known": False, "message": "unknown caller",
        "matches": []}]})
