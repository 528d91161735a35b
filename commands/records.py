"""The shape of every command on a non-customer aggregate (``domain.records.Record``):
load -> decide -> save, once per source key, retried on a lost race.

The record remembers the keyed digests of the source keys it was changed
under, so a retry is answered from its own state as a duplicate (on every
store: the check and the save are one optimistic-concurrency step on one
stream). A race with another writer fails the save on the expected version
and the step runs again on fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands import messages as m
from commands.context import WriteContext
from commands.errors import CommandError
from commands.ports import Recorded
from commands.provenance import provenances, source_key
from commands.retry import TryAgain, retrying
from domain.customer import Provenance
from domain.records import Record


class RecordNotFoundError(CommandError):
    """Raised when a command names a record (account, campaign…) that does not exist."""


class RecordProvenance:
    """What every record event carries: ids and time from the command, and the key's digest."""

    def __init__(self, prov: Provenance, key_digest: str) -> None:
        self.event_id = prov.event_id
        self.occurred_at = prov.occurred_at
        self.actor = prov.actor
        self.key_digest = key_digest

    def fields(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "occurred_at": self.occurred_at,
                "actor": self.actor, "key_digest": self.key_digest}


def is_kind(aggregate: Any, kind: str) -> bool:
    """Whether ``aggregate`` is a record of ``kind`` ("duplicate-review" names
    ``DuplicateReview``). On the SQL stores every aggregate's id is a bare UUID, so an
    id given for one kind may name a customer or another kind of record."""
    return isinstance(aggregate, Record) and (
        type(aggregate).__name__.lower() == kind.replace("-", "").replace("_", ""))


def load(w: WriteContext, kind: str, record_id: UUID) -> Any:
    """The record, or ``RecordNotFoundError`` (also when the id names something else)."""
    try:
        found = w.store.app.repository.get(w.naming.record(kind, record_id))
    except AggregateNotFoundError as exc:
        raise RecordNotFoundError(f"no {kind} {record_id}") from exc
    if not is_kind(found, kind):
        raise RecordNotFoundError(f"no {kind} {record_id}")
    return found


def on_record(w: WriteContext, kind: str, record_id: UUID, cmd: m.Command,
              decide: Callable[[Any, Iterator[RecordProvenance]], Record]) -> Recorded:
    """Record what ``decide`` triggers on the ``kind`` record ``record_id`` under ``cmd``'s
    source key, once. ``decide(record_or_None, provenances)`` returns the record it changed
    or created (``None`` is given when the stream does not exist yet)."""
    key = source_key(cmd)
    digest = w.naming.digest(key)
    stream = w.naming.record(kind, record_id)
    repo = w.store.app.repository

    def attempt(_: int) -> Recorded:
        try:
            record = repo.get(stream)
        except AggregateNotFoundError:
            record = None
        if record is not None and not is_kind(record, kind):
            raise RecordNotFoundError(f"no {kind} {record_id}: that id names something else")
        if record is not None and record.recorded(digest):
            return _recorded(record_id, record, digest)
        provs = (RecordProvenance(p, digest) for p in provenances(
            cmd, key, "system", "internal", w.clock, w.max_future_skew, w.naming.event_id))
        changed = decide(record, provs)
        pending = list(changed.pending_events)
        if not pending:
            return Recorded(customer_id=str(record_id))
        try:
            recordings = w.store.app.save(changed)
        except IntegrityError as exc:
            raise TryAgain() from exc
        return Recorded(customer_id=str(record_id),
                        event_ids=[str(e.event_id) for e in pending],  # type: ignore[attr-defined]
                        versions=[e.originator_version for e in pending],
                        positions=[r.notification.id for r in recordings] or [None] * len(pending))

    return retrying(attempt, gave_up=f"{kind} {record_id} kept changing")


def _recorded(record_id: UUID, record: Record, digest: str) -> Recorded:
    version = record.__dict__["key_digests"][digest]
    return Recorded(customer_id=str(record_id), versions=[version], duplicate=True)
