"""Aggregates other than customers (accounts, campaigns, technicians…): their shared shape.

A *record* is a business object with its own stream (``<kind>-<uuid>`` on
EventStoreDB, the uuid elsewhere). Each of its events carries the keyed digest
of the source key it was recorded under, and the record remembers the digests
it has seen, so a retried or duplicated command is recognised from the
record's own state on every store (no source-key rows or reservation streams
needed: one stream, one optimistic-concurrency check).

A record holds no personal data: legal entities, campaigns and staff
schedules only; a person's data stays on their customer stream, where it is
encrypted under their own key. ``domain.personal`` does not classify record
events for that reason; area modules must keep it true.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate


class Record(Aggregate):
    """Base of the non-customer aggregates."""

    INITIAL_VERSION = 0

    class Event(Aggregate.Event):
        event_id: UUID
        occurred_at: datetime
        actor: str
        key_digest: str

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            if aggregate is not None:
                seen = aggregate.__dict__.setdefault("key_digests", {})
                seen[self.key_digest] = self.originator_version
            return aggregate

    class Created(Event, Aggregate.Created):
        """Subclass it for the record's creation event (its fields are ``__init__``'s)."""

    def recorded(self, key_digest: str) -> bool:
        """True when an event under this source-key digest is already on the stream."""
        return key_digest in self.__dict__.get("key_digests", {})
