"""Field dispatch commands: work orders on the customer's stream, bookings on the technician's.

Every handler reads load → decide → save through ``commands.handling.on_customer``
(customer) or ``commands.records.on_record`` (technician), each idempotent by
its source key on every store.

**Two streams, one assignment.** A technician's bookings cross customers, so an
assignment touches two streams, and no store saves two streams in one step on
every backend. The order is fixed so that a crash can only leave a technician
*over*-booked, never double-booked:

1. book the window on the technician (``<key>#book``): the overlap rule is
   checked there, under the technician stream's optimistic concurrency, so of
   two racing assignments for overlapping windows exactly one books;
2. record the assignment on the customer (``<key>``);
3. release whatever the move freed (the previous technician on a reassign, the
   technician on a decline, cancel or completion: ``<key>#release``).

A retry of the same command (same source key) finds steps already done as
duplicates and completes the rest. A retry under another key reuses the
booking step 1 left (same work order, same window: nothing new is recorded).
If step 2 refuses (someone else assigned the order meanwhile), the booking
just made is released. A booking whose assignment never reached the customer
(a crash and no retry) is stale once older than ``STALE_BOOKING``: an
assignment that meets it as a conflict checks the customer's stream and, if
the order there is not held by that technician, releases it and books.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from commands import messages as m
from commands.context import WriteContext
from commands.handling import on_customer
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import RecordProvenance, load, on_record
from domain import dispatch as d
from domain.customer import Customer, Provenance

STALE_BOOKING = timedelta(minutes=10)
#: Why a booking was released, by the stage the move left the order in.
_WHY = {"scheduled": "declined", "assigned": "reassigned", "done": "done",
        "cancelled": "cancelled"}
KIND = "technician"
Handle = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Skill = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
_WO = Field(description="The work order's id (chosen by the client when creating it).")


def _window(start: datetime | None, end: datetime | None, required: bool) -> None:
    if (start is None) != (end is None):
        raise ValueError("give both window_start and window_end, or neither")
    if required and start is None:
        raise ValueError("window_start and window_end are required")
    if start is not None and end is not None:
        if end <= start:
            raise ValueError("window_end must be after window_start")
        if end - start > d.MAX_WINDOW:
            raise ValueError(f"a window may last at most {d.MAX_WINDOW}")


class RegisterTechnician(m.Command):
    """Register a field technician (a staff handle, skills, working minutes per day)."""

    kind: Literal["register-technician"] = "register-technician"
    technician_id: UUID
    handle: Handle = Field(description="Staff login, e.g. 'jonas'.")
    skills: list[Skill] = Field(min_length=1, max_length=50)
    day_minutes: int = Field(default=d.DEFAULT_DAY_MINUTES, ge=60, le=1440)

    def default_source_key(self) -> str | None:
        return str(self.technician_id)


class ChangeTechnicianSkills(m.Command):
    """Replace a technician's skills."""

    kind: Literal["technician-skills"] = "technician-skills"
    technician_id: UUID
    skills: list[Skill] = Field(min_length=1, max_length=50)


class CreateWorkOrder(m.Command):
    """Create a work order for a customer (alone, or from a service case)."""

    kind: Literal["create-work-order"] = "create-work-order"
    customer_id: UUID
    work_order_id: UUID = _WO
    case_id: UUID | None = Field(default=None, description="The service case it came from.")
    skill: Skill
    address: m.Short = Field(description="Where the work is (personal data).")
    summary: Annotated[str, Field(max_length=4000)] | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    window_start: m.AwareDatetime | None = Field(default=None, description="Requested window.")
    window_end: m.AwareDatetime | None = None

    @model_validator(mode="after")
    def _check(self) -> CreateWorkOrder:
        _window(self.window_start, self.window_end, required=False)
        return self

    def default_source_key(self) -> str | None:
        return str(self.work_order_id)


class WorkOrderCommand(m.Command):
    customer_id: UUID
    work_order_id: UUID = _WO


class ScheduleWorkOrder(WorkOrderCommand):
    """Plan (or re-plan) the window of an unassigned work order."""

    kind: Literal["schedule-work-order"] = "schedule-work-order"
    window_start: m.AwareDatetime
    window_end: m.AwareDatetime

    @model_validator(mode="after")
    def _check(self) -> ScheduleWorkOrder:
        _window(self.window_start, self.window_end, required=True)
        return self


class AssignTechnician(WorkOrderCommand):
    """Assign a scheduled work order to a technician (refused on an overlapping booking)."""

    kind: Literal["assign-technician"] = "assign-technician"
    technician_id: UUID


class ReassignTechnician(WorkOrderCommand):
    """Give an assigned work order to another technician (the history keeps the first)."""

    kind: Literal["reassign-technician"] = "reassign-technician"
    technician_id: UUID


