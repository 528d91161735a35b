"""Field dispatch: work orders on the customer's stream, technicians' bookings on their own.

A work order is a customer-owned object: every transition is an event on the
customer's stream (``Customer.BusinessEvent``), so it is encrypted, erased,
exported and sealed with the customer's other data. Its stage lives in
``customer.area("dispatch")`` (ids, stages, windows as ISO text; nothing
personal). Every move is checked by ``check_move`` (a pure table: no I/O, no
clock), which refuses with the stage the order is in and what it allows.

A technician's bookings cross customers, so they live on the technician's own
record (``Technician``, a ``domain.records.Record``: handle, skills, bookings
by work order id and window, no customer data beyond ids). ``find_conflict``
is the overlap rule: one technician, one work order at a time.

Times: ``occurred_at`` of an event is when it happened in the field (an
arrival synced three days late keeps its real time); the hub's recording time
is the event's ``recorded_at``. Late and overdue are not stored: they depend
on *now*, which ``flags`` takes as a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.customer import Customer
from domain.errors import DomainError
from domain.records import Record

STAGES = ("new", "scheduled", "assigned", "accepted", "en_route", "on_site", "done", "closed",
          "cancelled")
OPEN_STAGES = frozenset({"new", "scheduled", "assigned", "accepted", "en_route", "on_site"})
#: A technician holds the work order's window while it is in one of these stages.
BOOKED_STAGES = frozenset({"assigned", "accepted", "en_route", "on_site"})
#: action → (stages it may start from, stage it leads to)
MOVES: Mapping[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({"new", "scheduled"}), "scheduled"),
    "assign": (frozenset({"scheduled"}), "assigned"),
    "reassign": (frozenset({"assigned", "accepted", "en_route"}), "assigned"),
    "accept": (frozenset({"assigned"}), "accepted"),
    "decline": (frozenset({"assigned"}), "scheduled"),
    "en_route": (frozenset({"accepted"}), "en_route"),
    "arrive": (frozenset({"accepted", "en_route"}), "on_site"),
    "complete": (frozenset({"on_site"}), "done"),
    "close": (frozenset({"done"}), "closed"),
    "cancel": (frozenset({"new", "scheduled", "assigned", "accepted", "en_route"}), "cancelled"),
}
#: Moves only the technician the order is assigned to may make.
TECHNICIAN_MOVES = frozenset({"accept", "decline", "en_route", "arrive", "complete"})
MAX_WINDOW = timedelta(hours=12)
DEFAULT_DAY_MINUTES = 480
AREA = "dispatch"


class WorkOrderError(DomainError):
    """Base of the dispatch rules' refusals."""


class WorkOrderUnknownError(WorkOrderError):
    """Raised when a command names a work order the customer does not have."""


class WorkOrderExistsError(WorkOrderError):
    """Raised when a work order id is created a second time with another command."""


class WorkOrderTransitionError(WorkOrderError):
    """Raised when a move is not allowed from the work order's current stage."""


class WrongTechnicianError(WorkOrderError):
    """Raised when a technician acts on a work order assigned to someone else."""


class InvalidWindowError(WorkOrderError):
    """Raised when a time window ends before it starts, is too long, or has no timezone."""


class WindowChangedError(WorkOrderError):
    """Raised when a work order was rescheduled between booking and recording an assignment."""


class TechnicianConflictError(WorkOrderError):
    """Raised when a technician is already booked for an overlapping window."""


class SkillMissingError(WorkOrderError):
    """Raised when a technician lacks the skill a work order needs."""


class TechnicianExistsError(WorkOrderError):
    """Raised when a technician id is registered twice under different commands."""


