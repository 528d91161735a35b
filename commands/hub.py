"""The write model: one eventsourcing application whose public methods are the commands.

Idempotency by source key, two mechanisms with one behaviour:

* SQL stores: the recorder writes a row per (source key, event) in the same
  transaction as the events; a UNIQUE violation means "already recorded" and
  the first call's result is read back.
* EventStoreDB (or any recorder without that ability): a one-event
  reservation stream per source key, appended with "no stream", remembers the
  customer and the customer's version at reservation; every writer then scans
  the customer stream above that version for the deterministic event id
  before appending with an explicit expected version. Two writers of one key
  can therefore never both append: the second one's expected version is stale
  or it sees the first one's event in the scan.

Event ids are UUIDv5 of the source key, so the same touchpoint always has the
same event id whichever process records it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType, get_topic

from commands import corrections
from commands import email_messages as em
from commands import messages as m
from commands.identity import contact_key, normalise
from commands.ports import SOURCE_KEYS_TABLE, KeyRow, Recorded, SourceKeyIndex
from domain.claims import ContactPointClaim, HeldTouchpoint, SourceKeyReservation
from domain.customer import DEFAULT_MAX_FUTURE_SKEW, Customer, Provenance, check_not_ahead
from domain.errors import ContactPointTakenError, CustomerMergedError, DomainError
from domain.mailbox import Mailbox

NAMESPACE = UUID("5d1f0c8e-8e53-4d55-a1f6-0f3c2b7e9a10")
MAX_ATTEMPTS = 20
MAX_MERGE_HOPS = 10
CLAIM_STALE_AFTER_S = 60.0


class CommandError(Exception):
    """Base of the write model's errors that are not domain rules."""


class CustomerNotFoundError(CommandError):
    """Raised when a command names a customer that does not exist."""


class ConcurrencyError(CommandError):
    """Raised when optimistic concurrency retries are exhausted."""


class ConflictError(CommandError):
    """Raised when a command conflicts with what was already recorded."""


class HeldForTriageError(CommandError):
    """Raised internally when a touchpoint's sender is unknown and unknown senders are held."""

    def __init__(self, contact: str) -> None:
        super().__init__(f"unknown sender {contact}: held for triage")
        self.contact = contact


_TOUCH_EVENTS: dict[type[m.Touchpoint], type[Customer.Event]] = {
    m.LogCall: Customer.CallLogged,
    m.RecordCallStep: Customer.CallStepRecorded,
    m.RequestCallback: Customer.CallbackRequested,
    m.CompleteCallback: Customer.CallbackCompleted,
    m.RecordEmail: Customer.EmailRecorded,
    m.RecordFax: Customer.FaxRecorded,
    m.RecordVisit: Customer.VisitRecorded,
    m.RecordWebForm: Customer.WebFormSubmitted,
    em.SendEmail: Customer.EmailQueued,
    em.RecordEmailSent: Customer.EmailSent,
    em.RecordEmailSendFailed: Customer.EmailSendFailed,
    em.RecordEmailOutcomeUnknown: Customer.EmailOutcomeUnknown,
    em.RecordEmailBounce: Customer.EmailBounced,
}
# Command fields that only help find the customer and are not stored on the event.
_LOOKUP_ONLY = {"email", "phone", "customer_id", "visit_id"}


class StreamNaming:
    """Aggregate ids per store: ``customer-<uuid>`` streams on EventStoreDB, UUIDs on SQL."""

    def __init__(self, prefixed: bool) -> None:
        self.prefixed = prefixed

    def _id(self, prefix: str, value: UUID) -> UUID | str:
        return f"{prefix}-{value}" if self.prefixed else value

    def _keyed(self, prefix: str, key: str) -> UUID | str:
        # The prefix is hashed in too: on the SQL stores ids are bare UUIDs and
        # a contact claim and a reservation must never share one.
        return self._id(prefix, uuid5(NAMESPACE, f"{prefix}:{key}"))

    def customer(self, customer_id: UUID) -> UUID | str:
        return self._id("customer", customer_id)

    def claim(self, key: str) -> UUID | str:
        return self._keyed("contact", key)

    def mailbox(self, account: str, folder: str) -> UUID | str:
        return self._id("mailbox", uuid5(NAMESPACE, f"mailbox:{account}|{folder}"))

    def reservation(self, source_key: str) -> UUID | str:
        return self._keyed("sourcekey", source_key)

    def held(self, source_key: str) -> UUID | str:
        return self._keyed("triage", source_key)

    @staticmethod
    def customer_uuid(aggregate_id: UUID | str) -> UUID:
        if isinstance(aggregate_id, UUID):
            return aggregate_id
        return UUID(str(aggregate_id).removeprefix("customer-"))


