"""Store access for customers: load (cached), save with source keys, snapshots, the cache.

A save carries the source-key rows of its events (on stores that keep them)
and may carry other aggregates in the same transaction (contact-point claims
with the registration that owns them, on stores that commit several streams
at once). A save that crosses a multiple of the snapshot interval takes a
snapshot; the saved customer goes into the aggregate cache, exactly as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import StoredEvent

from commands.errors import ConflictError, CustomerNotFoundError
from commands.idempotency import Idempotency, KeyedEvent
from commands.naming import StreamNaming
from commands.ports import Recorded
from domain.customer import Customer

MAX_MERGE_HOPS = 10


@dataclass
class Prepared:
    """One customer's part of a bulk save, built without pending events (``commands.bulk``):
    the customer already advanced past its new events, their stored rows in order, and per
    source key (in the order of the save's keys) the ids of the events it owns."""

    customer: Customer
    old_version: int
    stored: list[StoredEvent] = field(default_factory=list)
    ids: list[list[UUID]] = field(default_factory=list)


class CustomerStore:
    """Loads and saves customers through the application's repository and recorder."""

    def __init__(
        self, app: Application, naming: StreamNaming, keys: Idempotency, snapshot_interval: int
    ) -> None:
        self.app = app
        self.naming = naming
        self.keys = keys
        self.snapshot_interval = snapshot_interval

    def load(self, customer_id: UUID) -> Customer:
        try:
            found = self.app.repository.get(self.naming.customer(customer_id))
        except AggregateNotFoundError as exc:
            raise CustomerNotFoundError(f"no customer {customer_id}") from exc
        # On the SQL stores ids are bare UUIDs: the id of an account, a campaign or a
        # technician must not load as a customer.
        if not isinstance(found, Customer):
            raise CustomerNotFoundError(f"no customer {customer_id}")
        return found

    def load_cached(self, customer_id: UUID) -> Customer:
        """A copy of the cached customer without asking the store (stale is fine for a
        decision the save will validate), else a load."""
        cache = self.app.repository.cache
        if cache is not None:
            try:
                cached = cache.get(self.naming.customer(customer_id))
            except KeyError:
                pass
            else:
                if isinstance(cached, Customer):
                    return deepcopy(cached)
        return self.load(customer_id)

    def load_for_touch(self, customer_id: UUID) -> Customer | None:
        """A ``touch_copy`` of the cached customer (stale is fine, as for ``load_cached``),
        or None when it is not cached: what a plain touchpoint advances instead of a
        deep copy (``commands.bulk_rows``). The cached one is not changed here."""
        cache = self.app.repository.cache
        if cache is None:
            return None
        try:
            cached = cache.get(self.naming.customer(customer_id))
        except KeyError:
            return None
        return cached.touch_copy() if isinstance(cached, Customer) else None

    def forget(self, customer_id: UUID) -> None:
        """Drop a customer from the aggregate cache: its next load reads the store."""
        cache = self.app.repository.cache
        if cache is not None:
            try:
                cache.get(self.naming.customer(customer_id), evict=True)
            except KeyError:
                pass

    def exists(self, customer_id: UUID) -> bool:
        try:
            self.load_cached(customer_id)
        except CustomerNotFoundError:
            return False
        return True

    def resolve_merges(self, customer_id: UUID) -> UUID:
        """The customer ``customer_id`` was merged into, following the chain."""
        for _ in range(MAX_MERGE_HOPS):
            customer = self.load(customer_id)
            if customer.merged_into is None:
                return customer_id
            customer_id = UUID(customer.merged_into)
        raise ConflictError(f"merge chain too long from {customer_id}")

    def stream(self, customer_id: UUID) -> Iterable[Customer.Event]:
        return self.app.events.get(self.naming.customer(customer_id))  # type: ignore[return-value]

    def save(self, customer: Customer, key: str, *, along: Sequence[Aggregate] = ()) -> Recorded:
        """Save the customer's pending events under ``key`` (and ``along``'s, first, in the
        same transaction: only on stores whose idempotency protocol is atomic)."""
        pending = list(customer.pending_events)
        offset = sum(len(a.pending_events) for a in along)
        keyed: list[KeyedEvent] = [
            (key, i, e.event_id, offset + i) for i, e in enumerate(pending)  # type: ignore[attr-defined]
        ]
        old_version = pending[0].originator_version - 1
        recordings = self.app.save(*along, customer, **self.keys.save_kwargs(keyed))
        self.snapshot_due([customer], [old_version])
        self.remember(customer)
        positions = [r.notification.id for r in recordings][offset:]
        return Recorded(
            customer_id=str(self.naming.customer_uuid(customer.id)),
            event_ids=[str(e.event_id) for e in pending],  # type: ignore[attr-defined]
            versions=[e.originator_version for e in pending],
            positions=positions or [None] * len(pending),
        )

    def save_keyed(
        self, entries: Sequence[tuple[Customer | Prepared, Sequence[str]]]
    ) -> list[list[Recorded]]:
        """Several customers in one transaction, the pending events under their keys: each key
        owns the pending events carrying it as their source key (a touchpoint's event, and
        what it triggered in the same decision, e.g. joining a service case), in order.
        Entries may instead all be ``Prepared`` (the bulk writer's: events already stored
        as rows, the customer already advanced past them)."""
        if entries and all(isinstance(c, Prepared) for c, _ in entries):
            return self._save_prepared(entries)  # type: ignore[arg-type]
        keyed: list[KeyedEvent] = []
        old_versions = []
        # Per customer, per key: its events with their places in the save (and in the
        # recordings), in order. Places are counted here, not looked up by event id
        # (a UUID's hash is a Python call, and this runs per event of a bulk import).
        owned: list[list[list[tuple[Any, int]]]] = []
        place = 0
        for customer, keys in entries:
            if not isinstance(customer, Customer):
                raise TypeError("a save takes customers with pending events, or only Prepared")
            pending = customer.pending_events
            groups: dict[str, list[tuple[Any, int]]] = {key: [] for key in keys}
            for e in pending:
                group = groups.get(e.__dict__.get("source_key"))  # type: ignore[arg-type]
                if group is None:
                    raise ValueError(f"{len(pending)} pending events do not belong to the "
                                     f"{len(keys)} source keys given")
                group.append((e, place))
                place += 1
            if not pending or any(not g for g in groups.values()):
                raise ValueError(f"{len(pending)} pending events for {len(keys)} source keys")
            for key in keys:
                keyed += [(key, seq, e.event_id, i)  # type: ignore[attr-defined]
                          for seq, (e, i) in enumerate(groups[key])]
            owned.append([groups[key] for key in keys])
            old_versions.append(pending[0].originator_version - 1)
        customers = [c for c, _ in entries if isinstance(c, Customer)]
        recordings = self.app.save(*customers, **self.keys.save_kwargs(keyed))
        positions: list[int | None] = [r.notification.id for r in recordings] or [None] * place
        self.snapshot_due(customers, old_versions)
        out: list[list[Recorded]] = []
        for customer, groups_of in zip(customers, owned, strict=True):
            self.remember(customer)
            customer_id = str(self.naming.customer_uuid(customer.id))
            out.append([Recorded(
                customer_id=customer_id,
                event_ids=[str(e.event_id) for e, _ in events],  # type: ignore[attr-defined]
                versions=[e.originator_version for e, _ in events],
                positions=[positions[i] for _, i in events])
                for events in groups_of])
        return out

    def _save_prepared(self, entries: Sequence[tuple[Prepared, Sequence[str]]]
                       ) -> list[list[Recorded]]:
        """The bulk writer's save: the rows through the recorder, in one transaction with
        their source-key rows, as ``Application.save`` would insert them (the same
        ``insert_events``: the same locks, the same unique (stream, version) and key
        constraints, notification ids in commit order); then snapshots and the cache."""
        stored: list[StoredEvent] = []
        keyed: list[KeyedEvent] = []
        for part, keys in entries:
            if len(part.ids) != len(keys) or not part.stored:
                raise ValueError(f"{len(part.ids)} event groups for {len(keys)} source keys")
            place = len(stored)
            stored += part.stored
            for key, ids in zip(keys, part.ids, strict=True):
                if not ids:
                    raise ValueError(f"no event for source key {key!r}")
                for seq, event_id in enumerate(ids):
                    keyed.append((key, seq, event_id, place))
                    place += 1
            if place != len(stored):
                raise ValueError(f"{len(part.stored)} stored events, {place} keyed")
        notification_ids = self.app.recorder.insert_events(
            stored, **self.keys.save_kwargs(keyed))
        positions: Sequence[int | None] = notification_ids or [None] * len(stored)
        self.snapshot_due([p.customer for p, _ in entries], [p.old_version for p, _ in entries])
        out: list[list[Recorded]] = []
        place = 0
        for part, _ in entries:
            self.remember(part.customer)
            customer_id = str(self.naming.customer_uuid(part.customer.id))
            recorded = []
            version = part.old_version + 1  # a part's rows are its customer's next versions
            for ids in part.ids:
                n = len(ids)
                recorded.append(Recorded(
                    customer_id=customer_id, event_ids=[str(e) for e in ids],
                    versions=list(range(version, version + n)),
                    positions=list(positions[place:place + n])))
                place += n
                version += n
            out.append(recorded)
        return out

    def save_built(self, customer: Customer, old_version: int, stored: StoredEvent,
                   event_id: UUID, key: str) -> Recorded:
        """One event built as its stored row (``commands.bulk_rows``), the customer already
        advanced past it from ``old_version``: inserted with its key row in one
        transaction through the recorder, as ``save`` would (the same ``insert_events``:
        the same unique (stream, version) and key constraints, notification ids in commit
        order; ``IntegrityError`` when either is taken); then the snapshot if due, and
        the cache."""
        keyed: list[KeyedEvent] = [(key, 0, event_id, 0)]
        (position,) = self.app.recorder.insert_events([stored], **self.keys.save_kwargs(keyed))
        if _crossed(self.snapshot_interval, customer.version, old_version):  # one save in n
            self.snapshot_due([customer], [old_version])
        self.remember(customer)
        return Recorded(customer_id=str(self.naming.customer_uuid(customer.id)),
                        event_ids=[str(event_id)], versions=[customer.version],
                        positions=[position])

    def remember(self, customer: Customer) -> None:
        """Cache the customer just saved: it is exactly what is stored, so the next load
        need not replay its events (loads still fast-forward past other writers)."""
        if self.app.repository.cache is not None:
            self.app.repository.cache.put(customer.id, customer)

    def snapshot_due(self, customers: Sequence[Customer], old_versions: Sequence[int]) -> None:
        """A snapshot of each customer whose save crossed a multiple of the interval."""
        n = self.snapshot_interval
        if self.app.snapshots is None or n <= 0:
            return
        due = [Snapshot.take(c) for c, old in zip(customers, old_versions, strict=True)
               if _crossed(n, c.version, old)]
        if due:
            self.app.snapshots.put(due)


def _crossed(interval: int, version: int, old_version: int) -> bool:
    """Whether a save from ``old_version`` to ``version`` crossed a multiple of the
    snapshot ``interval`` (never, for an interval of 0: no snapshots)."""
    return interval > 0 and version // interval > max(old_version, 0) // interval
