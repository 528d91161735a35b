"""What the write model needs from the stores, beyond the eventsourcing library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from uuid import UUID

SOURCE_KEYS_TABLE = "touchstream_source_keys"


@dataclass(frozen=True)
class KeyRow:
    """One event recorded under a source key."""

    originator_id: str
    version: int
    event_id: UUID
    position: int | None


@runtime_checkable
class SourceKeyIndex(Protocol):
    """A recorder that writes source keys in the same transaction as the events.

    ``insert_events(..., source_keys=[(key, seq, event_id), ...])`` must fail
    with an ``IntegrityError`` naming ``touchstream_source_keys`` when the key
    is already taken, and record nothing.
    """

    def lookup_source_keys(self, keys: list[str]) -> dict[str, list[KeyRow]]:
        """The events recorded under each of the given keys (absent keys omitted)."""
        ...


class KeyShredder(Protocol):
    """Destroys a data subject's key (idempotent)."""

    def destroy(self, subject: str) -> bool:
        """Destroy the key of ``subject``; True if it was destroyed by this call."""
        ...


@dataclass(frozen=True)
class Recorded:
    """What a command recorded: returned again, unchanged, for a duplicate."""

    customer_id: str
    event_ids: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    positions: list[int | None] = field(default_factory=list)
    duplicate: bool = False
    held_for_triage: bool = False

    @property
    def position(self) -> int | None:
        known = [p for p in self.positions if p is not None]
        return max(known) if known else None
