"""What the write model needs from the stores, beyond the eventsourcing library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

SOURCE_KEYS_TABLE = "touchstream_source_keys"


@dataclass(frozen=True)
class SaveLimits:
    """How much one save may carry on a store, as its recorder declares it (a class
    attribute ``save_limits``): at most ``events`` events, and about ``bytes`` of stored
    text (None: no byte limit). The bulk importer cuts a history into saves of this size."""

    events: int = 500
    bytes: int | None = 256 * 1024


#: For a recorder that declares none: what every store took before recorders declared
#: their own (the byte limit was psycopg's pipeline's, seen to hang at 0.5-1 MB).
DEFAULT_SAVE_LIMITS = SaveLimits()


def save_limits_of(recorder: Any) -> SaveLimits:
    """The limits ``recorder`` declares, else ``DEFAULT_SAVE_LIMITS``."""
    limits = getattr(recorder, "save_limits", None)
    return limits if isinstance(limits, SaveLimits) else DEFAULT_SAVE_LIMITS


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


@runtime_checkable
class StreamReader(Protocol):
    """A recorder that reads many short streams in one go (contact-point claims of a batch).

    The SQL stores answer in one statement, so every stream is read as of one
    moment; a store without multi-stream reads may read them one by one (each as
    of its own read, as loading them one by one would).
    """

    def select_streams(
        self, originator_ids: Sequence[UUID | str]
    ) -> dict[UUID | str, list[StoredEvent]]:
        """Every stored event of each stream, oldest first, keyed by the ids as given
        (a stream without events is left out)."""
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
