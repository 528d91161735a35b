"""History backfill: many touchpoints recorded in few transactions, same guarantees.

The normal path costs one transaction (and a key lookup, a load, a commit)
per touchpoint. A backfill of years of history instead:

* looks up the source keys of a whole batch at once and drops the ones
  already recorded (re-importing a file records nothing new); a key seen
  twice in one batch is recorded once, the second copy gets the first's result;
* groups the rest by customer and saves them in chunks of at most
  ``chunk_events`` events and about ``chunk_bytes``, by default the limits the
  store's recorder declares (``Hub.save_limits``: 2,000 events on SQLite, 500
  and ~256 KB on PostgreSQL, where psycopg's pipeline was once seen to hang
  around 0.5–1 MB in one insert). A chunk holds one customer's
  events, or the events of several customers one after the other: on the SQL
  stores one transaction may append to several streams, and a commit per
  customer would bound a backfill of many small customers by fsyncs. Each
  chunk carries its source-key rows in the same transaction, and snapshots
  the customers whose save crossed the Hub's snapshot interval;
* retries a chunk whose save loses a race (another writer appended to one of
  its customers, or recorded one of its keys first): it re-reads the keys,
  keeps the other writer's results, reloads the customers and appends the rest.

Stores without a source-key index (EventStoreDB, where dedup needs the
reservation protocol) fall back to one ``hub.execute`` per command. Commands
that are not touchpoints (registrations, contact points…) run through
``hub.execute`` in their place in the input, so one file can register
customers and then backfill their history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from operator import itemgetter
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from pydantic import AwareDatetime

from commands import messages as m
from commands.bulk_rows import NotPlain, PlainTouchpoints, encoder_for
from commands.errors import (
    CommandError,
    ConcurrencyError,
    ConflictError,
    CustomerNotFoundError,
    HeldForTriageError,
)
from commands.hub import Hub
from commands.ports import Recorded
from commands.retry import TryAgain, retrying
from commands.store import MAX_MERGE_HOPS, Prepared
from commands.touchpoints import KnownOwners
from domain.customer import Customer
from domain.errors import DomainError

BATCH_COMMANDS = 5_000
LOOKUP_BATCH = 500
_EVENT_OVERHEAD_BYTES = 600  # provenance, topic and JSON punctuation of one stored event


@dataclass(frozen=True)
class ImportResult:
    """One command's outcome: what was recorded (or found already recorded), or why not."""

    recorded: Recorded | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.recorded is not None


