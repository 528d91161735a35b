"""Idempotency by source key: one interface, one implementation per store protocol.

* ``SourceKeyRows`` (SQLite, PostgreSQL): the recorder writes a row per
  (source key, event) in the same transaction as the events; a UNIQUE
  violation means "already recorded" and the first call's result is read back.
  These stores commit several streams in one transaction (``atomic``).
* ``ReservationStreams`` (EventStoreDB, or any recorder without a key index):
  a one-event reservation stream per source key, appended with "no stream",
  remembers the customer and the customer's version at reservation; every
  writer then scans the customer stream above that version for the key's
  events before appending with an explicit expected version. Two writers of
  one key can never both append: the second one's expected version is stale or
  it sees the first one's event in the scan.

Either way a command handler asks its ``KeyGuard`` before deciding, passes
``save_kwargs`` to the save, and asks ``duplicate`` when a save fails.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from commands.errors import CommandError
from commands.naming import StreamNaming
from commands.ports import SOURCE_KEYS_TABLE, KeyRow, Recorded, SourceKeyIndex
from domain.claims import SourceKeyReservation
from domain.customer import Customer

# One keyed event in a save: (source key, seq under the key, event id, index in the save).
KeyedEvent = tuple[str, int, UUID, int]


class KeyGuard(ABC):
    """One command's guard on its source key, asked before each decision on a customer."""

    pinned = False  # the key is bound to one customer: merges are no longer followed

    @abstractmethod
    def check(self, customer: Customer) -> Recorded | UUID | None:
        """What was recorded under the key already, the customer the key belongs to
        instead of ``customer``, or None to go ahead."""


class Idempotency(ABC):
    """Records each source key at most once, and reads back what was recorded."""

    atomic: bool  # several streams, and their key rows, commit in one transaction

    @abstractmethod
    def lookup(self, key: str) -> Recorded | None:
        """What was recorded under ``key``, as stored (``duplicate=True``), or None."""

    @abstractmethod
    def lookup_many(self, keys: list[str]) -> dict[str, Recorded]:
        """``lookup`` for many keys at once (absent keys omitted)."""

    @abstractmethod
    def guard(self, key: str) -> KeyGuard:
        """A guard for one command recording under ``key``."""

    @abstractmethod
    def save_kwargs(self, keyed: Sequence[KeyedEvent]) -> dict[str, Any]:
        """What the recorder needs to store ``keyed`` with the events."""

    def duplicate(self, key: str, exc: IntegrityError) -> Recorded | None:
        """After a failed save: what another writer recorded under ``key``, if that was why."""
        return None


class _Unguarded(KeyGuard):
    def check(self, customer: Customer) -> None:
        return None


class SourceKeyRows(Idempotency):
    """Source-key rows written by the recorder in the events' transaction."""

    atomic = True

    def __init__(self, index: SourceKeyIndex, naming: StreamNaming) -> None:
        self.index = index
        self.naming = naming

    def lookup(self, key: str) -> Recorded | None:
        stored = self.naming.digest(key)
        rows = self.index.lookup_source_keys([stored]).get(stored)
        return self._recorded(rows) if rows else None

    def lookup_many(self, keys: list[str]) -> dict[str, Recorded]:
        stored = {self.naming.digest(key): key for key in keys}
        found = self.index.lookup_source_keys(list(stored))
        return {stored[digest]: self._recorded(rows) for digest, rows in found.items()}

    def guard(self, key: str) -> KeyGuard:
        return _Unguarded()  # the UNIQUE row decides, at save time

    def save_kwargs(self, keyed: Sequence[KeyedEvent]) -> dict[str, Any]:
        # Stored as digests: a source key often carries a number, an address or a
        # Message-ID, and the row outlives an erasure.
        digest = self.naming.digest
        return {"source_keys": [(digest(k), seq, eid, i) for k, seq, eid, i in keyed]}

    def duplicate(self, key: str, exc: IntegrityError) -> Recorded | None:
        return self.lookup(key) if SOURCE_KEYS_TABLE in str(exc) else None

    def _recorded(self, rows: Sequence[KeyRow]) -> Recorded:
        return Recorded(
            customer_id=str(self.naming.customer_uuid(rows[0].originator_id)),
            event_ids=[str(r.event_id) for r in rows],
            versions=[r.version for r in rows],
            positions=[r.position for r in rows],
            duplicate=True,
        )


class ReservationStreams(Idempotency):
    """A reservation stream per source key, then a scan of the customer's stream."""

    atomic = False  # EventStoreDB appends to one stream per write

    def __init__(self, app: Application, naming: StreamNaming) -> None:
        self.app = app
        self.naming = naming

    def lookup(self, key: str) -> Recorded | None:
        try:
            res: SourceKeyReservation = self.app.repository.get(self.naming.reservation(key))
        except AggregateNotFoundError:
            return None
        return self.scan(res)

    def lookup_many(self, keys: list[str]) -> dict[str, Recorded]:
        raise CommandError("this store has no source-key index: record one command at a time")

    def guard(self, key: str) -> KeyGuard:
        return _Reservation(self, key)

    def save_kwargs(self, keyed: Sequence[KeyedEvent]) -> dict[str, Any]:
        return {}

    def reserve(self, key: str, customer: Customer) -> SourceKeyReservation:
        rid = self.naming.reservation(key)
        res = SourceKeyReservation.reserve(
            rid, self.naming.digest(key), str(self.naming.customer_uuid(customer.id)),
            self.naming.event_id(key), customer.version,
        )
        try:
            self.app.save(res)
        except IntegrityError:
            res = self.app.repository.get(rid)
        return res

    def scan(self, res: SourceKeyReservation) -> Recorded | None:
        stream = self.naming.customer(UUID(res.customer_id))
        digest = self.naming.digest
        mine = [e for e in self.app.events.get(stream, gt=res.floor_version)
                if isinstance(key := getattr(e, "source_key", None), str)
                and digest(key) == res.source_key]
        if not mine:
            return None
        return Recorded(
            customer_id=res.customer_id,
            event_ids=[str(e.event_id) for e in mine],  # type: ignore[attr-defined]
            versions=[e.originator_version for e in mine],
            positions=[None] * len(mine),
            duplicate=True,
        )


class _Reservation(KeyGuard):
    def __init__(self, protocol: ReservationStreams, key: str) -> None:
        self.protocol = protocol
        self.key = key
        self.reservation: SourceKeyReservation | None = None

    @property  # type: ignore[override]
    def pinned(self) -> bool:
        return self.reservation is not None

    def check(self, customer: Customer) -> Recorded | UUID | None:
        if self.reservation is None:
            self.reservation = self.protocol.reserve(self.key, customer)
        if self.reservation.customer_id != str(self.protocol.naming.customer_uuid(customer.id)):
            return UUID(self.reservation.customer_id)
        return self.protocol.scan(self.reservation)


def idempotency_for(app: Application, naming: StreamNaming) -> Idempotency:
    """The protocol the application's recorder supports."""
    if isinstance(app.recorder, SourceKeyIndex):
        return SourceKeyRows(app.recorder, naming)
    return ReservationStreams(app, naming)
