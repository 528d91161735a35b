"""A customer as they were on a past date: "as it happened" and "as we knew it then".

``customer_as_of(events, at, known_at)`` folds one customer's stream (oldest
first, as stored) into the facts staff look at: profile, contact points,
lifecycle stage, partner, open callbacks, merge state, and how many
touchpoints per channel had happened. It is a pure function of the events:

- *as it happened* (``known_at`` omitted): every event that **occurred** by
  ``at`` counts, including those the hub only learned of later (a visit
  synced a week late); those are listed in ``learned_later`` with both
  times, so the difference between the two views is visible;
- *as we knew it then* (``known_at`` given): only events **recorded** by
  ``known_at`` count as well — what a report run at that moment showed.

Events are applied in order of occurrence (ties in stream order), so a
late-recorded fact lands where it happened; a touchpoint voided by then does
not count. Only the customer's own stream is folded: a merge target's view
does not include what it absorbed (``merged_into`` says where a merged
customer went). An erased customer's personal
fields read as ``None`` (their key is gone) whatever the date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.customer import TOUCHPOINT_EVENTS, Customer


@dataclass
class LateFact:
    event_id: str
    kind: str
    occurred_at: str
    recorded_at: str


@dataclass
class CustomerAsOf:
    customer_id: str
    at: str
    known_at: str | None
    exists: bool = False
    name: str | None = None
    company: str | None = None
    lifecycle_stage: str | None = None
    partner_id: str | None = None
    merged_into: str | None = None
    erased: bool = False
    contact_points: dict[str, list[str]] = field(default_factory=dict)
    open_callbacks: list[dict[str, Any]] = field(default_factory=list)
    touchpoints: dict[str, int] = field(default_factory=dict)
    last_contact: str | None = None
    events: int = 0
    learned_later: list[LateFact] = field(default_factory=list)


def customer_as_of(customer_id: str, events: Iterable[Customer.Event], at: datetime,
                   known_at: datetime | None = None) -> CustomerAsOf:
    view = CustomerAsOf(customer_id, at.isoformat(), known_at.isoformat() if known_at else None)
    chosen: list[tuple[datetime, int, Customer.Event]] = []
    for e in events:
        if e.occurred_at > at:
            continue
        if known_at is not None and e.timestamp > known_at:
            continue
        if known_at is None and e.timestamp > at:
            view.learned_later.append(LateFact(str(e.event_id), type(e).__name__,
                                               e.occurred_at.isoformat(), e.timestamp.isoformat()))
        chosen.append((e.occurred_at, e.originator_version, e))
    callbacks: dict[str, dict[str, Any]] = {}
    # A touchpoint voided by then no longer counts (it stays in the log, marked).
    voided = {e.voided_event_id for _, _, e in chosen if isinstance(e, Customer.TouchpointVoided)}
    for _, _, e in sorted(chosen, key=lambda t: (t[0], t[1])):
        view.events += 1
        if str(e.event_id) not in voided:
            _apply(view, e, callbacks)
    view.open_callbacks = sorted(callbacks.values(), key=lambda c: c["requested_at"])
    return view


def _apply(view: CustomerAsOf, e: Any, callbacks: dict[str, dict[str, Any]]) -> None:
    if isinstance(e, Customer.Registered):
        view.exists = True
        view.name, view.company, view.lifecycle_stage = e.name, e.company, e.lifecycle_stage
    elif isinstance(e, Customer.ProfileChanged):
        changes = e.changes or {}
        if changes.get("name") is not None:
            view.name = changes["name"]
        if "company" in changes:
            view.company = changes["company"]
    elif isinstance(e, Customer.ContactPointAdded):
        points = view.contact_points.setdefault(e.kind, [])
        if e.value not in points:
            points.append(e.value)
    elif isinstance(e, Customer.ContactPointRemoved):
        points = view.contact_points.get(e.kind, [])
        if e.value in points:
            points.remove(e.value)
    elif isinstance(e, Customer.LifecycleStageChanged):
        view.lifecycle_stage = e.to_stage
    elif isinstance(e, Customer.PartnerAssigned):
        view.partner_id = e.partner_id
    elif isinstance(e, Customer.MergedInto):
        view.merged_into = e.target_id
    elif isinstance(e, Customer.Unmerged):
        view.merged_into = None
    elif isinstance(e, Customer.PersonalDataErased):
        view.erased = True
        view.name = view.company = None
        view.contact_points = {}
    elif isinstance(e, Customer.CallbackRequested):
        callbacks[e.callback_id] = {"callback_id": e.callback_id, "number": e.number,
                                    "reason": e.reason,
                                    "requested_at": e.occurred_at.isoformat()}
    elif isinstance(e, Customer.CallbackCompleted):
        callbacks.pop(e.callback_id, None)
    if type(e) in TOUCHPOINT_EVENTS and e.channel != "system":
        view.touchpoints[e.channel] = view.touchpoints.get(e.channel, 0) + 1
        stamp = e.occurred_at.isoformat()
        view.last_contact = max(view.last_contact or stamp, stamp)
