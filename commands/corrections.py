"""Voiding and correcting touchpoints: staff put a mistaken record right.

Nothing is rewritten: a void or a correction is a new event on the stream
that holds the touchpoint (``Customer.TouchpointVoided``,
``Customer.TouchpointCorrected``), and the read models honour it (the
timeline marks or moves the row; the summary's touches and last contact
leave a voided touchpoint out and use a corrected date).

The command names the customer staff were looking at and the event id from
its timeline; the touchpoint is looked for on that customer's stream and on
the streams of customers merged into it, and the decision is recorded on the
stream that holds it. Each command is idempotent by its source key like every
other (a void's natural key is the voided event id: voiding twice is one void).

Handlers read load → decide → save through the ``CustomerWriter`` port, which
the write model (``commands.hub.Hub``) provides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from commands import messages as m
from commands.ports import Recorded
from domain.customer import Customer
from domain.errors import TouchpointUnknownError

#: How many streams (the customer's and those merged into it) are searched at most.
MAX_STREAMS = 100


class CustomerWriter(Protocol):
    """What the handlers need from the write model."""

    max_future_skew: timedelta

    def clock(self) -> datetime: ...

    def customer(self, customer_id: UUID) -> Customer:
        """The customer's current state; ``CustomerNotFoundError`` when there is none."""
        ...

    def stream(self, customer_id: UUID) -> Iterable[Customer.Event]:
        """Every event of one customer's stream, oldest first."""
        ...

    def record_on(
        self, cmd: m.Command, customer_id: UUID, decide: Callable[[Customer, Any], None]
    ) -> Recorded:
        """Decide on this customer's own stream under ``cmd``'s source key, and save."""
        ...


def void_touchpoint(writer: CustomerWriter, cmd: m.VoidTouchpoint) -> Recorded:
    """Void a touchpoint recorded by mistake."""
    holder, target = find_touchpoint(writer, cmd.customer_id, cmd.event_id)
    return writer.record_on(cmd, holder, lambda c, p: c.void_touchpoint(
        next(iter(p)), target, cmd.reason, history=writer.stream(holder)))


def correct_touchpoint(writer: CustomerWriter, cmd: m.CorrectTouchpoint) -> Recorded:
    """Correct a touchpoint's date and/or descriptive fields."""
    holder, target = find_touchpoint(writer, cmd.customer_id, cmd.event_id)
    return writer.record_on(cmd, holder, lambda c, p: c.correct_touchpoint(
        next(iter(p)), target, occurred_at=cmd.corrected_occurred_at,
        changes=dict(cmd.changes), reason=cmd.reason, now=writer.clock(),
        max_skew=writer.max_future_skew, history=writer.stream(holder)))


def find_touchpoint(
    writer: CustomerWriter, customer_id: UUID, event_id: UUID
) -> tuple[UUID, Customer.Event]:
    """The stream holding ``event_id`` (the customer's own, or one merged into it) and
    the event. A scan of the streams: corrections are rare, and no read model is
    trusted for a write decision."""
    pending = [customer_id]
    seen: set[UUID] = set()
    while pending and len(seen) < MAX_STREAMS:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        customer = writer.customer(current)  # a clear "no customer" for an unknown id
        for event in writer.stream(current):
            if event.event_id == event_id:
                return current, event
        pending += [UUID(source) for source in customer.absorbed]
    raise TouchpointUnknownError(
        f"no event {event_id} on customer {customer_id} or the customers merged into it")


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    m.VoidTouchpoint: void_touchpoint,
    m.CorrectTouchpoint: correct_touchpoint,
}