class TechnicianStep(WorkOrderCommand):
    technician_id: UUID = Field(description="The technician the order is assigned to.")


class AcceptWorkOrder(TechnicianStep):
    """The technician accepts the assignment."""

    kind: Literal["accept-work-order"] = "accept-work-order"


class DeclineWorkOrder(TechnicianStep):
    """The technician declines: the order is scheduled and unassigned again."""

    kind: Literal["decline-work-order"] = "decline-work-order"
    reason: m.Short | None = None


class StartTravel(TechnicianStep):
    """The technician is on the way."""

    kind: Literal["start-travel"] = "start-travel"
    eta: m.AwareDatetime | None = None


class RecordArrival(TechnicianStep):
    """The technician arrived: ``occurred_at`` is the real time (a late sync keeps it)."""

    kind: Literal["record-arrival"] = "record-arrival"

    def default_source_key(self) -> str | None:
        return str(self.work_order_id)  # one arrival per work order, however often synced


class PartUsed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    part: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: int = Field(ge=1, le=10_000)


class RecordWorkDone(TechnicianStep):
    """Work done: parts used, minutes spent, the customer's signature (a blob address)."""

    kind: Literal["record-work-done"] = "record-work-done"
    parts: list[PartUsed] = Field(default_factory=list, max_length=200)
    minutes_spent: int = Field(ge=0, le=1440)
    signature_ref: m.Sha256 | None = Field(
        default=None, description="Blob address of the signature image (POST "
                                  "/dispatch/signatures stores one).")
    notes: Annotated[str, Field(max_length=4000)] | None = None

    def default_source_key(self) -> str | None:
        return str(self.work_order_id)


class CloseWorkOrder(WorkOrderCommand):
    """Write a finished work order off."""

    kind: Literal["close-work-order"] = "close-work-order"
    reason: m.Short | None = None

    def default_source_key(self) -> str | None:
        return str(self.work_order_id)


class CancelWorkOrder(WorkOrderCommand):
    """Cancel a work order that has not reached the site."""

    kind: Literal["cancel-work-order"] = "cancel-work-order"
    reason: m.Short | None = None

    def default_source_key(self) -> str | None:
        return str(self.work_order_id)


# ----------------------------------------------------------------- handlers
def register_technician(hub: Any, cmd: RegisterTechnician) -> Recorded:
    def decide(record: d.Technician | None, provs: Iterator[RecordProvenance]) -> d.Technician:
        if record is not None:
            raise d.TechnicianExistsError(f"technician {cmd.technician_id} exists already")
        return d.Technician._create(
            d.Technician.Registered, id=hub.context.naming.record(KIND, cmd.technician_id),
            handle=cmd.handle, skills=sorted(set(cmd.skills)), day_minutes=cmd.day_minutes,
            **next(provs).fields())

    return on_record(hub.context, KIND, cmd.technician_id, cmd, decide)


def change_technician_skills(hub: Any, cmd: ChangeTechnicianSkills) -> Recorded:
    w: WriteContext = hub.context
    load(w, KIND, cmd.technician_id)  # a clear 404 for an unknown technician

    def decide(record: d.Technician | None, provs: Iterator[RecordProvenance]) -> d.Technician:
        assert record is not None
        skills = sorted(set(cmd.skills))
        if skills != record.skills:
            record.trigger_event(d.Technician.SkillsChanged, skills=skills,
                                 **next(provs).fields())
        return record

    return on_record(w, KIND, cmd.technician_id, cmd, decide)


def create_work_order(hub: Any, cmd: CreateWorkOrder) -> Recorded:
    wo = str(cmd.work_order_id)

    def decide(c: Customer, provs: Iterator[Provenance]) -> None:
        if wo in c.area(d.AREA):
            raise d.WorkOrderExistsError(f"work order {wo} exists already on this customer")
        c.record_business(
            d.WorkOrderCreated, next(provs), work_order_id=wo,
            case_id=str(cmd.case_id) if cmd.case_id else None, skill=cmd.skill,
            address=cmd.address, summary=cmd.summary, priority=cmd.priority,
            window_start=_iso(cmd.window_start), window_end=_iso(cmd.window_end))

    return _on_customer(hub, cmd, source_key(cmd), decide)


def schedule_work_order(hub: Any, cmd: ScheduleWorkOrder) -> Recorded:
    return _move(hub, cmd, "schedule", None, window_start=cmd.window_start.isoformat(),
                 window_end=cmd.window_end.isoformat())


def accept_work_order(hub: Any, cmd: AcceptWorkOrder) -> Recorded:
    return _move(hub, cmd, "accept", str(cmd.technician_id),
                 technician_id=str(cmd.technician_id))


