"""Touchpoints: calls, call steps, callbacks, emails, faxes, visits, web forms.

A touchpoint names its customer, or is found by its counterpart's contact
point: the owner of that point, else a new prospect owning it (or, when
unknown senders are held, a held touchpoint for triage). ``repair_owner`` is
the one repair, used by one command and by the bulk path alike, for a claim
whose customer never appeared (a kill between the claim and the registration,
possible where claims and registrations cannot share a transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from commands import email_messages as em
from commands import messages as m
from commands import triage
from commands.context import WriteContext
from commands.customers import register_customer
from commands.errors import CustomerNotFoundError, HeldForTriageError
from commands.handling import on_customer
from commands.identity import InvalidContactPointError, contact_key, normalise
from commands.ports import Recorded
from commands.provenance import provenances, source_key
from domain import marketing
from domain.customer import Customer, Provenance
from domain.errors import ContactPointTakenError
from domain.service import join_thread

if TYPE_CHECKING:
    from commands.bulk_rows import PlainTouchpoints

TOUCH_EVENTS: dict[type[m.Touchpoint], type[Customer.Event]] = {
    m.LogCall: Customer.CallLogged,
    m.RecordCallStep: Customer.CallStepRecorded,
    m.RequestCallback: Customer.CallbackRequested,
    m.CompleteCallback: Customer.CallbackCompleted,
    m.RecordEmail: Customer.EmailRecorded,
    m.RecordFax: Customer.FaxRecorded,
    m.RecordVisit: Customer.VisitRecorded,
    m.RecordWebForm: Customer.WebFormSubmitted,
    em.SendEmail: Customer.EmailQueued,
    em.RecordEmailSent: Customer.EmailSent,
    em.RecordEmailSendFailed: Customer.EmailSendFailed,
    em.RecordEmailOutcomeUnknown: Customer.EmailOutcomeUnknown,
    em.RecordEmailBounce: Customer.EmailBounced,
}
# Command fields that only help find the customer and are not stored on the event.
LOOKUP_ONLY = {"email", "phone", "customer_id", "visit_id",
               "template_id", "variables", "language", "case_id"}  # a templated email's inputs


def record_touchpoint(
    w: WriteContext, cmd: m.Touchpoint, rows: PlainTouchpoints | None = None
) -> Recorded:
    """Record one touchpoint; a plain one on a cached customer as its row (``rows``:
    ``PlainTouchpoints.record``, which hands anything else back untouched)."""
    key = source_key(cmd)
    # No lookup first: the key's UNIQUE row (or reservation) catches a
    # duplicate at save time, and the first result is read back then.
    event_class = TOUCH_EVENTS[type(cmd)]
    try:
        customer_id = customer_for(w, cmd, key)
    except HeldForTriageError as held:
        return triage.hold(w, cmd, key, held.contact)
    if rows is not None and (done := rows.record(cmd, key, customer_id)) is not None:
        return done
    fields = m.touch_fields(cmd, LOOKUP_ONLY)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        customer.record(event_class, next(provs), **fields)
        # An email in an open case's thread joins the case in this same save.
        join_thread(customer, customer.pending_events[-1])  # type: ignore[arg-type]
        if event_class is Customer.EmailBounced:  # a dead address takes its consents along
            marketing.withdraw_on_hard_bounce(customer, provs, fields["action"],
                                              fields.get("status"))

    try:
        return on_customer(w, customer_id, key, decide, cmd, cmd.channel, cmd.direction,
                           looked_up=True)
    except CustomerNotFoundError:
        if (owner := repair_owner(w, cmd, key, customer_id)) is None:
            raise
        return on_customer(w, owner, key, decide, cmd, cmd.channel, cmd.direction)


@dataclass
class KnownOwners:
    """The claims of a batch's counterparts, read together (``known_owners``): each
    counterpart's normalised contact point, and each contact point's owner then."""

    contacts: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    owners: dict[str, str | None] = field(default_factory=dict)  # contact key → owner id


def known_owners(w: WriteContext, cmds: Iterable[m.Touchpoint]) -> KnownOwners:
    """The owners of the contact points of the touchpoints' counterparts (touchpoints that
    name their customer need none), read in one query on the SQL stores
    (``ContactClaims.owners``). A counterpart that is no valid contact point is left out:
    ``customer_for`` raises its error when it comes to it."""
    known = KnownOwners()
    for cmd in cmds:
        if cmd.customer_id is not None or (counterpart := cmd.counterpart()) is None:
            continue
        if counterpart in known.contacts:
            continue
        kind, raw = counterpart
        try:
            value = normalise(kind, raw, w.default_region)
        except InvalidContactPointError:
            continue
        known.contacts[counterpart] = (contact_key(kind, value), value)
    known.owners = w.claims.owners(ckey for ckey, _ in known.contacts.values())
    return known


def customer_for(
    w: WriteContext, cmd: m.Touchpoint, key: str, known: KnownOwners | None = None
) -> UUID:
    """The customer a touchpoint belongs to: its ``customer_id``, else the owner of its
    counterpart's contact point (a prospect for an unknown one; ``HeldForTriageError``
    when unknown senders are held).

    With ``known`` (a batch's claims, read before its first decision) the owner is taken
    from there; a prospect registered here is noted in it, so a later touchpoint of the
    batch from that contact point finds it, as a fresh read would."""
    if cmd.customer_id is not None:
        return cmd.customer_id
    counterpart = cmd.counterpart()
    if counterpart is None:
        raise CustomerNotFoundError(
            "give customer_id, or a sender/recipient address or number to find the customer"
        )
    kind, raw = counterpart
    if known is not None and counterpart in known.contacts:
        ckey, value = known.contacts[counterpart]
    else:
        value = normalise(kind, raw, w.default_region)
        ckey = contact_key(kind, value)
    if known is not None and ckey in known.owners:
        owner = known.owners[ckey]
    else:
        owner = w.claims.owner(ckey)
    if owner is not None:
        return UUID(owner)
    if w.unknown_contacts != "create":
        raise HeldForTriageError(ckey)
    try:
        customer_id = register_customer(w, _prospect(w, cmd, key, kind, value)).customer_id
    except ContactPointTakenError as taken:
        # Claimed since it was read (a registration elsewhere): its owner now, as a read
        # now would answer; a claim without its customer fails on recording as it would.
        customer_id = str(taken.owner)
    if known is not None:
        known.owners[ckey] = customer_id
    return UUID(customer_id)


def claimed_owner(w: WriteContext, counterpart: tuple[str, str]) -> UUID | None:
    """The customer whose claim holds a contact point (a read, no write), None when
    nobody's does; the normalisation's error when the value is no valid one."""
    kind, raw = counterpart
    owner = w.claims.owner(contact_key(kind, normalise(kind, raw, w.default_region)))
    return UUID(owner) if owner is not None else None


def repair_owner(w: WriteContext, cmd: m.Touchpoint, key: str, missing: UUID) -> UUID | None:
    """The customer to record on when the counterpart's claim names ``missing``, a customer
    that did not exist; None when the claim is not the cause or cannot be repaired.

    A claim for the counterpart's own prospect is finished (the prospect registered,
    idempotently: same source key whoever does it); another customer's claim, once
    stale, is taken over by that prospect."""
    counterpart = cmd.counterpart()
    if cmd.customer_id is not None or counterpart is None or w.unknown_contacts != "create":
        return None  # a customer named by id is not found by its contact point
    if w.store.exists(missing):
        return missing  # repaired meanwhile (by another command of the same contact)
    kind, raw = counterpart
    value = normalise(kind, raw, w.default_region)
    ckey = contact_key(kind, value)
    if missing != w.naming.prospect(ckey):
        claim = w.claims.get(ckey)
        if claim is None or claim.owner != str(missing) or not w.claims.is_stale(claim):
            return None
    return UUID(register_customer(w, _prospect(w, cmd, key, kind, value)).customer_id)


def apply_touchpoint(w: WriteContext, customer: Customer, cmd: m.Touchpoint, key: str) -> None:
    """Decide one touchpoint on a loaded customer, not saved: its event, and the joining of
    a service case whose email thread it is in (every pending event carries ``key``)."""
    prov = next(provenances(cmd, key, cmd.channel, cmd.direction, w.clock, w.max_future_skew,
                            w.naming.event_id))
    customer.record(TOUCH_EVENTS[type(cmd)], prov, **m.touch_fields(cmd, LOOKUP_ONLY))
    join_thread(customer, customer.pending_events[-1])  # type: ignore[arg-type]


def _prospect(
    w: WriteContext, cmd: m.Touchpoint, key: str, kind: str, value: str
) -> m.RegisterCustomer:
    """A prospect owning the contact point; its id derives from the contact
    point so concurrent first contacts converge on one customer."""
    ckey = contact_key(kind, value)
    return m.RegisterCustomer(
        customer_id=w.naming.prospect(ckey),
        name=value,
        contact_points=[m.ContactPointIn(kind=kind, value=value)],  # type: ignore[arg-type]
        source_key=f"prospect:{ckey}",
        occurred_at=cmd.occurred_at,
        actor=cmd.actor,
        correlation_id=cmd.correlation_id or key,
        causation_id=key,
    )
