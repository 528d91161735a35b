"""History backfill: many touchpoints recorded in few transactions, same guarantees.

The normal path costs one transaction (and a key lookup, a load, a commit)
per touchpoint. A backfill of years of history instead:

* looks up the source keys of a whole batch at once and drops the ones
  already recorded (re-importing a file records nothing new); a key seen
  twice in one batch is recorded once, the second copy gets the first's result;
* groups the rest by customer and appends each customer's events in chunks
  (at most ``chunk_events`` events and about ``chunk_bytes`` per save: the
  psycopg pipeline was seen to hang around 0.5–1 MB in one insert), each
  chunk with its source-key rows in the same transaction and a snapshot when
  the chunk crosses the Hub's snapshot interval;
* retries a chunk whose save loses a race (another writer appended to the
  customer, or recorded one of the chunk's keys first): it re-reads the keys,
  keeps the other writer's results, reloads the customer and appends the rest.

Stores without a source-key index (EventStoreDB, where dedup needs the
reservation protocol) fall back to one ``hub.execute`` per command. Commands
that are not touchpoints (registrations, contact points…) run through
``hub.execute`` in their place in the input, so one file can register
customers and then backfill their history.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands import messages as m
from commands.hub import (
    MAX_ATTEMPTS,
    MAX_MERGE_HOPS,
    CommandError,
    ConcurrencyError,
    ConflictError,
    Hub,
)
from commands.ports import Recorded
from domain.customer import Customer
from domain.errors import DomainError

CHUNK_EVENTS = 500
CHUNK_BYTES = 256 * 1024
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
        chunk_events: int = CHUNK_EVENTS,
        chunk_bytes: int = CHUNK_BYTES,
        batch_commands: int = BATCH_COMMANDS,
    ) -> None:
        if chunk_events < 1 or batch_commands < 1:
            raise ValueError("chunk_events and batch_commands must be at least 1")
        self.hub = hub
        self.chunk_events = chunk_events
        self.chunk_bytes = chunk_bytes
        self.batch_commands = batch_commands

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
        first: dict[str, int] = {}
        groups: dict[UUID, list[int]] = {}
        counterparts: dict[tuple[str, str], UUID] = {}
        for i, (cmd, key) in enumerate(zip(batch, keys, strict=True)):
            if key in known:
                results[i] = ImportResult(recorded=known[key])
            elif key not in first:
                first[key] = i
                try:
                    customer_id = self._customer(cmd, key, counterparts)
                except (CommandError, DomainError) as exc:
                    results[i] = ImportResult(error=str(exc))
                    continue
                groups.setdefault(customer_id, []).append(i)
        for customer_id, indices in groups.items():
            self._record_customer(customer_id, indices, batch, keys, results)
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
        self, cmd: m.Touchpoint, key: str, memo: dict[tuple[str, str], UUID]
    ) -> UUID:
        if cmd.customer_id is not None:
            return cmd.customer_id
        counterpart = cmd.counterpart()
        if counterpart is not None and counterpart in memo:
            return memo[counterpart]
        customer_id = self.hub.customer_for(cmd, key)
        if counterpart is not None:
            memo[counterpart] = customer_id
        return customer_id

    def _record_customer(
        self,
        customer_id: UUID,
        indices: list[int],
        batch: Sequence[m.Touchpoint],
        keys: list[str],
        results: list[ImportResult | None],
    ) -> None:
        try:
            for chunk in self._chunks(indices, batch):
                self._record_chunk(customer_id, chunk, batch, keys, results)
        except (CommandError, DomainError) as exc:
            if isinstance(exc, ConcurrencyError):
                raise
            for i in indices:
                if results[i] is None:
                    results[i] = ImportResult(error=str(exc))

    def _chunks(self, indices: list[int], batch: Sequence[m.Touchpoint]) -> Iterator[list[int]]:
        chunk: list[int] = []
        size = 0
        for i in indices:
            cost = _EVENT_OVERHEAD_BYTES + _approx_size(batch[i].__dict__)
            if chunk and (len(chunk) >= self.chunk_events or size + cost > self.chunk_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(i)
            size += cost
        if chunk:
            yield chunk

    def _record_chunk(
        self,
        customer_id: UUID,
        chunk: list[int],
        batch: Sequence[m.Touchpoint],
        keys: list[str],
        results: list[ImportResult | None],
    ) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            todo = [i for i in chunk if results[i] is None]
            if not todo:
                return
            customer = self._load_open(customer_id)
            applied: list[int] = []
            for i in todo:
                try:
                    self.hub.apply_touchpoint(customer, batch[i], keys[i])
                except DomainError as exc:
                    results[i] = ImportResult(error=str(exc))
                    continue
                applied.append(i)
            if not applied:
                return
            try:
                recorded = self.hub.save_keyed(customer, [keys[i] for i in applied])
            except IntegrityError:
                # Another writer appended to this customer or recorded one of these
                # keys first: keep its results, reload and append the rest.
                known = self._known({keys[i] for i in applied})
                for i in applied:
                    if keys[i] in known:
                        results[i] = ImportResult(recorded=known[keys[i]])
                time.sleep(random.uniform(0, 0.002 * attempt))
                continue
            for i, result in zip(applied, recorded, strict=True):
                results[i] = ImportResult(recorded=result)
            return
        raise ConcurrencyError(
            f"customer {customer_id} kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )

    def _load_open(self, customer_id: UUID) -> Customer:
        """The customer, or the one it was merged into (merges are followed, as on one command)."""
        customer = self.hub.customer(customer_id)
        for _ in range(MAX_MERGE_HOPS):
            if customer.merged_into is None:
                return customer
            customer = self.hub.customer(UUID(customer.merged_into))
        raise ConflictError(f"merge chain too long from {customer_id}")


def _approx_size(value: Any) -> int:
    """Rough JSON size of a command's fields, to keep one save well under the pipeline limit."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, dict):
        return sum(len(str(k)) + 3 + _approx_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_approx_size(v) + 1 for v in value) + 2
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return _approx_size(vars(value))
    return 8