class Hub(Application):
    """Touchstream's write model."""

    name = "touchstream"
    # The aggregate cache with fast-forward (the library's defaults) reads only the
    # events newer than the cached copy on each load: one query, no replay, and
    # still current when other processes write (override: AGGREGATE_CACHE_MAXSIZE).
    env = {
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
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    ) -> None:
        super().__init__(env)
        self.naming = naming or StreamNaming(prefixed=False)
        self.default_region = default_region
        self.unknown_contacts = unknown_contacts
        self.snapshot_interval = snapshot_interval
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_future_skew = max_future_skew
        self.key_index: SourceKeyIndex | None = (
            self.recorder if isinstance(self.recorder, SourceKeyIndex) else None
        )

    # ------------------------------------------------------------------ API
    def execute(self, command: m.Command) -> Recorded:
        """Run any command message."""
        handler = _HANDLERS.get(type(command))
        if handler is not None:
            return handler(self, command)
        if isinstance(command, m.Touchpoint):
            return self.record_touchpoint(command)
        raise TypeError(f"unknown command {type(command).__name__}")

    def register_customer(self, cmd: m.RegisterCustomer) -> Recorded:
        key = self._key(cmd)
        if (done := self._lookup(key)) is not None:
            return done
        customer_id = cmd.customer_id or uuid5(NAMESPACE, f"customer:{key}")
        points = [(p.kind, normalise(p.kind, p.value, self.default_region), p.label)
                  for p in cmd.contact_points]
        self._claim_all([contact_key(kind, value) for kind, value, _ in points], str(customer_id))
        provs = self._provs(cmd, key, "system", "internal")
        customer = Customer.register(
            self.naming.customer(customer_id), next(provs),
            name=cmd.name, company=cmd.company, lifecycle_stage=cmd.lifecycle_stage,
        )
        for kind, value, label in points:
            customer.add_contact_point(next(provs), kind, value, label)
        try:
            return self._save(customer, key)
        except IntegrityError as exc:
            if (done := self._lookup(key) or self._registered_by(customer_id, key)) is not None:
                return done
            raise ConflictError(f"customer {customer_id} already exists") from exc

    def _registered_by(self, customer_id: UUID, key: str) -> Recorded | None:
        """The registration recorded under ``key`` (the reservation-free path's dedup)."""
        head = list(self.events.get(self.naming.customer(customer_id), limit=60))
        mine = [e for e in head if getattr(e, "source_key", None) == key]
        if not mine:
            return None
        return Recorded(
            customer_id=str(customer_id),
            event_ids=[str(e.event_id) for e in mine],  # type: ignore[attr-defined]
            versions=[e.originator_version for e in mine],
            positions=[None] * len(mine),
            duplicate=True,
        )

    def change_profile(self, cmd: m.ChangeProfile) -> Recorded:
        return self._on_customer(cmd, lambda c, p: c.change_profile(next(p), dict(cmd.changes)))

    def add_contact_point(self, cmd: m.AddContactPoint) -> Recorded:
        kind = cmd.contact.kind
        value = normalise(kind, cmd.contact.value, self.default_region)
        customer_id = self._require_id(cmd)
        self._claim(contact_key(kind, value), str(self._resolve_merges(customer_id)))
        return self._on_customer(
            cmd, lambda c, p: c.add_contact_point(next(p), kind, value, cmd.contact.label)
        )

    def remove_contact_point(self, cmd: m.RemoveContactPoint) -> Recorded:
        kind = cmd.contact.kind
        value = normalise(kind, cmd.contact.value, self.default_region)
        result = self._on_customer(
            cmd, lambda c, p: c.remove_contact_point(next(p), kind, value, cmd.reason)
        )
        self._release(contact_key(kind, value), result.customer_id)
        return result

    def change_lifecycle_stage(self, cmd: m.ChangeLifecycleStage) -> Recorded:
        return self._on_customer(
            cmd, lambda c, p: c.change_lifecycle_stage(next(p), cmd.to_stage, cmd.reason)
        )

    def add_note(self, cmd: m.AddNote) -> Recorded:
        return self._on_customer(cmd, lambda c, p: c.add_note(next(p), cmd.text, cmd.visibility))

    def assign_partner(self, cmd: m.AssignPartner) -> Recorded:
        return self._on_customer(cmd, lambda c, p: c.assign_partner(next(p), cmd.partner_id))

    def record_touchpoint(self, cmd: m.Touchpoint) -> Recorded:
        """Record a call, call step, callback, email, fax, visit or web form."""
        key = self._key(cmd)
        # No lookup first: the key's UNIQUE row (or reservation) catches a
        # duplicate at save time, and the first result is read back then.
        event_class = _TOUCH_EVENTS[type(cmd)]
        fields = m.touch_fields(cmd, _LOOKUP_ONLY)
        try:
            customer_id = cmd.customer_id or self._customer_for_counterpart(cmd, key)
        except HeldForTriageError as held:
            return self._hold(cmd, key, held.contact)

        def decide(customer: Customer, provs: Iterable[Provenance]) -> None:
            customer.record(event_class, next(iter(provs)), **fields)

        try:
            return self._append(customer_id, key, decide, cmd.channel, cmd.direction, cmd,
                                looked_up=True)
        except CustomerNotFoundError:
            # A concurrent first contact claimed the number but has not saved its
            # prospect yet: registering it here is idempotent (same source key).
            if cmd.customer_id is not None or not self._finish_prospect(cmd, key, customer_id):
                raise
            return self._append(customer_id, key, decide, cmd.channel, cmd.direction, cmd)

    def merge_customers(self, cmd: m.MergeCustomers) -> Recorded:
        """Merge ``source`` into ``target``: both as events, nothing rewritten."""
        key = self._key(cmd)
        if cmd.source_id == cmd.target_id:
            raise ConflictError("a customer cannot be merged into itself")
        target = self._load(cmd.target_id)
        if target.merged_into is not None:
            raise ConflictError(f"target {cmd.target_id} is itself merged into {target.merged_into}")
        source_id = str(cmd.source_id)
        self._append(cmd.target_id, key + "#absorb",
                     lambda c, p: c.absorb(next(iter(p)), source_id),
                     "system", "internal", cmd, follow_merge=False)
        return self._append(cmd.source_id, key,
                            lambda c, p: c.merge_into(next(iter(p)), str(cmd.target_id)),
                            "system", "internal", cmd, follow_merge=False)

    def unmerge_customer(self, cmd: m.UnmergeCustomer) -> Recorded:
        key = self._key(cmd)
        if (done := self._lookup(key)) is not None:
            return done
        source = self._load(cmd.source_id)
        if source.merged_into is None:
            raise ConflictError(f"customer {cmd.source_id} is not merged")
        target_id = UUID(source.merged_into)
        self._append(target_id, key + "#release",
                     lambda c, p: c.release(next(iter(p)), str(cmd.source_id)),
                     "system", "internal", cmd, follow_merge=False)
        return self._append(cmd.source_id, key, lambda c, p: c.unmerge(next(iter(p))),
                            "system", "internal", cmd, follow_merge=False)

    def record_on(
        self, cmd: m.Command, customer_id: UUID, decide: Callable[[Customer, Any], None]
    ) -> Recorded:
        """Decide on this customer's own stream (merges not followed) under ``cmd``'s
        source key, and save: the hook for command modules beside this one."""
        return self._append(customer_id, self._key(cmd), decide, "system", "internal", cmd,
                            follow_merge=False)

    def quarantine_email(self, cmd: em.QuarantineEmail) -> Recorded:
        """Keep aside a message that cannot become a touchpoint (on its mailbox's stream)."""
        fields = cmd.model_dump(include={
            "reason", "detail", "message_id", "uidvalidity", "uid", "size", "raw_ref", "header_ref",
        })
        return self._on_mailbox(cmd, cmd.account, cmd.folder,
                                lambda box, key: box.quarantine(key, _event_id(key), **fields))

    def note_uidvalidity_change(self, cmd: em.NoteUidValidityChange) -> Recorded:
        """Record that a mailbox folder was renumbered."""
        return self._on_mailbox(
            cmd, cmd.account, cmd.folder,
            lambda box, key: box.note_uidvalidity_change(
                key, _event_id(key), cmd.old_uidvalidity, cmd.new_uidvalidity),
        )

    def recorded(self, source_key: str) -> Recorded | None:
        """What was recorded (or held for triage) under a source key, as stored."""
        if (done := self._lookup(source_key)) is not None:
            return done
        try:
            self.repository.get(self.naming.held(source_key))
        except AggregateNotFoundError:
            return None
        return Recorded(customer_id="", duplicate=True, held_for_triage=True)

    def _on_mailbox(
        self, cmd: m.Command, account: str, folder: str, decide: Callable[[Mailbox, str], None]
    ) -> Recorded:
        key = self._key(cmd)
        if (done := self._lookup(key)) is not None:
            return done
        box_id = self.naming.mailbox(account, folder)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                box: Mailbox = self.repository.get(box_id)
            except AggregateNotFoundError:
                try:  # opened on its own: source-key rows belong to keyed events only
                    self.save(Mailbox.open(box_id, account, folder))
                except IntegrityError:
                    pass  # opened concurrently
                continue
            if box.has(key):  # stores without a source-key table dedup here
                return Recorded(customer_id=str(box_id), duplicate=True)
            decide(box, key)
            if not box.pending_events:
                return Recorded(customer_id=str(box_id))
            try:
                return self._save(box, key)  # type: ignore[arg-type]
            except IntegrityError as exc:
                if SOURCE_KEYS_TABLE in str(exc) and (done := self._lookup(key)) is not None:
                    return done
                time.sleep(random.uniform(0, 0.002 * attempt))
        raise ConcurrencyError(f"mailbox {account}/{folder} kept changing")

    def held_touchpoints(self, limit: int = 1000) -> list[HeldTouchpoint]:
        """Touchpoints waiting for triage (a scan of the log: fine for a triage queue)."""
        topic = get_topic(HeldTouchpoint.Held)
        items = []
        start = 1
        while len(items) < limit:
            batch = self.recorder.select_notifications(start, 500, topics=[topic])
            if not batch:
                break
            for n in batch:
                held: HeldTouchpoint = self.repository.get(n.originator_id)
                if held.assigned_to is None:
                    items.append(held)
            start = batch[-1].id + 1
        return items[:limit]

    def assign_held(self, source_key: str, customer_id: UUID) -> Recorded:
        """Record a held touchpoint on ``customer_id`` (same source key: idempotent)."""
        hid = self.naming.held(source_key)
        try:
            held: HeldTouchpoint = self.repository.get(hid)
        except AggregateNotFoundError as exc:
            raise CustomerNotFoundError(f"nothing held under {source_key!r}") from exc
        model = {**m.TOUCHPOINT_COMMANDS, **em.EMAIL_TOUCHPOINTS}[held.command_kind]
        cmd = model.model_validate({**held.command, "customer_id": str(customer_id)})
        result = self.record_touchpoint(cmd)
        held.assign(result.customer_id)
        if held.pending_events:
            try:
                self.save(held)
            except IntegrityError:
                pass  # assigned concurrently: the touchpoint itself is deduplicated
        return result

    def _hold(self, cmd: m.Touchpoint, key: str, contact: str) -> Recorded:
        held = HeldTouchpoint.hold(
            self.naming.held(key), key, contact, cmd.kind,
            cmd.model_dump(mode="json", exclude={"kind"}, exclude_none=True)
            | {"source_key": key, "occurred_at": (cmd.occurred_at or self.clock()).isoformat()},
        )
        try:
            recordings = self.save(held)
        except IntegrityError:
            # Already held — or already assigned and recorded: then that record is the answer.
            if (done := self._lookup(key)) is not None:
                return done
            recordings = []
        return Recorded(
            customer_id="", event_ids=[], versions=[0],
            positions=[r.notification.id for r in recordings] or [None],
            duplicate=not recordings, held_for_triage=True,
        )

    # -------------------------------------------------------------- queries
    def customer(self, customer_id: UUID) -> Customer:
        """The write model's view of one customer (for the CLI; the API reads projections)."""
        return self._load(customer_id)

    def find_by_contact(self, kind: str, raw: str) -> UUID | None:
        """The customer owning a contact point, following merges."""
        value = normalise(kind, raw, self.default_region)
        owner = self._owner(contact_key(kind, value))
        if owner is None:
            return None
        try:
            return self._resolve_merges(UUID(owner))
        except CustomerNotFoundError:
            return None

    def stream(self, customer_id: UUID) -> Iterable[Customer.Event]:
        """Every event of one customer's stream, oldest first."""
        return self.events.get(self.naming.customer(customer_id))  # type: ignore[return-value]

    # ------------------------------------------------ batch (bulk import)
    def source_key_of(self, cmd: m.Command) -> str:
        """The source key ``cmd`` is recorded under (a fresh one when it has no key at all)."""
        return self._key(cmd)

    def recorded_under(self, keys: list[str]) -> dict[str, Recorded]:
        """What is already recorded under each of ``keys`` (absent keys omitted).

        Needs a store with a source-key index (SQLite, PostgreSQL)."""
        if self.key_index is None:
            raise CommandError("this store has no source-key index: record one command at a time")
        rows = self.key_index.lookup_source_keys(keys)
        return {key: _from_rows(found, self.naming) for key, found in rows.items()}

    def customer_for(self, cmd: m.Touchpoint, key: str) -> UUID:
        """The customer a touchpoint belongs to: its ``customer_id``, else the owner of its
        counterpart's contact point (a prospect for an unknown one, or held for triage)."""
        return cmd.customer_id or self._customer_for_counterpart(cmd, key)

    def apply_touchpoint(self, customer: Customer, cmd: m.Touchpoint, key: str) -> None:
        """Decide one touchpoint on a loaded customer: exactly one pending event, not saved."""
        prov = next(iter(self._provs(cmd, key, cmd.channel, cmd.direction)))
        customer.record(_TOUCH_EVENTS[type(cmd)], prov, **m.touch_fields(cmd, _LOOKUP_ONLY))

    def save_keyed(
        self, entries: Sequence[tuple[Customer, Sequence[str]]]
    ) -> list[list[Recorded]]:
        """Save customers whose pending events belong one each, in order, to the given keys.

        One transaction for all of them, with their source-key rows: a key
        already taken or a customer changed meanwhile fails the whole save with
        an ``IntegrityError`` and records nothing. Several customers in one
        save is for SQL stores (EventStoreDB allows one stream per save, and
        has no key index: ``CommandError`` there). Snapshots as every save does."""
        if self.key_index is None:
            raise CommandError("this store has no source-key index: record one command at a time")
        source_keys: list[tuple[str, int, UUID, int]] = []
        old_versions = []
        offset = 0
        for customer, keys in entries:
            pending = list(customer.pending_events)
            if not pending or len(pending) != len(keys):
                raise ValueError(f"{len(pending)} pending events for {len(keys)} source keys")
            source_keys += [
                (key, 0, e.event_id, offset + i)  # type: ignore[attr-defined]
                for i, (key, e) in enumerate(zip(keys, pending, strict=True))
            ]
            old_versions.append(pending[0].originator_version - 1)
            offset += len(pending)
        events = [e for customer, _ in entries for e in customer.pending_events]
        recordings = self.save(*(customer for customer, _ in entries), source_keys=source_keys)
        positions: list[int | None] = [r.notification.id for r in recordings] or [None] * offset
        self._maybe_snapshot_all([c for c, _ in entries], old_versions)
        out: list[list[Recorded]] = []
        at = 0
        for customer, keys in entries:
            self._remember(customer)
            customer_id = str(self.naming.customer_uuid(customer.id))
            out.append([
                Recorded(customer_id=customer_id, event_ids=[str(e.event_id)],  # type: ignore[attr-defined]
                         versions=[e.originator_version], positions=[position])
                for e, position in zip(events[at:at + len(keys)], positions[at:at + len(keys)],
                                       strict=True)
            ])
            at += len(keys)
        return out

    # ------------------------------------------------------------ internals
    def _key(self, cmd: m.Command) -> str:
        key = cmd.source_key or cmd.default_source_key()
        if key is None:
            # No id from the source and no Idempotency-Key: nothing to dedup on.
            key = f"{cmd.kind}:anon:{uuid4()}"
        return f"{cmd.kind}|{key}" if not key.startswith(f"{cmd.kind}:") else key

    def _provs(self, cmd: m.Command, key: str, channel: str, direction: str) -> Iterable[Provenance]:
        occurred = cmd.occurred_at or self.clock()
        if cmd.occurred_at is not None:
            check_not_ahead(occurred, self.clock(), self.max_future_skew)
        i = 0
        while True:
            yield Provenance(
                event_id=uuid5(NAMESPACE, f"{key}#{i}"),
                occurred_at=occurred,
                channel=channel,
                direction=direction,
                actor=cmd.actor or "unknown",
                source_key=key,
                correlation_id=cmd.correlation_id or key,
                causation_id=cmd.causation_id or key,
            )
            i += 1

    def _require_id(self, cmd: m.CustomerTarget) -> UUID:
        if cmd.customer_id is None:
            raise CustomerNotFoundError("customer_id is required for this command")
        return cmd.customer_id

    def _on_customer(
        self, cmd: m.CustomerTarget, decide: Callable[[Customer, Any], None]
    ) -> Recorded:
        key = self._key(cmd)
        return self._append(self._require_id(cmd), key, decide, "system", "internal", cmd)

    def _load(self, customer_id: UUID) -> Customer:
        try:
            return self.repository.get(self.naming.customer(customer_id))  # type: ignore[no-any-return]
        except AggregateNotFoundError as exc:
            raise CustomerNotFoundError(f"no customer {customer_id}") from exc

    def _load_cached(self, customer_id: UUID) -> Customer:
        """A copy of the cached customer without asking the store (stale is fine for a
        decision the save will validate), else a load."""
        cache = self.repository.cache
        if cache is not None:
            try:
                return deepcopy(cache.get(self.naming.customer(customer_id)))  # type: ignore[no-any-return]
            except KeyError:
                pass
        return self._load(customer_id)

    def _resolve_merges(self, customer_id: UUID) -> UUID:
        for _ in range(MAX_MERGE_HOPS):
            customer = self._load(customer_id)
            if customer.merged_into is None:
                return customer_id
            customer_id = UUID(customer.merged_into)
        raise ConflictError(f"merge chain too long from {customer_id}")

    def _append(
        self,
        customer_id: UUID,
        key: str,
        decide: Callable[[Customer, Any], None],
        channel: str,
        direction: str,
        cmd: m.Command,
        *,
        follow_merge: bool = True,
        looked_up: bool = False,
    ) -> Recorded:
        # ``looked_up``: the caller just checked the key (saves a second query per command).
        if not looked_up and (done := self._lookup(key)) is not None:
            return done
        hops = 0
        attempt = 0
        reservation: SourceKeyReservation | None = None
        fresh = False
        while True:
            # The cached copy is used as is: if another writer moved the stream on,
            # the save fails on the expected version and the retry loads fresh.
            customer = self._load(customer_id) if fresh else self._load_cached(customer_id)
            if follow_merge and reservation is None and customer.merged_into is not None:
                hops += 1
                if hops > MAX_MERGE_HOPS:
                    raise ConflictError(f"merge chain too long from {customer_id}")
                customer_id = UUID(customer.merged_into)
                continue
            if reservation is None and self.key_index is None:
                reservation = self._reserve(key, customer)
                if reservation.customer_id != str(customer_id):
                    customer_id = UUID(reservation.customer_id)
                    continue
            if reservation is not None:
                found = self._scan(customer, reservation)
                if found is not None:
                    return found
            try:
                decide(customer, self._provs(cmd, key, channel, direction))
            except CustomerMergedError as exc:
                if not fresh:
                    fresh = True  # decide again on the stored state, not the cached one
                    continue
                if not follow_merge or hops >= MAX_MERGE_HOPS or reservation is not None:
                    raise
                hops += 1
                customer_id = UUID(str(exc.merged_into))
                continue
            except DomainError:
                if not fresh:
                    fresh = True
                    continue
                # A retry of something recorded before the rule started to refuse it.
                if (done := self._lookup(key)) is not None:
                    return done
                raise
            if not customer.pending_events:
                return Recorded(customer_id=str(customer_id))
            try:
                return self._save(customer, key)
            except IntegrityError as exc:
                if SOURCE_KEYS_TABLE in str(exc):
                    done = self._lookup(key)
                    if done is not None:
                        return done
                fresh = True
                attempt += 1
                if attempt >= MAX_ATTEMPTS:
                    raise ConcurrencyError(
                        f"customer {customer_id} kept changing; gave up after {attempt} attempts"
                    ) from exc
                time.sleep(random.uniform(0, 0.002 * attempt))

    def _save(self, customer: Customer, key: str) -> Recorded:
        pending = list(customer.pending_events)
        kwargs: dict[str, Any] = {}
        if self.key_index is not None:
            kwargs["source_keys"] = [
                (key, i, e.event_id) for i, e in enumerate(pending)  # type: ignore[attr-defined]
            ]
        old_version = pending[0].originator_version - 1
        recordings = self.save(customer, **kwargs)
        self._maybe_snapshot(customer, old_version)
        self._remember(customer)
        return Recorded(
            customer_id=str(self.naming.customer_uuid(customer.id)),
            event_ids=[str(e.event_id) for e in pending],  # type: ignore[attr-defined]
            versions=[e.originator_version for e in pending],
            positions=[r.notification.id for r in recordings] or [None] * len(pending),
        )

    def _remember(self, customer: Customer) -> None:
        """Cache the customer just saved: it is exactly what is stored, so the next load
        need not replay its events (loads still fast-forward past other writers)."""
        if self.repository.cache is not None:
            self.repository.cache.put(customer.id, customer)

    def _maybe_snapshot(self, customer: Customer, old_version: int) -> None:
        self._maybe_snapshot_all([customer], [old_version])

    def _maybe_snapshot_all(self, customers: Sequence[Customer], old_versions: Sequence[int]) -> None:
        """A snapshot of each customer whose save crossed a multiple of the interval."""
        n = self.snapshot_interval
        if self.snapshots is None or n <= 0:
            return
        due = [Snapshot.take(c) for c, old in zip(customers, old_versions, strict=True)
               if c.version // n > max(old, 0) // n]
        if due:
            self.snapshots.put(due)

    def _lookup(self, key: str) -> Recorded | None:
        if self.key_index is not None:
            rows = self.key_index.lookup_source_keys([key]).get(key)
            return _from_rows(rows, self.naming) if rows else None
        try:
            res: SourceKeyReservation = self.repository.get(self.naming.reservation(key))
        except AggregateNotFoundError:
            return None
        customer = self._load(UUID(res.customer_id))
        return self._scan(customer, res)

    def _reserve(self, key: str, customer: Customer) -> SourceKeyReservation:
        rid = self.naming.reservation(key)
        res = SourceKeyReservation.reserve(
            rid, key, str(self.naming.customer_uuid(customer.id)),
            uuid5(NAMESPACE, f"{key}#0"), customer.version,
        )
        try:
            self.save(res)
        except IntegrityError:
            res = self.repository.get(rid)
        return res

    def _scan(self, customer: Customer, res: SourceKeyReservation) -> Recorded | None:
        events = list(self.events.get(customer.id, gt=res.floor_version))
        mine = [e for e in events if getattr(e, "source_key", None) == res.source_key]
        if not mine:
            return None
        return Recorded(
            customer_id=res.customer_id,
            event_ids=[str(e.event_id) for e in mine],  # type: ignore[attr-defined]
            versions=[e.originator_version for e in mine],
            positions=[None] * len(mine),
            duplicate=True,
        )

    # -- identity ----------------------------------------------------------
    def _customer_for_counterpart(self, cmd: m.Touchpoint, key: str) -> UUID:
        counterpart = cmd.counterpart()
        if counterpart is None:
            raise CustomerNotFoundError(
                "give customer_id, or a sender/recipient address or number to find the customer"
            )
        kind, raw = counterpart
        value = normalise(kind, raw, self.default_region)
        ckey = contact_key(kind, value)
        owner = self._owner(ckey)
        if owner is not None:
            return UUID(owner)
        if self.unknown_contacts != "create":
            raise HeldForTriageError(ckey)
        return UUID(self.register_customer(self._prospect(cmd, key, kind, value)).customer_id)

    def _prospect(self, cmd: m.Touchpoint, key: str, kind: str, value: str) -> m.RegisterCustomer:
        """A prospect owning the contact point; its id derives from the contact
        point so concurrent first contacts converge on one customer."""
        ckey = contact_key(kind, value)
        return m.RegisterCustomer(
            customer_id=uuid5(NAMESPACE, f"prospect:{ckey}"),
            name=value,
            contact_points=[m.ContactPointIn(kind=kind, value=value)],  # type: ignore[arg-type]
            source_key=f"prospect:{ckey}",
            occurred_at=cmd.occurred_at,
            actor=cmd.actor,
            correlation_id=cmd.correlation_id or key,
            causation_id=key,
        )

    def _finish_prospect(self, cmd: m.Touchpoint, key: str, customer_id: UUID) -> bool:
        """Register the prospect ``customer_id`` if it is the counterpart's; True if so."""
        counterpart = cmd.counterpart()
        if counterpart is None or self.unknown_contacts != "create":
            return False
        kind, raw = counterpart
        prospect = self._prospect(cmd, key, kind, normalise(kind, raw, self.default_region))
        if prospect.customer_id != customer_id:
            return False
        self.register_customer(prospect)
        return True

    def _owner(self, ckey: str) -> str | None:
        try:
            claim: ContactPointClaim = self.repository.get(self.naming.claim(ckey))
        except AggregateNotFoundError:
            return None
        return claim.owner

    def _claim(self, ckey: str, customer_id: str) -> None:
        def take(claim: ContactPointClaim) -> None:
            if claim.owner not in (None, customer_id) and self._claim_is_stale(claim):
                claim.release(claim.owner)  # type: ignore[arg-type]
            claim.claim(customer_id)

        self._change_claim(ckey, take, create=True)

    def _change_claim(
        self, ckey: str, change: Callable[[ContactPointClaim], None], *, create: bool
    ) -> None:
        """Apply ``change`` to a contact point's claim, retrying on concurrent changes."""
        cid = self.naming.claim(ckey)
        for _ in range(MAX_ATTEMPTS):
            try:
                claim: ContactPointClaim = self.repository.get(cid)
            except AggregateNotFoundError:
                if not create:
                    return
                claim = ContactPointClaim.open(cid, ckey)
            change(claim)
            if not claim.pending_events:
                return
            try:
                self.save(claim)
                return
            except IntegrityError:
                continue
        raise ConcurrencyError(f"contact point {ckey} kept changing")

    def _claim_all(self, ckeys: list[str], customer_id: str) -> None:
        """Claim every contact point or none: a refused one releases those just taken,
        so a corrected retry is not blocked by the failed attempt's claims."""
        taken: list[str] = []
        try:
            for ckey in ckeys:
                if self._owner(ckey) != customer_id:
                    self._claim(ckey, customer_id)
                    taken.append(ckey)
        except DomainError:
            for ckey in taken:
                self._release(ckey, customer_id)
            raise

    def _claim_is_stale(self, claim: ContactPointClaim) -> bool:
        """A claim whose customer was never created (a crash mid-registration)."""
        try:
            self._load(UUID(str(claim.owner)))
            return False
        except CustomerNotFoundError:
            age = (self.clock() - claim.modified_on).total_seconds()
            return age > CLAIM_STALE_AFTER_S

    def _release(self, ckey: str, customer_id: str) -> None:
        self._change_claim(ckey, lambda claim: claim.release(customer_id), create=False)


def _event_id(key: str) -> UUID:
    return uuid5(NAMESPACE, f"{key}#0")


def _from_rows(rows: Sequence[KeyRow], naming: StreamNaming) -> Recorded:
    return Recorded(
        customer_id=str(naming.customer_uuid(rows[0].originator_id)),
        event_ids=[str(r.event_id) for r in rows],
        versions=[r.version for r in rows],
        positions=[r.position for r in rows],
        duplicate=True,
    )


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
}

__all__ = [
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