class BulkImporter:
    """Records a history of commands through few, chunked, idempotent saves."""

    def __init__(
        self,
        hub: Hub,
        *,
        chunk_events: int | None = None,
        chunk_bytes: int | None = None,
        batch_commands: int = BATCH_COMMANDS,
    ) -> None:
        """``chunk_events``/``chunk_bytes``: smaller saves than the store's own limits
        (None: the store's, ``hub.save_limits``)."""
        limits = hub.save_limits
        chunk_events = limits.events if chunk_events is None else chunk_events
        if chunk_events < 1 or batch_commands < 1:
            raise ValueError("chunk_events and batch_commands must be at least 1")
        self.hub = hub
        self.chunk_events = chunk_events
        self.chunk_bytes: int | None = limits.bytes if chunk_bytes is None else chunk_bytes
        self.batch_commands = batch_commands
        self.rows = PlainTouchpoints(hub.context, encoder_for(hub.mapper))
        # Saves made so far, each one transaction (``bench ingest`` sizes its floor's
        # transactions by it).
        self.saves = 0

    def import_history(self, commands: Iterable[m.Command]) -> list[ImportResult]:
        """Record every command; one result per command, in input order."""
        return list(self.iter_import(commands))

    def iter_import(self, commands: Iterable[m.Command]) -> Iterator[ImportResult]:
        """Like ``import_history``, yielding results batch by batch (bounded memory)."""
        batch: list[m.Touchpoint] = []
        for cmd in commands:
            if isinstance(cmd, m.Touchpoint):
                batch.append(cmd)
                if len(batch) >= self.batch_commands:
                    yield from self._touchpoints(batch)
                    batch = []
                continue
            yield from self._touchpoints(batch)
            batch = []
            yield self._one(cmd)
        yield from self._touchpoints(batch)

    # ------------------------------------------------------------ internals
    def _one(self, cmd: m.Command) -> ImportResult:
        try:
            return ImportResult(recorded=self.hub.execute(cmd))
        except (CommandError, DomainError) as exc:
            if isinstance(exc, ConcurrencyError):
                raise
            return ImportResult(error=str(exc))

    def _touchpoints(self, batch: Sequence[m.Touchpoint]) -> list[ImportResult]:
        if not batch:
            return []
        if self.hub.key_index is None:
            return [self._one(cmd) for cmd in batch]
        keys = [self.hub.source_key_of(cmd) for cmd in batch]
        results: list[ImportResult | None] = [None] * len(batch)
        known = self._known(set(keys))
        # The owners of every new touchpoint's counterpart in one read, not one per sender
        # (a third of an email ingest's time on PostgreSQL went to those round trips).
        owners = self.hub.known_owners(
            cmd for cmd, key in zip(batch, keys, strict=True) if key not in known)
        first: dict[str, int] = {}
        groups: dict[UUID, list[int]] = {}
        counterparts: dict[tuple[str, str], UUID] = {}
        for i, (cmd, key) in enumerate(zip(batch, keys, strict=True)):
            if key in known:
                results[i] = ImportResult(recorded=known[key])
            elif key not in first:
                first[key] = i
                try:
                    customer_id = self._customer(cmd, key, counterparts, owners)
                except HeldForTriageError:
                    results[i] = self._one(cmd)  # held exactly as one command would be
                    continue
                except (CommandError, DomainError) as exc:
                    results[i] = ImportResult(error=str(exc))
                    continue
                groups.setdefault(customer_id, []).append(i)
        for unit in self._units(groups, batch):
            self._record_unit(unit, batch, keys, results)
        done: list[ImportResult] = []
        for i, key in enumerate(keys):
            result = results[i]
            if result is None:  # a second copy of a key in this batch
                result = results[first[key]]
                assert result is not None
                if result.recorded is not None:
                    result = ImportResult(recorded=replace(result.recorded, duplicate=True))
            done.append(result)
        return done

    def _known(self, keys: set[str]) -> dict[str, Recorded]:
        ordered = sorted(keys)
        found: dict[str, Recorded] = {}
        for start in range(0, len(ordered), LOOKUP_BATCH):
            found.update(self.hub.recorded_under(ordered[start:start + LOOKUP_BATCH]))
        return found

    def _customer(
        self, cmd: m.Touchpoint, key: str, memo: dict[tuple[str, str], UUID],
        owners: KnownOwners,
    ) -> UUID:
        if cmd.customer_id is not None:
            return cmd.customer_id
        counterpart = cmd.counterpart()
        if counterpart is not None and counterpart in memo:
            return memo[counterpart]
        customer_id = self.hub.customer_for(cmd, key, owners)
        if counterpart is not None:
            memo[counterpart] = customer_id
        return customer_id

    def _units(
        self, groups: dict[UUID, list[int]], batch: Sequence[m.Touchpoint]
    ) -> Iterator[list[tuple[UUID, list[int]]]]:
        """Saves of at most ``chunk_events`` events / about ``chunk_bytes``, customer by customer."""
        unit: list[tuple[UUID, list[int]]] = []
        count = size = cost = 0
        limit = self.chunk_bytes
        for customer_id, indices in groups.items():
            piece: list[int] = []
            for i in indices:
                if limit is not None:  # a store without a byte limit sizes nothing
                    cost = _EVENT_OVERHEAD_BYTES + _approx_size(batch[i])
                if count and (count >= self.chunk_events
                              or (limit is not None and size + cost > limit)):
                    if piece:
                        unit.append((customer_id, piece))
                    yield unit
                    unit, piece, count, size = [], [], 0, 0
                piece.append(i)
                count += 1
                size += cost
            unit.append((customer_id, piece))
        if unit:
            yield unit

    def _record_unit(
        self,
        unit: list[tuple[UUID, list[int]]],
        batch: Sequence[m.Touchpoint],
        keys: list[str],
        results: list[ImportResult | None],
    ) -> None:
        # The first attempt decides on cached copies (no read per customer: the save's
        # expected versions validate them, as one command's first attempt does); a lost
        # race, or a refusal that a stale copy may have caused, decides again on the
        # stored state.
        fresh = [False]

        def attempt(_: int) -> None:
            loaded: dict[UUID, tuple[Prepared, list[int]]] = {}
            decided: list[int] = []
            for customer_id, indices in unit:
                todo = [i for i in indices if results[i] is None]
                if todo:
                    decided += todo
                    self._apply(customer_id, todo, batch, keys, results, loaded,
                                fresh=fresh[0])
            if not fresh[0]:
                refused = [i for i in decided if results[i] is not None]
                if refused:
                    for i in refused:
                        results[i] = None
                    fresh[0] = True
                    raise TryAgain(race=False)
            entries = [(part, applied) for part, applied in loaded.values() if applied]
            if not entries:
                return
            try:
                saved = self.hub.save_keyed(
                    [(part, [keys[i] for i in applied]) for part, applied in entries]
                )
            except IntegrityError as exc:
                # Another writer appended to one of these customers or recorded one of
                # these keys first: keep its results, reload and append the rest.
                applied_all = [i for _, applied in entries for i in applied]
                known = self._known({keys[i] for i in applied_all})
                for i in applied_all:
                    if keys[i] in known:
                        results[i] = ImportResult(recorded=known[keys[i]])
                fresh[0] = True
                raise TryAgain() from exc
            self.saves += 1
            for (_, applied), recorded in zip(entries, saved, strict=True):
                for i, result in zip(applied, recorded, strict=True):
                    results[i] = ImportResult(recorded=result)

        retrying(attempt, gave_up="customers kept changing")

    def _apply(
        self,
        customer_id: UUID,
        todo: list[int],
        batch: Sequence[m.Touchpoint],
        keys: list[str],
        results: list[ImportResult | None],
        loaded: dict[UUID, tuple[Prepared, list[int]]],
        *,
        repair: bool = True,
        fresh: bool = True,
    ) -> None:
        """Decide ``todo`` on the customer (or the one it was merged into), loaded once per save
        (``fresh``: from the store, else a copy of the cached one when there is one), and
        build the stored rows of what it decided."""
        try:
            customer = self._load_open(customer_id, fresh)
        except CustomerNotFoundError as exc:
            if repair:
                self._apply_repaired(customer_id, todo, batch, keys, results, loaded, exc,
                                     fresh)
            else:
                for i in todo:
                    results[i] = ImportResult(error=str(exc))
            return
        except (CommandError, DomainError) as exc:
            for i in todo:
                results[i] = ImportResult(error=str(exc))
            return
        resolved = self.hub.naming.customer_uuid(customer.id)
        if resolved not in loaded:  # two merged customers in one save: one aggregate
            loaded[resolved] = (Prepared(customer, customer.version), [])
        part, applied = loaded[resolved]
        for i in todo:
            try:
                self._decide(part, batch[i], keys[i])
            except DomainError as exc:
                results[i] = ImportResult(error=str(exc))
                continue
            applied.append(i)

    def _decide(self, part: Prepared, cmd: m.Touchpoint, key: str) -> None:
        """One touchpoint's rows onto ``part``: built directly when it is a plain one
        (``commands.bulk_rows``), else decided by the domain and mapped."""
        customer = part.customer
        shape = self.rows.shape(cmd)
        if shape is not None:
            try:
                stored, event_id = self.rows.build(customer, cmd, key, shape)
            except NotPlain:
                pass
            else:
                part.stored.append(stored)
                part.ids.append([event_id])
                return
        try:
            self.hub.apply_touchpoint(customer, cmd, key)
        except DomainError:
            if customer.pending_events:  # the customer moved on: nothing of it may be saved
                raise RuntimeError(f"a refused touchpoint ({key}) left events pending") from None
            raise
        events = customer.collect_events()
        to_stored = self.hub.mapper.to_stored_event
        part.stored += [to_stored(e) for e in events]
        part.ids.append([e.event_id for e in events])  # type: ignore[attr-defined]

    def _apply_repaired(
        self,
        missing: UUID,
        todo: list[int],
        batch: Sequence[m.Touchpoint],
        keys: list[str],
        results: list[ImportResult | None],
        loaded: dict[UUID, tuple[Prepared, list[int]]],
        exc: CustomerNotFoundError,
        fresh: bool,
    ) -> None:
        """The contact's claim names a customer that does not exist (a kill between the
        claim and the registration): the same repair as one command's, then decide."""
        owners: dict[UUID, list[int]] = {}
        for i in todo:
            try:
                owner = self.hub.repair_owner(batch[i], keys[i], missing)
            except (CommandError, DomainError) as failed:
                results[i] = ImportResult(error=str(failed))
                continue
            if owner is None:
                results[i] = ImportResult(error=str(exc))
            else:
                owners.setdefault(owner, []).append(i)
        for owner, indices in owners.items():
            self._apply(owner, indices, batch, keys, results, loaded, repair=False, fresh=fresh)

    def _load_open(self, customer_id: UUID, fresh: bool) -> Customer:
        """The customer, or the one it was merged into (merges are followed, as on one command)."""
        load = self.hub.customer if fresh else self.hub.context.store.load_cached
        customer = load(customer_id)
        for _ in range(MAX_MERGE_HOPS):
            if customer.merged_into is None:
                return customer
            customer = load(UUID(customer.merged_into))
        raise ConflictError(f"merge chain too long from {customer_id}")


