"""The write model's facade: one eventsourcing application whose public methods are the commands.

Each business area keeps its commands in its own module beside this one
(``customers``, ``touchpoints``, ``triage``, ``mailbox``; ``bulk`` for history
backfill) and works through the shared parts in ``WriteContext``: stream
naming (``naming``), store access (``store``), the source-key idempotency
protocol of the store in use (``idempotency``: SQL source-key rows, or
EventStoreDB reservation streams) and contact-point claims
(``contact_claims``). A new area adds its module and aggregate, and a few
lines here.

Event ids are UUIDv5 of the source key, so the same touchpoint always has the
same event id whichever process records it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, Recording, Transcoder
from eventsourcing.utils import EnvType

from commands import (
    accounts,
    corrections,
    customers,
    dispatch,
    handling,
    knowledge,
    mailbox,
    marketing,
    quality,
    replies,
    sales,
    service,
    territories,
    touchpoints,
    triage,
    work,
)
from commands import email_messages as em
from commands import messages as m
from commands.bulk_rows import PlainTouchpoints, encoder_for
from commands.contact_claims import ContactClaims
from commands.context import WriteContext
from commands.errors import (
    CommandError,
    ConcurrencyError,
    ConflictError,
    CustomerNotFoundError,
    HeldForTriageError,
)
from commands.idempotency import SourceKeyRows, idempotency_for
from commands.identity import contact_key, normalise
from commands.naming import NAMESPACE, StreamNaming
from commands.ports import KeyShredder, Recorded, SaveLimits, SourceKeyIndex, save_limits_of
from commands.provenance import source_key
from commands.retry import MAX_ATTEMPTS
from commands.store import MAX_MERGE_HOPS, CustomerStore, Prepared
from domain.claims import HeldTouchpoint
from domain.customer import DEFAULT_MAX_FUTURE_SKEW, Customer
from domain.errors import ContactPointTakenError, DomainError
from domain.mailbox import Mailbox


class Hub(Application):
    """Touchstream's write model."""

    name = "touchstream"
    # The aggregate cache with fast-forward (the library's defaults) reads only the
    # events newer than the cached copy on each load: one query, no replay, and
    # still current when other processes write (override: AGGREGATE_CACHE_MAXSIZE).
    env: ClassVar[dict[str, str]] = {
        "COMPRESSOR_TOPIC": "",
        "IS_SNAPSHOTTING_ENABLED": "y",
        "AGGREGATE_CACHE_MAXSIZE": "1000",
    }

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        naming: StreamNaming | None = None,
        default_region: str | None = None,
        unknown_contacts: str = "create",
        snapshot_interval: int = 50,
        clock: Callable[[], datetime] | None = None,
        mapper_factory: Callable[[Transcoder], Mapper[Any]] | None = None,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        shredder: KeyShredder | None = None,
    ) -> None:
        # Before the library builds its mapper (in ``super().__init__``): with a
        # factory, personal fields are encrypted per customer (touchstream.privacy).
        self._mapper_factory = mapper_factory
        super().__init__(env)
        self.naming = naming or StreamNaming(prefixed=False)
        self.clock = clock or (lambda: datetime.now(UTC))
        keys = idempotency_for(self, self.naming)
        store = CustomerStore(self, self.naming, keys, snapshot_interval)
        self.context = WriteContext(
            naming=self.naming, keys=keys, store=store,
            claims=ContactClaims(self, self.naming, store, self.clock),
            default_region=default_region, unknown_contacts=unknown_contacts, clock=self.clock,
            max_future_skew=max_future_skew, shredder=shredder,
        )
        self.max_future_skew = max_future_skew
        self.default_region = default_region
        # How a plain touchpoint's row is built without its event object (None: the
        # domain path only): per mapper, so once.
        self.rows_writer = encoder_for(self.mapper)
        self.key_index: SourceKeyIndex | None = (
            keys.index if isinstance(keys, SourceKeyRows) else None
        )
        # How much one save may carry on this store (the bulk importer's chunks).
        self.save_limits: SaveLimits = save_limits_of(self.recorder)

    @property
    def unknown_contacts(self) -> str:
        """"create" a prospect for an unknown sender, or hold its touchpoints for triage."""
        return self.context.unknown_contacts

    @unknown_contacts.setter
    def unknown_contacts(self, value: str) -> None:
        self.context = replace(self.context, unknown_contacts=value)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        """The library's save, with the aggregates collected by a plain class check.

        The library tells aggregates from events with ``isinstance`` against
        runtime-checkable ``Protocol``s, which walks the protocol's members on
        every call: two per save cost a command about what its own decision
        costs (measured with cProfile, ``touchstream bench ingest``). Anything
        that is not an aggregate goes the library's way."""
        if not objs or not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[Any] = ProcessingEvent()
        for obj in objs:
            processing_event.events.extend(obj.collect_events())
            processing_event.aggregates[obj.id] = obj
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # type: ignore[arg-type]
        return recordings

    def construct_mapper(self) -> Mapper[Any]:
        if self._mapper_factory is None:
            return super().construct_mapper()
        return self._mapper_factory(self.construct_transcoder())

    def forget(self, customer_id: UUID) -> None:
        """Drop a customer from the aggregate cache (after an erasure)."""
        self.context.store.forget(customer_id)

    # ------------------------------------------------------------ commands
    def execute(self, command: m.Command) -> Recorded:
        """Run any command message."""
        handler = _HANDLERS.get(type(command))
        if handler is not None:
            return handler(self, command)
        if isinstance(command, m.Touchpoint):
            return self.record_touchpoint(command)
        raise TypeError(f"unknown command {type(command).__name__}")

    def register_customer(self, cmd: m.RegisterCustomer) -> Recorded:
        """Register a customer with its contact points (each owned by one customer only)."""
        return customers.register_customer(self.context, cmd)

    def change_profile(self, cmd: m.ChangeProfile) -> Recorded:
        """Change profile fields (name, company…)."""
        return customers.change_profile(self.context, cmd)

    def add_contact_point(self, cmd: m.AddContactPoint) -> Recorded:
        """Give a customer another email address or number."""
        return customers.add_contact_point(self.context, cmd)

    def remove_contact_point(self, cmd: m.RemoveContactPoint) -> Recorded:
        """Take a contact point off a customer (it may then belong to someone else)."""
        return customers.remove_contact_point(self.context, cmd)

    def change_lifecycle_stage(self, cmd: m.ChangeLifecycleStage) -> Recorded:
        """Move a customer along the lifecycle."""
        return customers.change_lifecycle_stage(self.context, cmd)

    def add_note(self, cmd: m.AddNote) -> Recorded:
        """Add a note (internal or shared) to a customer."""
        return customers.add_note(self.context, cmd)

    def assign_partner(self, cmd: m.AssignPartner) -> Recorded:
        """Assign a customer to a partner (or none)."""
        return customers.assign_partner(self.context, cmd)

    def merge_customers(self, cmd: m.MergeCustomers) -> Recorded:
        """Merge ``source`` into ``target``: both as events, nothing rewritten."""
        return customers.merge_customers(self.context, cmd)

    def unmerge_customer(self, cmd: m.UnmergeCustomer) -> Recorded:
        """Undo a merge: both as events again."""
        return customers.unmerge_customer(self.context, cmd)

    def record_touchpoint(self, cmd: m.Touchpoint) -> Recorded:
        """Record a call, call step, callback, email, fax, visit or web form."""
        return touchpoints.record_touchpoint(self.context, cmd,
                                             PlainTouchpoints(self.context, self.rows_writer))

    def quarantine_email(self, cmd: em.QuarantineEmail) -> Recorded:
        """Keep aside a message that cannot become a touchpoint (on its mailbox's stream)."""
        return mailbox.quarantine_email(self.context, cmd)

    def note_uidvalidity_change(self, cmd: em.NoteUidValidityChange) -> Recorded:
        """Record that a mailbox folder was renumbered."""
        return mailbox.note_uidvalidity_change(self.context, cmd)

    def assign_held(self, source_key: str, customer_id: UUID) -> Recorded:
        """Record a held touchpoint on ``customer_id`` (same source key: idempotent)."""
        return triage.assign_held(self.context, source_key, customer_id, self.record_touchpoint)

    def record_on(
        self, cmd: m.Command, customer_id: UUID, decide: Callable[[Customer, Any], None]
    ) -> Recorded:
        """Decide on this customer's own stream (merges not followed) under ``cmd``'s
        source key, and save: the hook for command modules beside this one."""
        return handling.on_customer(self.context, customer_id, source_key(cmd), decide, cmd,
                                    follow_merge=False)

    # -------------------------------------------------------------- queries
    def recorded(self, source_key: str) -> Recorded | None:
        """What was recorded (or held for triage) under a source key, as stored."""
        if (done := self.context.keys.lookup(source_key)) is not None:
            return done
        if triage.is_held(self.context, source_key):
            return Recorded(customer_id="", duplicate=True, held_for_triage=True)
        return None

    def held_touchpoints(self, limit: int = 1000) -> list[HeldTouchpoint]:
        """Touchpoints waiting for triage."""
        return triage.held_touchpoints(self.context, limit)

    def quarantined_messages(self) -> Iterator[tuple[Mailbox.MessageQuarantined, Mailbox]]:
        """Messages kept aside, each with its mailbox, oldest first (lazy)."""
        return mailbox.quarantined(self.context)

    def customer(self, customer_id: UUID) -> Customer:
        """The write model's view of one customer (for the CLI; the API reads projections)."""
        return self.context.store.load(customer_id)

    def find_by_contact(self, kind: str, raw: str) -> UUID | None:
        """The customer owning a contact point, following merges."""
        value = normalise(kind, raw, self.default_region)
        owner = self.context.claims.owner(contact_key(kind, value))
        if owner is None:
            return None
        try:
            return self.context.store.resolve_merges(UUID(owner))
        except CustomerNotFoundError:
            return None

    def stream(self, customer_id: UUID) -> Iterable[Customer.Event]:
        """Every event of one customer's stream, oldest first."""
        return self.context.store.stream(customer_id)

    # ------------------------------------------------ batch (bulk import)
    def source_key_of(self, cmd: m.Command) -> str:
        """The source key ``cmd`` is recorded under (a fresh one when it has no key at all)."""
        return source_key(cmd)

    def recorded_under(self, keys: list[str]) -> dict[str, Recorded]:
        """What is already recorded under each of ``keys`` (absent keys omitted).

        Needs a store with a source-key index (SQLite, PostgreSQL): ``CommandError`` elsewhere."""
        return self.context.keys.lookup_many(keys)

    def customer_for(
        self, cmd: m.Touchpoint, key: str, known: touchpoints.KnownOwners | None = None
    ) -> UUID:
        """The customer a touchpoint belongs to: its ``customer_id``, else the owner of its
        counterpart's contact point (a prospect for an unknown one, or held for triage);
        with ``known`` (``known_owners``), the owner as read for the whole batch."""
        return touchpoints.customer_for(self.context, cmd, key, known)

    def known_owners(self, cmds: Iterable[m.Touchpoint]) -> touchpoints.KnownOwners:
        """The owners of the contact points of a batch's counterparts, read together (one
        query on the SQL stores) for ``customer_for`` (see ``touchpoints.known_owners``)."""
        return touchpoints.known_owners(self.context, cmds)

    def claimed_owner(self, counterpart: tuple[str, str]) -> UUID | None:
        """The customer whose claim holds a contact point, without registering anyone
        (see ``touchpoints.claimed_owner``)."""
        return touchpoints.claimed_owner(self.context, counterpart)

    def repair_owner(self, cmd: m.Touchpoint, key: str, missing: UUID) -> UUID | None:
        """The customer to record on when the counterpart's claim names a customer that
        does not exist (see ``touchpoints.repair_owner``); None if it cannot be repaired."""
        return touchpoints.repair_owner(self.context, cmd, key, missing)

    def apply_touchpoint(self, customer: Customer, cmd: m.Touchpoint, key: str) -> None:
        """Decide one touchpoint on a loaded customer: exactly one pending event, not saved."""
        touchpoints.apply_touchpoint(self.context, customer, cmd, key)

    def save_keyed(
        self, entries: Sequence[tuple[Customer | Prepared, Sequence[str]]]
    ) -> list[list[Recorded]]:
        """Save customers whose pending events belong one each, in order, to the given keys
        (or the bulk writer's ``Prepared`` rows: see ``CustomerStore.save_keyed``).

        One transaction for all of them, with their source-key rows: a key
        already taken or a customer changed meanwhile fails the whole save with
        an ``IntegrityError`` and records nothing. Several customers in one
        save is for SQL stores (EventStoreDB allows one stream per save, and
        has no key index: ``CommandError`` there). Snapshots as every save does."""
        if not self.context.keys.atomic:
            raise CommandError("this store has no source-key index: record one command at a time")
        return self.context.store.save_keyed(entries)