# ----------------------------------------------------------------- pure rules
def check_window(start: datetime, end: datetime) -> None:
    """Refuse a window without timezone, ending before it starts, or longer than 12 hours."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidWindowError("window times must carry a timezone")
    if end <= start:
        raise InvalidWindowError(f"window ends ({end.isoformat()}) before it starts "
                                 f"({start.isoformat()})")
    if end - start > MAX_WINDOW:
        raise InvalidWindowError(f"window of {end - start} is longer than {MAX_WINDOW}")


def check_move(order: Mapping[str, Any] | None, work_order_id: str, action: str,
               technician_id: str | None = None) -> str:
    """The stage ``action`` leads to from ``order``'s stage; a clear refusal otherwise."""
    if order is None:
        raise WorkOrderUnknownError(f"no work order {work_order_id} on this customer")
    allowed, to = MOVES[action]
    stage = order["stage"]
    if stage not in allowed:
        can = sorted(a for a, (starts, _) in MOVES.items() if stage in starts)
        raise WorkOrderTransitionError(
            f"work order {work_order_id} is {stage}: cannot {action.replace('_', ' ')} "
            f"(allowed from {stage}: {', '.join(can) or 'nothing, it is finished'})")
    if action in TECHNICIAN_MOVES and technician_id != order.get("technician_id"):
        raise WrongTechnicianError(
            f"work order {work_order_id} is assigned to technician {order.get('technician_id')}, "
            f"not {technician_id}")
    return to


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open windows ``[start, end)`` share a moment (back-to-back is no overlap)."""
    return a_start < b_end and b_start < a_end


def find_conflict(bookings: Mapping[str, Mapping[str, str]], work_order_id: str,
                  start: datetime, end: datetime) -> str | None:
    """The id of another work order booked in an overlapping window, else None."""
    for other, booking in sorted(bookings.items()):
        if other == work_order_id:
            continue
        if overlaps(start, end, datetime.fromisoformat(booking["start"]),
                    datetime.fromisoformat(booking["end"])):
            return other
    return None


def flags(stage: str, window_start: datetime | None, window_end: datetime | None,
          arrived_at: datetime | None, now: datetime) -> tuple[bool, bool]:
    """(late, overdue) at ``now``: *late* — booked, the window has started and nobody has
    arrived; *overdue* — still open after its window ended."""
    late = (stage in ("assigned", "accepted", "en_route") and window_start is not None
            and arrived_at is None and now > window_start)
    overdue = stage in OPEN_STAGES and window_end is not None and now > window_end
    return late, overdue


# ----------------------------------------------------------- customer events
def _order(aggregate: Any, work_order_id: str) -> dict[str, Any]:
    orders: dict[str, dict[str, Any]] = aggregate.area(AREA)
    return orders.setdefault(work_order_id, {})


class WorkOrderCreated(Customer.BusinessEvent):
    work_order_id: str
    case_id: str | None
    skill: str
    address: str
    summary: str | None
    priority: str
    window_start: str | None  # the customer's requested window (ISO text)
    window_end: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(
            stage="new", skill=self.skill, technician_id=None, window_start=self.window_start,
            window_end=self.window_end)


class WorkOrderScheduled(Customer.BusinessEvent):
    work_order_id: str
    window_start: str
    window_end: str

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(
            stage="scheduled", window_start=self.window_start, window_end=self.window_end)


class WorkOrderAssigned(Customer.BusinessEvent):
    """Assigned (or reassigned: ``previous_technician_id`` keeps who had it)."""

    work_order_id: str
    technician_id: str
    previous_technician_id: str | None
    window_start: str
    window_end: str

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(
            stage="assigned", technician_id=self.technician_id,
            released_from=self.previous_technician_id)


class WorkOrderAccepted(Customer.BusinessEvent):
    work_order_id: str
    technician_id: str

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id)["stage"] = "accepted"


class WorkOrderDeclined(Customer.BusinessEvent):
    work_order_id: str
    technician_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(stage="scheduled", technician_id=None,
                                                     released_from=self.technician_id)


class WorkOrderEnRoute(Customer.BusinessEvent):
    work_order_id: str
    technician_id: str
    eta: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id)["stage"] = "en_route"


class WorkOrderArrived(Customer.BusinessEvent):
    """The technician's visit began: ``occurred_at`` is the real arrival time."""

    work_order_id: str
    technician_id: str

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id)["stage"] = "on_site"