def decline_work_order(hub: Any, cmd: DeclineWorkOrder) -> Recorded:
    return _move(hub, cmd, "decline", str(cmd.technician_id),
                 technician_id=str(cmd.technician_id), reason=cmd.reason)


def start_travel(hub: Any, cmd: StartTravel) -> Recorded:
    return _move(hub, cmd, "en_route", str(cmd.technician_id),
                 technician_id=str(cmd.technician_id), eta=_iso(cmd.eta))


def record_arrival(hub: Any, cmd: RecordArrival) -> Recorded:
    return _move(hub, cmd, "arrive", str(cmd.technician_id),
                 technician_id=str(cmd.technician_id), channel="visit")


def record_work_done(hub: Any, cmd: RecordWorkDone) -> Recorded:
    return _move(hub, cmd, "complete", str(cmd.technician_id),
                 technician_id=str(cmd.technician_id),
                 parts=[p.model_dump() for p in cmd.parts], minutes_spent=cmd.minutes_spent,
                 signature_ref=cmd.signature_ref, notes=cmd.notes, channel="visit")


def close_work_order(hub: Any, cmd: CloseWorkOrder) -> Recorded:
    return _move(hub, cmd, "close", None, reason=cmd.reason)


def cancel_work_order(hub: Any, cmd: CancelWorkOrder) -> Recorded:
    return _move(hub, cmd, "cancel", None, reason=cmd.reason, holder=True)


def assign_technician(hub: Any, cmd: AssignTechnician | ReassignTechnician) -> Recorded:
    """Book on the technician, then record on the customer, then release what it freed."""
    w: WriteContext = hub.context
    key = source_key(cmd)
    action = "reassign" if isinstance(cmd, ReassignTechnician) else "assign"
    wo, tech = str(cmd.work_order_id), str(cmd.technician_id)
    if (done := w.keys.lookup(key)) is not None:
        _settle(hub, cmd, key, wo)  # a retry after the customer step: finish step 3
        return done
    window = book_window(hub, cmd, key)
    if window is None:
        _settle(hub, cmd, key, wo)  # recorded under another key: finish step 3
        return Recorded(customer_id=str(cmd.customer_id))
    start, end = window

    def decide(c: Customer, provs: Iterator[Provenance]) -> None:
        now = c.area(d.AREA).get(wo)
        if now is not None and now.get("stage") in d.BOOKED_STAGES and \
                now.get("technician_id") == tech:
            return  # already recorded (another key, or a retry): nothing new
        d.check_move(now, wo, action)
        assert now is not None
        if (now.get("window_start"), now.get("window_end")) != (start.isoformat(),
                                                                 end.isoformat()):
            raise d.WindowChangedError(f"work order {wo} was rescheduled meanwhile; assign again")
        c.record_business(d.WorkOrderAssigned, next(provs), work_order_id=wo,
                          technician_id=tech, previous_technician_id=now.get("technician_id"),
                          window_start=start.isoformat(), window_end=end.isoformat())

    try:
        result = _on_customer(hub, cmd, key, decide)
    except d.WorkOrderError:
        _release(hub, cmd, f"{key}#undo", tech, wo, "not-recorded", keep_if_held=True)
        raise
    _settle(hub, cmd, key, wo)
    return result


def book_window(hub: Any, cmd: AssignTechnician | ReassignTechnician,
                key: str | None = None) -> tuple[datetime, datetime] | None:
    """Step 1 alone: check the move on the customer's current state and book the order's
    window on the technician (under ``<key>#book``); what a crash after it leaves behind.
    None when the order is held by this technician already (nothing to book)."""
    w: WriteContext = hub.context
    key = key or source_key(cmd)
    action = "reassign" if isinstance(cmd, ReassignTechnician) else "assign"
    wo, tech = str(cmd.work_order_id), str(cmd.technician_id)
    order = _current(w, cmd.customer_id, wo)
    if order.get("stage") in d.BOOKED_STAGES and order.get("technician_id") == tech:
        return None
    d.check_move(order or None, wo, action)
    if order.get("window_start") is None or order.get("window_end") is None:
        raise d.WorkOrderTransitionError(f"work order {wo} has no window: schedule it first")
    start = datetime.fromisoformat(order["window_start"])
    end = datetime.fromisoformat(order["window_end"])
    _book(hub, cmd, key, wo, tech, start, end, order["skill"])
    return start, end


# ------------------------------------------------------------------ steps
def _on_customer(hub: Any, cmd: m.Command, key: str,
                 decide: Callable[[Customer, Iterator[Provenance]], None],
                 channel: str = "system") -> Recorded:
    # Merges are not followed: a merged-away customer's work orders answer 409.
    direction = "outbound" if channel == "visit" else "internal"
    return on_customer(hub.context, cmd.customer_id, key, decide, cmd, channel, direction,
                       follow_merge=False)