_HANDLERS: dict[type, Callable[[Hub, Any], Recorded]] = {
    m.RegisterCustomer: Hub.register_customer,
    m.ChangeProfile: Hub.change_profile,
    m.AddContactPoint: Hub.add_contact_point,
    m.RemoveContactPoint: Hub.remove_contact_point,
    m.ChangeLifecycleStage: Hub.change_lifecycle_stage,
    m.AddNote: Hub.add_note,
    m.AssignPartner: Hub.assign_partner,
    m.MergeCustomers: Hub.merge_customers,
    m.UnmergeCustomer: Hub.unmerge_customer,
    em.QuarantineEmail: Hub.quarantine_email,
    em.NoteUidValidityChange: Hub.note_uidvalidity_change,
    **corrections.HANDLERS,
    **accounts.HANDLERS,
    **quality.HANDLERS,
    **sales.HANDLERS,
    **dispatch.HANDLERS,
    **service.HANDLERS,
    **marketing.HANDLERS,
    **work.HANDLERS,
    **knowledge.HANDLERS,
    **replies.HANDLERS,
    **territories.HANDLERS,
}

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_MERGE_HOPS",
    "NAMESPACE",
    "CommandError",
    "ConcurrencyError",
    "ConflictError",
    "ContactPointTakenError",
    "CustomerNotFoundError",
    "DomainError",
    "HeldForTriageError",
    "Hub",
    "StreamNaming",
]
