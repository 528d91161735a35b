"""The customer aggregate: every touchpoint and life event of one customer.

Public methods decide (rules, ids, clocks arrive as arguments); the nested
events' ``apply`` only mutate and run again on every replay, so they hold no
clock, no I/O and no decisions. Event class names are a persistence contract:
renaming one needs an alias or an upcast.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import (
    ContactPointUnknownError,
    CustomerErasedError,
    CustomerMergedError,
    FutureOccurrenceError,
    InvalidTransitionError,
    TouchpointUnknownError,
    TouchpointVoidedError,
)

LIFECYCLE_STAGES = ("prospect", "target", "current", "lost")
_ALLOWED_STAGE_MOVES = {
    "prospect": {"target", "current", "lost"},
    "target": {"prospect", "current", "lost"},
    "current": {"lost"},
    "lost": {"target", "current"},
}
CHANNELS = ("phone", "email", "fax", "visit", "web", "system")
DIRECTIONS = ("inbound", "outbound", "internal")
CONTACT_KINDS = ("email", "phone", "fax")
_IMMUTABLE = (str, int, float, type(None), UUID, datetime)
#: How far ahead of the hub's clock a date may be (clock drift, a time zone
#: given wrongly); further ahead is a mistake that would stay "last contact".
DEFAULT_MAX_FUTURE_SKEW = timedelta(days=1)


def check_not_ahead(occurred_at: datetime, now: datetime, max_skew: timedelta) -> None:
    """Refuse a date more than ``max_skew`` after ``now`` (``FutureOccurrenceError``)."""
    if occurred_at - now > max_skew:
        raise FutureOccurrenceError(
            f"occurred_at {occurred_at.isoformat()} is more than {max_skew} ahead of the "
            f"hub's clock ({now.isoformat()}); correct the date"
        )


@dataclass(frozen=True)
class Provenance:
    """Who, when, where from: carried by every event.

    ``occurred_at`` is when it happened at the source (a visit synced three days
    late keeps its real time); the hub's own recording time is the event's
    ``timestamp``, exposed as ``recorded_at``.
    """

    event_id: UUID
    occurred_at: datetime
    channel: str
    direction: str
    actor: str
    source_key: str
    correlation_id: str
    causation_id: str

    def fields(self) -> dict[str, Any]:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        return {
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
            "channel": self.channel,
            "direction": self.direction,
            "actor": self.actor,
            "source_key": self.source_key,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


class Customer(Aggregate):
    """One customer's stream: ``customer-<uuid>`` on EventStoreDB, the uuid elsewhere."""

    INITIAL_VERSION = 0

    class Event(Aggregate.Event):
        event_id: UUID
        occurred_at: datetime
        channel: str
        direction: str
        actor: str
        source_key: str
        correlation_id: str
        causation_id: str

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

        def apply(self, aggregate: Any) -> None:
            """Most touchpoints change only counters; life events override."""
            aggregate._count(self.channel, self.occurred_at)

    class BusinessEvent(Event):
        """An event of a business area (sales, service, dispatch…) on the customer's stream.

        Area modules (``domain/<area>.py``) subclass it, list the module in
        ``domain.catalog.AREA_MODULES`` and classify every field in
        ``domain.personal``; it is then encrypted, erased, exported, sealed and
        projected like every other event of the stream. It is not a touchpoint:
        it changes no channel counter. Its ``apply`` may change only the area's
        own state, ``aggregate.area(name)`` (JSON-like values only: it is kept in
        snapshots).
        """

        def apply(self, aggregate: Any) -> None:
            pass

    class Registered(Event, Aggregate.Created):
        name: str
        company: str | None
        lifecycle_stage: str

        def apply(self, aggregate: Any) -> None:
            pass

    # -- life events -------------------------------------------------------
    class ProfileChanged(Event):
        changes: dict[str, str | None]

        def apply(self, aggregate: Any) -> None:
            for key, value in self.changes.items():
                aggregate.profile[key] = value
            if "name" in self.changes and self.changes["name"] is not None:
                aggregate.name = self.changes["name"]
            if "company" in self.changes:
                aggregate.company = self.changes["company"]

    class ContactPointAdded(Event):
        kind: str
        value: str
        label: str | None

        def apply(self, aggregate: Any) -> None:
            points = aggregate.contact_points.setdefault(self.kind, [])
            if self.value not in points:
                points.append(self.value)

    class ContactPointRemoved(Event):
        kind: str
        value: str
        reason: str | None

        def apply(self, aggregate: Any) -> None:
            points = aggregate.contact_points.get(self.kind, [])
            if self.value in points:
                points.remove(self.value)

    class LifecycleStageChanged(Event):
        from_stage: str
        to_stage: str
        reason: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.lifecycle_stage = self.to_stage

    class NoteAdded(Event):
        text: str
        visibility: str

        def apply(self, aggregate: Any) -> None:
            pass

    class PartnerAssigned(Event):
        partner_id: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.partner_id = self.partner_id

    # -- touchpoints -------------------------------------------------------
    class CallLogged(Event):
        """A call as a whole (a CDR row, a call logged by an agent)."""

        class_version = 2

        call_id: str
        from_number: str | None
        to_number: str | None
        queue: str | None
        agent: str | None
        ivr_choices: list[str]
        outcome: str
        duration_s: int | None
        wait_s: int | None
        recording_ref: str | None
        summary: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """v1 had ``duration`` (seconds) and no wait time or IVR choices."""
            state["duration_s"] = state.pop("duration", None)
            state.setdefault("wait_s", None)
            state.setdefault("ivr_choices", [])

    class CallStepRecorded(Event):
        """One step of a call reported by a PBX or telephony provider."""

        call_id: str
        step: str
        sequence: int
        from_number: str | None
        to_number: str | None
        queue: str | None
        agent: str | None
        details: dict[str, str]

    class CallbackRequested(Event):
        callback_id: str
        number: str | None
        requested_for: datetime | None
        reason: str | None

    class CallbackCompleted(Event):
        callback_id: str
        outcome: str
        call_id: str | None

    class EmailRecorded(Event):
        message_id: str
        thread_id: str
        in_reply_to: str | None
        references: list[str]
        from_address: str
        to: list[str]
        cc: list[str]
        subject: str
        body_text: str | None
        body_ref: str | None
        attachments: list[dict[str, Any]]
        raw_ref: str | None = None

    class EmailQueued(Event):
        """An outbound email the hub intends to send (the intent, recorded before any attempt)."""

        message_id: str
        thread_id: str
        in_reply_to: str | None
        references: list[str]
        from_address: str
        to: list[str]
        cc: list[str]
        subject: str
        body_text: str
        envelope_id: str

    class EmailSent(Event):
        """The SMTP server accepted a queued email (at most one per queued email)."""

        message_id: str
        attempt: int
        response: str

        def apply(self, aggregate: Any) -> None:
            pass

    class EmailSendFailed(Event):
        """A queued email was refused for good (5xx) or given up on."""

        message_id: str
        attempt: int
        reason: str
        permanent: bool

        def apply(self, aggregate: Any) -> None:
            pass

    class EmailOutcomeUnknown(Event):
        """An attempt whose outcome cannot be known (4xx, disconnect, timeout); it is retried."""

        message_id: str
        attempt: int
        reason: str

        def apply(self, aggregate: Any) -> None:
            pass

    class EmailBounced(Event):
        """A delivery status notification about an outbound email of this customer."""

        original_message_id: str
        recipient: str | None
        action: str
        status: str | None
        diagnostic: str | None
        report_message_id: str
        raw_ref: str | None

        def apply(self, aggregate: Any) -> None:
            pass

    class FaxRecorded(Event):
        fax_id: str
        from_number: str | None
        to_number: str | None
        pages: int | None
        document_sha256: str | None
        document_size: int | None
        content_type: str | None
        status: str

    class VisitRecorded(Event):
        visit_kind: str
        staff: str
        place: str | None
        purpose: str | None
        outcome: str | None
        notes: str | None
        duration_min: int | None

    class WebFormSubmitted(Event):
        form_name: str
        submission_id: str
        page_url: str | None
        fields: dict[str, str]

    # -- corrections (the original stays in the log) -------------------------
    class TouchpointVoided(Event):
        """A touchpoint recorded by mistake: it no longer counts, and is shown as voided."""

        voided_event_id: str
        voided_channel: str
        reason: str
        channel_last_contact: str | None  # the channel's last contact without it

        def apply(self, aggregate: Any) -> None:
            aggregate.voided = (*aggregate.voided, self.voided_event_id)
            count = aggregate.touch_counts.get(self.voided_channel, 0)
            if count > 0:
                aggregate.touch_counts[self.voided_channel] = count - 1
            aggregate._set_last_contact(self.voided_channel, self.channel_last_contact)

    class TouchpointCorrected(Event):
        """A touchpoint's date and/or descriptive fields put right."""

        corrected_event_id: str
        corrected_channel: str
        corrected_occurred_at: datetime | None
        changes: dict[str, str | None]
        reason: str
        channel_last_contact: str | None  # the channel's last contact after the correction

        def apply(self, aggregate: Any) -> None:
            if self.corrected_occurred_at is not None:
                aggregate._set_last_contact(self.corrected_channel, self.channel_last_contact)

    # -- merge -------------------------------------------------------------
    class MergedInto(Event):
        target_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.merged_into = self.target_id

    class Unmerged(Event):
        target_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.merged_into = None
            aggregate.unmerges += 1

    class Absorbed(Event):
        source_id: str

        def apply(self, aggregate: Any) -> None:
            if self.source_id not in aggregate.absorbed:
                aggregate.absorbed.append(self.source_id)

    class Released(Event):
        source_id: str

        def apply(self, aggregate: Any) -> None:
            if self.source_id in aggregate.absorbed:
                aggregate.absorbed.remove(self.source_id)

    # -- privacy -----------------------------------------------------------
    class PersonalDataErased(Event):
        """The customer's personal data was erased (their data key is destroyed next).

        Carries no personal content: who asked is the provenance's actor, why is
        ``reason`` (a case reference, not a copy of the request)."""

        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.erased = True
            aggregate.name = None
            aggregate.company = None
            aggregate.profile = {}
            aggregate.contact_points = {}
            # Business areas keep ids, stages and amounts, but nothing of theirs
            # may outlive the key in a clear snapshot: an erased customer is closed.
            aggregate.__dict__.pop("areas", None)

    # How often this customer was unmerged: a class default, so snapshots taken before
    # the count existed still load (they read 0 until the next unmerge).
    unmerges = 0
    # Event ids of voided touchpoints (a class default, so snapshots taken before
    # voids existed still load).
    voided: tuple[str, ...] = ()

    # ---------------------------------------------------------------------
    def __init__(self, name: str, company: str | None, lifecycle_stage: str, **_: Any) -> None:
        self.name = name
        self.company = company
        self.lifecycle_stage = lifecycle_stage
        self.profile: dict[str, str | None] = {"name": name, "company": company}
        self.contact_points: dict[str, list[str]] = {}
        self.partner_id: str | None = None
        self.merged_into: str | None = None
        self.absorbed: list[str] = []
        self.erased = False
        self.touch_counts: dict[str, int] = {}
        self.last_contact: dict[str, str] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> Customer:
        """Copy only what can change. The repository's cache hands out a deep copy on
        every load; the generic copy of ids and timestamps cost ~0.2 ms per command."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            clone.__dict__[name] = value if isinstance(value, _IMMUTABLE) else deepcopy(value, memo)
        return clone

    def touch_copy(self) -> Customer:
        """A copy that one plain touchpoint may advance without changing this customer:
        the containers such a touchpoint writes (``_count``'s counters, the map of areas,
        which ``area`` may add to; the pending events) are copied, everything else is
        shared and must only be read. What a one-row command takes from the aggregate
        cache instead of a deep copy: a fifth of its cost (``commands.bulk_rows``)."""
        clone = object.__new__(type(self))
        state = dict(self.__dict__)
        state["touch_counts"] = dict(self.touch_counts)
        state["last_contact"] = dict(self.last_contact)
        if "areas" in state:
            state["areas"] = dict(state["areas"])
        state["_pending_events"] = []
        clone.__dict__.update(state)
        return clone

    def _set_last_contact(self, channel: str, stamp: str | None) -> None:
        if stamp is None:
            self.last_contact.pop(channel, None)
        else:
            self.last_contact[channel] = stamp

    def _last_contact_without(
        self,
        history: Iterable[Customer.Event],
        channel: str,
        voided: str | None = None,
        moved: tuple[str, datetime] | None = None,
    ) -> str | None:
        """The channel's last contact as ``_count`` keeps it, over this customer's events
        up to its version, leaving out voided ones and using corrected dates."""
        gone = {*self.voided, *([voided] if voided else [])}
        dates: dict[str, datetime] = {}
        counted: list[Customer.Event] = []
        for e in history:
            if e.originator_version > self.version:
                break
            if isinstance(e, Customer.TouchpointCorrected) and e.corrected_occurred_at:
                dates[e.corrected_event_id] = e.corrected_occurred_at
            elif type(e).apply is Customer.Event.apply and e.channel == channel:
                counted.append(e)
        if moved is not None:
            dates[moved[0]] = moved[1]
        stamps = [dates.get(str(e.event_id), e.occurred_at).isoformat()
                  for e in counted if str(e.event_id) not in gone]
        return max(stamps, default=None)

    def _count(self, channel: str, occurred_at: datetime) -> None:
        self._count_stamp(channel, occurred_at.isoformat())

    def _count_stamp(self, channel: str, stamp: str) -> None:
        """``_count`` given ``occurred_at.isoformat()``: the bulk writer has it already
        (the stored event's ``occurred_at`` is that text), so it is computed once an event."""
        self.touch_counts[channel] = self.touch_counts.get(channel, 0) + 1
        if stamp > self.last_contact.get(channel, ""):
            self.last_contact[channel] = stamp

    # -- decisions ---------------------------------------------------------
    @classmethod
    def register(
        cls,
        customer_id: UUID | str,
        prov: Provenance,
        name: str,
        company: str | None = None,
        lifecycle_stage: str = "prospect",
    ) -> Customer:
        if lifecycle_stage not in LIFECYCLE_STAGES:
            raise InvalidTransitionError(f"unknown lifecycle stage {lifecycle_stage!r}")
        return cls._create(
            cls.Registered,
            id=customer_id,
            name=name,
            company=company,
            lifecycle_stage=lifecycle_stage,
            **prov.fields(),
        )

    def _check_open(self) -> None:
        if self.merged_into is not None:
            raise CustomerMergedError(self.id, self.merged_into)
        if self.erased:
            raise CustomerErasedError(f"customer {self.id} was erased")

    def record(self, event_class: type[Customer.Event], prov: Provenance, **fields: Any) -> None:
        """Record a touchpoint (call, email, fax, visit, web form, callback, step)."""
        if event_class not in TOUCHPOINT_EVENTS:
            raise TypeError(f"{event_class.__name__} is not a touchpoint event")
        self._check_open()
        if event_class is Customer.EmailQueued:
            fields = outbound_email_fields(prov.source_key, fields)
        if event_class in (Customer.EmailRecorded, Customer.EmailQueued) and not fields.get(
            "thread_id"
        ):
            customer = str(self.id).removeprefix("customer-")
            fields["thread_id"] = email_thread_id(
                customer, fields["message_id"], fields.get("in_reply_to"), fields["references"]
            )
        self.trigger_event(event_class, **prov.fields(), **fields)

    def area(self, name: str) -> dict[str, Any]:
        """The state a business area keeps on this customer (created empty on first use;
        not in ``__init__`` so snapshots taken before the area existed still load)."""
        areas: dict[str, dict[str, Any]] = self.__dict__.setdefault("areas", {})
        return areas.setdefault(name, {})

    def record_business(
        self, event_class: type[Customer.BusinessEvent], prov: Provenance, **fields: Any
    ) -> None:
        """Record a business area's event; the area's rules were checked by its module."""
        if not issubclass(event_class, Customer.BusinessEvent):
            raise TypeError(f"{event_class.__name__} is not a business event")
        self._check_open()
        self.trigger_event(event_class, **prov.fields(), **fields)

    def change_profile(self, prov: Provenance, changes: dict[str, str | None]) -> None:
        self._check_open()
        changed = {k: v for k, v in changes.items() if self.profile.get(k) != v}
        if changed:
            self.trigger_event(self.ProfileChanged, changes=changed, **prov.fields())

    def add_contact_point(self, prov: Provenance, kind: str, value: str, label: str | None) -> None:
        self._check_open()
        if value in self.contact_points.get(kind, []):
            return
        self.trigger_event(
            self.ContactPointAdded, kind=kind, value=value, label=label, **prov.fields()
        )

    def remove_contact_point(
        self, prov: Provenance, kind: str, value: str, reason: str | None
    ) -> None:
        self._check_open()
        if value not in self.contact_points.get(kind, []):
            raise ContactPointUnknownError(f"{kind} {value} does not belong to {self.id}")
        self.trigger_event(
            self.ContactPointRemoved, kind=kind, value=value, reason=reason, **prov.fields()
        )

    def change_lifecycle_stage(self, prov: Provenance, to_stage: str, reason: str | None) -> None:
        self._check_open()
        if to_stage == self.lifecycle_stage:
            return
        if to_stage not in _ALLOWED_STAGE_MOVES.get(self.lifecycle_stage, set()):
            raise InvalidTransitionError(
                f"lifecycle stage cannot move from {self.lifecycle_stage} to {to_stage}"
            )
        self.trigger_event(
            self.LifecycleStageChanged,
            from_stage=self.lifecycle_stage,
            to_stage=to_stage,
            reason=reason,
            **prov.fields(),
        )

    def add_note(self, prov: Provenance, text: str, visibility: str = "internal") -> None:
        self._check_open()
        self.trigger_event(self.NoteAdded, text=text, visibility=visibility, **prov.fields())

    def assign_partner(self, prov: Provenance, partner_id: str | None) -> None:
        self._check_open()
        if partner_id != self.partner_id:
            self.trigger_event(self.PartnerAssigned, partner_id=partner_id, **prov.fields())

    def merge_into(self, prov: Provenance, target_id: str) -> None:
        if target_id == str(self.id):
            raise InvalidTransitionError("a customer cannot be merged into itself")
        if self.merged_into == target_id:
            return
        self._check_open()
        if self.absorbed:
            raise InvalidTransitionError(
                f"customer {self.id} has absorbed others; unmerge them first"
            )
        self.trigger_event(self.MergedInto, target_id=target_id, **prov.fields())

    def absorb(self, prov: Provenance, source_id: str) -> None:
        if source_id in self.absorbed:
            return
        self._check_open()
        self.trigger_event(self.Absorbed, source_id=source_id, **prov.fields())

    def unmerge(self, prov: Provenance) -> str:
        if self.merged_into is None:
            raise InvalidTransitionError(f"customer {self.id} is not merged")
        target = self.merged_into
        self.trigger_event(self.Unmerged, target_id=target, **prov.fields())
        return target

    def erase(self, prov: Provenance, reason: str) -> bool:
        """Record the erasure of this customer's personal data; False if already erased."""
        if self.erased:
            return False
        self.trigger_event(self.PersonalDataErased, reason=reason, **prov.fields())
        return True

    def release(self, prov: Provenance, source_id: str) -> None:
        if source_id in self.absorbed:
            self.trigger_event(self.Released, source_id=source_id, **prov.fields())

    # -- corrections -------------------------------------------------------
    def _check_correctable(self, target: Customer.Event) -> None:
        """``target`` must be a live touchpoint of this very stream. A merged
        customer's history can still be corrected (it shows on the survivor's timeline)."""
        if self.erased:
            raise CustomerErasedError(f"customer {self.id} was erased")
        if target.originator_id != self.id or type(target) not in TOUCHPOINT_EVENTS:
            raise TouchpointUnknownError(
                f"event {target.event_id} is not a touchpoint of customer {self.id}")
        if type(target) not in CORRECTABLE_EVENTS:
            raise InvalidTransitionError(
                f"a {type(target).__name__} cannot be voided or corrected: outbound email "
                "records follow the sending, and a callback is closed by completing it "
                "(outcome cancelled)")
        if str(target.event_id) in self.voided:
            raise TouchpointVoidedError(f"touchpoint {target.event_id} was voided")

    def void_touchpoint(
        self, prov: Provenance, target: Customer.Event, reason: str,
        history: Iterable[Customer.Event],
    ) -> None:
        """Void a touchpoint recorded by mistake (wrong customer, test call, typo'd date).

        ``history``: this customer's events (oldest first), to work out the channel's
        last contact without the voided one."""
        self._check_correctable(target)
        target_id = str(target.event_id)
        last = self._last_contact_without(history, target.channel, voided=target_id)
        self.trigger_event(self.TouchpointVoided, voided_event_id=target_id,
                           voided_channel=target.channel, reason=reason,
                           channel_last_contact=last, **prov.fields())

    def correct_touchpoint(
        self,
        prov: Provenance,
        target: Customer.Event,
        *,
        occurred_at: datetime | None,
        changes: dict[str, str | None],
        reason: str,
        now: datetime,
        max_skew: timedelta,
        history: Iterable[Customer.Event],
    ) -> None:
        """Correct when a touchpoint happened and/or its descriptive text fields.

        ``history``: this customer's events (oldest first), for the channel's last contact."""
        self._check_correctable(target)
        if occurred_at is not None:
            if occurred_at.tzinfo is None:
                raise ValueError("occurred_at must be timezone-aware")
            check_not_ahead(occurred_at, now, max_skew)
        allowed = sorted(f for f in CORRECTABLE_FIELDS if hasattr(target, f))
        for name in changes:
            if name not in allowed:
                raise InvalidTransitionError(
                    f"{name!r} cannot be corrected on a {type(target).__name__} "
                    f"(correctable: {', '.join(allowed) or 'only occurred_at'})")
        changed = {k: v for k, v in changes.items() if getattr(target, k) != v}
        if occurred_at == target.occurred_at:
            occurred_at = None
        if occurred_at is None and not changed:
            raise InvalidTransitionError("the correction changes nothing")
        target_id = str(target.event_id)
        last = (self._last_contact_without(history, target.channel,
                                           moved=(target_id, occurred_at))
                if occurred_at is not None else self.last_contact.get(target.channel))
        self.trigger_event(self.TouchpointCorrected, corrected_event_id=target_id,
                           corrected_channel=target.channel, corrected_occurred_at=occurred_at,
                           changes=changed, reason=reason, channel_last_contact=last,
                           **prov.fields())


TOUCHPOINT_EVENTS = frozenset(
    {
        Customer.CallLogged,
        Customer.CallStepRecorded,
        Customer.CallbackRequested,
        Customer.CallbackCompleted,
        Customer.EmailRecorded,
        Customer.EmailQueued,
        Customer.EmailSent,
        Customer.EmailSendFailed,
        Customer.EmailOutcomeUnknown,
        Customer.EmailBounced,
        Customer.FaxRecorded,
        Customer.VisitRecorded,
        Customer.WebFormSubmitted,
    }
)


#: Touchpoints staff may void or correct: what was recorded about the outside world.
#: Outbound email records drive and report the sending (voiding one would not
#: unsend it), and callbacks have their own end (complete it as cancelled).
CORRECTABLE_EVENTS = frozenset(
    {
        Customer.CallLogged,
        Customer.CallStepRecorded,
        Customer.EmailRecorded,
        Customer.FaxRecorded,
        Customer.VisitRecorded,
        Customer.WebFormSubmitted,
    }
)

#: Descriptive text fields a correction may change (where the touchpoint has them);
#: ids, addresses, numbers and outcomes the summaries depend on are not among them.
CORRECTABLE_FIELDS = frozenset(
    {"agent", "queue", "summary", "subject", "staff", "place", "purpose", "notes"}
)


THREAD_NAMESPACE = UUID("b8f2a4c6-3d1e-4f7a-9c0b-2e5d8a1f6c34")
MESSAGE_ID_NAMESPACE = UUID("0c9d3e7a-51b2-4f86-a8d4-6e2b9f1c7a53")


def outbound_email_fields(source_key: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An outbound email's own ids, derived from its source key so every attempt (and
    every retry of the command) carries the same Message-ID: ``<uuid@sender-domain>``,
    the DSN envelope id, and References ending with the message it answers."""
    token = uuid5(MESSAGE_ID_NAMESPACE, source_key)
    domain = str(fields["from_address"]).rpartition("@")[2].strip("<> ") or "touchstream.invalid"
    refs = list(fields.get("references") or [])
    if fields.get("in_reply_to") and fields["in_reply_to"] not in refs:
        refs.append(fields["in_reply_to"])
    return {**fields, "message_id": f"<{token}@{domain}>", "envelope_id": token.hex,
            "references": refs}


def email_thread_id(
    customer_id: UUID | str, message_id: str, in_reply_to: str | None, references: list[str]
) -> str:
    """The thread of an email: its root message (first reference, else the message it
    answers, else itself), scoped to one customer so that replies from different
    customers to one newsletter never share a thread."""
    root = references[0] if references else (in_reply_to or message_id)
    return str(uuid5(THREAD_NAMESPACE, f"{customer_id}|{root.strip()}"))