def _move(hub: Any, cmd: WorkOrderCommand, action: str, technician: str | None,
          channel: str = "system", holder: bool = False, **fields: Any) -> Recorded:
    wo = str(cmd.work_order_id)
    key = source_key(cmd)

    def decide(c: Customer, provs: Iterator[Provenance]) -> None:
        order = c.area(d.AREA).get(wo)
        d.check_move(order, wo, action, technician)
        assert order is not None
        extra = {"technician_id": order.get("technician_id")} if holder else {}
        c.record_business(d.EVENT_OF[action], next(provs), work_order_id=wo, **fields, **extra)

    result = _on_customer(hub, cmd, key, decide, channel)
    if action in ("decline", "complete", "cancel"):
        _settle(hub, cmd, key, wo)
    return result


def _current(w: WriteContext, customer_id: UUID, wo: str) -> dict[str, Any]:
    customer = w.store.load(customer_id)
    return dict(customer.area(d.AREA).get(wo) or {})


def _book(hub: Any, cmd: m.Command, key: str, wo: str, tech: str, start: datetime,
          end: datetime, skill: str) -> None:
    w: WriteContext = hub.context
    customer_id = str(cmd.customer_id)  # type: ignore[attr-defined]
    technician = load(w, KIND, UUID(tech))  # a clear 404 for an unknown technician
    other = d.find_conflict(technician.bookings, wo, start, end)
    if other is not None:
        _clear_stale(hub, cmd, key, technician, other)

    def decide(record: d.Technician | None, provs: Iterator[RecordProvenance]) -> d.Technician:
        assert record is not None
        record.book(next(provs).fields(), wo, customer_id, start, end, skill)
        return record

    on_record(w, KIND, UUID(tech), _keyed(cmd, f"{key}#book"), decide)


def _clear_stale(hub: Any, cmd: m.Command, key: str, technician: d.Technician,
                 other: str) -> None:
    """Release ``other``'s booking if it is older than ``STALE_BOOKING`` and its customer's
    stream does not show the order held by this technician (a crash between the steps)."""
    w: WriteContext = hub.context
    booking = technician.bookings[other]
    if w.clock() - datetime.fromisoformat(booking["booked_at"]) < STALE_BOOKING:
        return
    tech = str(technician.id).removeprefix(f"{KIND}-")
    held = _current(w, UUID(booking["customer_id"]), other)
    if held.get("stage") in d.BOOKED_STAGES and held.get("technician_id") == tech:
        return
    _release(hub, cmd, f"{key}#stale:{other}", tech, other, "not-recorded")


def _settle(hub: Any, cmd: WorkOrderCommand, key: str, wo: str) -> None:
    """Release the booking of the technician the last move took the order from."""
    order = _current(hub.context, cmd.customer_id, wo)
    gone = order.get("released_from")
    if gone:
        _release(hub, cmd, f"{key}#release", gone, wo,
                 _WHY.get(order.get("stage", ""), "released"), keep_if_held=True)


def _release(hub: Any, cmd: m.Command, key: str, tech: str, wo: str, why: str,
             keep_if_held: bool = False) -> None:
    w: WriteContext = hub.context
    if keep_if_held:
        customer_id: UUID = cmd.customer_id  # type: ignore[attr-defined]
        order = _current(w, customer_id, wo)
        if order.get("stage") in d.BOOKED_STAGES and order.get("technician_id") == tech:
            return  # it holds the order (again): the booking is right

    def decide(record: d.Technician | None, provs: Iterator[RecordProvenance]) -> d.Technician:
        assert record is not None
        record.release(next(provs).fields(), wo, why)
        return record

    on_record(w, KIND, UUID(tech), _keyed(cmd, key), decide)


def _keyed(cmd: m.Command, key: str) -> m.Command:
    """``cmd`` under the derived key ``key`` (kept as given by ``source_key``)."""
    prefix = f"{cmd.kind}:"
    return cmd.model_copy(update={"source_key": key if key.startswith(prefix)
                                  else prefix + key})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


HANDLERS: dict[type, Callable[[Any, Any], Recorded]] = {
    RegisterTechnician: register_technician,
    ChangeTechnicianSkills: change_technician_skills,
    CreateWorkOrder: create_work_order,
    ScheduleWorkOrder: schedule_work_order,
    AssignTechnician: assign_technician,
    ReassignTechnician: assign_technician,
    AcceptWorkOrder: accept_work_order,
    DeclineWorkOrder: decline_work_order,
    StartTravel: start_travel,
    RecordArrival: record_arrival,
    RecordWorkDone: record_work_done,
    CloseWorkOrder: close_work_order,
    CancelWorkOrder: cancel_work_order,
}