class WorkOrderCompleted(Customer.BusinessEvent):
    """Work done: parts used, minutes spent, the customer's signature (a blob address)."""

    work_order_id: str
    technician_id: str
    parts: list[dict[str, Any]]
    minutes_spent: int
    signature_ref: str | None
    notes: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(stage="done",
                                                     released_from=self.technician_id)


class WorkOrderClosed(Customer.BusinessEvent):
    """Written off: nothing more will happen on it."""

    work_order_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id)["stage"] = "closed"


class WorkOrderCancelled(Customer.BusinessEvent):
    work_order_id: str
    technician_id: str | None  # who held it, whose booking is released
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        _order(aggregate, self.work_order_id).update(stage="cancelled", technician_id=None,
                                                     released_from=self.technician_id)


#: The event each action records.
EVENT_OF: Mapping[str, type[Customer.BusinessEvent]] = {
    "schedule": WorkOrderScheduled, "assign": WorkOrderAssigned, "reassign": WorkOrderAssigned,
    "accept": WorkOrderAccepted, "decline": WorkOrderDeclined, "en_route": WorkOrderEnRoute,
    "arrive": WorkOrderArrived, "complete": WorkOrderCompleted, "close": WorkOrderClosed,
    "cancel": WorkOrderCancelled,
}


# --------------------------------------------------------------- technicians
class Technician(Record):
    """A field technician's record: skills, working minutes per day, bookings."""

    class Registered(Record.Created):
        handle: str
        skills: list[str]
        day_minutes: int

    class SkillsChanged(Record.Event):
        skills: list[str]

        def apply(self, aggregate: Any) -> None:
            aggregate.skills = list(self.skills)

    class Booked(Record.Event):
        work_order_id: str
        customer_id: str
        window_start: str
        window_end: str

        def apply(self, aggregate: Any) -> None:
            # ``booked_at`` is the hub's recording time: a booking whose assignment never
            # reached the customer's stream is recognised as stale by its age.
            aggregate.bookings[self.work_order_id] = {
                "customer_id": self.customer_id, "start": self.window_start,
                "end": self.window_end, "booked_at": self.timestamp.isoformat()}

    class Unbooked(Record.Event):
        work_order_id: str
        why: str  # declined, reassigned, cancelled, done, not-recorded

        def apply(self, aggregate: Any) -> None:
            aggregate.bookings.pop(self.work_order_id, None)

    def __init__(self, handle: str, skills: list[str], day_minutes: int, **_: Any) -> None:
        self.handle = handle
        self.skills = list(skills)
        self.day_minutes = day_minutes
        self.bookings: dict[str, dict[str, str]] = {}

    def book(self, fields: dict[str, Any], work_order_id: str, customer_id: str,
             start: datetime, end: datetime, skill: str) -> None:
        """Hold ``[start, end)`` for the work order; the same booking again changes nothing."""
        if skill not in self.skills:
            raise SkillMissingError(f"technician {self.handle} lacks skill {skill!r} "
                                    f"(has: {', '.join(self.skills) or 'none'})")
        held = self.bookings.get(work_order_id)
        if held is not None and (held["customer_id"], held["start"], held["end"]) == (
                customer_id, start.isoformat(), end.isoformat()):
            return  # a retry after a crash: the booking is reused
        other = find_conflict(self.bookings, work_order_id, start, end)
        if other is not None:
            b = self.bookings[other]
            raise TechnicianConflictError(
                f"technician {self.handle} is booked {b['start']}–{b['end']} for work order "
                f"{other}, which overlaps {start.isoformat()}–{end.isoformat()}")
        if held is not None:
            self.trigger_event(self.Unbooked, work_order_id=work_order_id, why="rebooked",
                               **fields)
        self.trigger_event(self.Booked, work_order_id=work_order_id, customer_id=customer_id,
                           window_start=start.isoformat(), window_end=end.isoformat(), **fields)

    def release(self, fields: dict[str, Any], work_order_id: str, why: str) -> None:
        """Free the work order's window (nothing when it holds none)."""
        if work_order_id in self.bookings:
            self.trigger_event(self.Unbooked, work_order_id=work_order_id, why=why, **fields)