def _approx_size(cmd: m.Touchpoint) -> int:
    """Rough size of a command's text, to keep one save well under a store's byte limit:
    the length of every str field, and of ``str()`` of every non-empty list, tuple or dict.
    Only stores with a byte limit ask (``SaveLimits.bytes``)."""
    texts, others = _sizing(cmd.__class__)
    fields = cmd.__dict__
    size = sum(map(len, filter(None, texts(fields))))  # str or None: summed in C
    for value in others(fields):
        cls = value.__class__  # class checks, not isinstance: this runs per event
        if cls is str:
            size += len(value)
        elif (cls is list or cls is tuple or cls is dict) and value:
            size += len(str(value))
    return size


_Get = Callable[[dict[str, Any]], tuple[Any, ...]]
_NO_TEXT = (int, float, bool, type(None), datetime, AwareDatetime, UUID)


@cache
def _sizing(command_class: type[m.Touchpoint]) -> tuple[_Get, _Get]:
    """Per command class, from its annotations: a getter of the fields that hold a str or
    None (Literal text included), and one of the fields that may hold anything else with
    text in it. Fields that never do (numbers, times, ids) are not read at all: a walk over
    every field's value cost ~4 us a call and ~15 us an email (a loaded 2-core machine)."""
    kinds = {name: _text_kind(f.annotation) for name, f in command_class.model_fields.items()}
    return (_getter([n for n, k in kinds.items() if k == "str"]),
            _getter([n for n, k in kinds.items() if k == "other"]))


def _text_kind(annotation: Any) -> str:
    """"none" (never text), "str" (a str or None), or "other" (may hold text)."""
    if annotation in _NO_TEXT:
        return "none"
    if annotation is str:
        return "str"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _text_kind(args[0])
    if origin is Literal:
        return "str" if all(type(a) is str for a in args) else "other"
    if origin is Union or origin is UnionType:
        kinds = {_text_kind(a) for a in args} - {"none"}
        return "none" if not kinds else kinds.pop() if len(kinds) == 1 else "other"
    return "other"


def _getter(names: list[str]) -> _Get:
    if len(names) > 1:
        return itemgetter(*names)  # type: ignore[return-value]
    return lambda fields: tuple(fields[n] for n in names)
