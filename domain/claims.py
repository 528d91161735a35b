"""Small guard aggregates that let the event store itself enforce uniqueness.

A stream per contact point (``contact-<uuid5>``) and, on EventStoreDB, a stream
per source key (``sourcekey-<uuid5>``): the store's optimistic concurrency
(expected version) means two concurrent claims cannot both win.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import ContactPointTakenError


class ContactPointClaim(Aggregate):
    """Who owns one normalised contact point (``email:a@b.example``)."""

    INITIAL_VERSION = 0

    class Event(Aggregate.Event):
        contact: str

    class Opened(Event, Aggregate.Created):
        pass

    class Claimed(Event):
        customer_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owner = self.customer_id

    class Released(Event):
        customer_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owner = None

    def __init__(self, contact: str) -> None:
        self.contact = contact
        self.owner: str | None = None

    @classmethod
    def open(cls, claim_id: UUID | str, contact: str) -> ContactPointClaim:
        return cls._create(cls.Opened, id=claim_id, contact=contact)

    def claim(self, customer_id: str) -> None:
        if self.owner == customer_id:
            return
        if self.owner is not None:
            raise ContactPointTakenError(self.contact, self.owner)
        self.trigger_event(self.Claimed, contact=self.contact, customer_id=customer_id)

    def release(self, customer_id: str) -> None:
        if self.owner == customer_id:
            self.trigger_event(self.Released, contact=self.contact, customer_id=customer_id)


class SourceKeyReservation(Aggregate):
    """Reserves a source key for one event on one customer stream.

    Used where the store cannot put a UNIQUE row in the same transaction as the
    event (EventStoreDB). ``floor_version`` is the customer's version when the
    key was reserved: the event can only sit above it, so a writer that finds
    the reservation scans the customer stream from there for the event id.
    """

    INITIAL_VERSION = 0

    class Reserved(Aggregate.Created):
        source_key: str
        customer_id: str
        event_id: UUID
        floor_version: int

    def __init__(self, source_key: str, customer_id: str, event_id: UUID, floor_version: int) -> None:
        self.source_key = source_key
        self.customer_id = customer_id
        self.event_id = event_id
        self.floor_version = floor_version

    @classmethod
    def reserve(
        cls,
        reservation_id: UUID | str,
        source_key: str,
        customer_id: str,
        event_id: UUID,
        floor_version: int,
    ) -> SourceKeyReservation:
        return cls._create(
            cls.Reserved,
            id=reservation_id,
            source_key=source_key,
            customer_id=customer_id,
            event_id=event_id,
            floor_version=floor_version,
        )


class HeldTouchpoint(Aggregate):
    """A touchpoint from an unknown sender, held for a person to triage.

    Kept whole (the command as recorded) so assigning it later records exactly
    what arrived, under the same source key. The ``Held`` event's personal fields
    are sealed under the item's own key (``domain.personal.held_subject``); once
    that key is destroyed (assigned, or its person erased) they read as empty and
    ``erased`` is True.
    """

    INITIAL_VERSION = 0

    class Held(Aggregate.Created):
        source_key: str
        contact: str
        command_kind: str
        command: dict[str, Any]

    class Assigned(Aggregate.Event):
        customer_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.assigned_to = self.customer_id

    def __init__(self, source_key: str, contact: str, command_kind: str, command: dict[str, Any],
                 personal_data_erased: bool = False) -> None:
        self.source_key = source_key
        self.contact = contact
        self.command_kind = command_kind
        self.command = command
        self.assigned_to: str | None = None
        self.erased = personal_data_erased

    @classmethod
    def hold(
        cls, held_id: UUID | str, source_key: str, contact: str, command_kind: str,
        command: dict[str, Any],
    ) -> HeldTouchpoint:
        return cls._create(
            cls.Held, id=held_id, source_key=source_key, contact=contact,
            command_kind=command_kind, command=command,
        )

    def assign(self, customer_id: str) -> None:
        if self.assigned_to is None:
            self.trigger_event(self.Assigned, customer_id=customer_id)
