"""EventStoreDB/KurrentDB on the library's path, with retry-safe appends.

``eventsourcing-kurrentdb``'s recorder appends with an explicit expected
version (good) but lets every ``NewEvent`` get a random id, so a retry after
an unknown outcome (a deadline, a dropped connection) could be written twice
if the first attempt landed. This factory wraps the client the library's
recorders use: each new event's id becomes a UUIDv5 of (stream, position,
content), and an append whose outcome is unknown is retried with the same
events and the same expected version, which the server recognises as the same
write. Its application recorder adds ``select_streams`` (the write model's
``StreamReader``: the contact-point claims of a batch) as one read per stream,
which is what EventStoreDB offers. Everything else is the library's own code.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_kurrentdb.factory import KurrentDBFactory
from eventsourcing_kurrentdb.recorders import KurrentDBApplicationRecorder
from kurrentdbclient import NewEvent, StreamState
from kurrentdbclient.exceptions import DeadlineExceededError, ServiceUnavailableError

EVENT_ID_NAMESPACE = UUID("0f3b6f0e-3a8e-4d0b-9b8a-6f1d2c7e5a44")
APPEND_ATTEMPTS = 5


def deterministic_event_id(stream_name: str, position: int, data: bytes) -> UUID:
    """Same stream, position and bytes → same id; anything else → another id."""
    digest = hashlib.sha256(data).hexdigest()
    return uuid5(EVENT_ID_NAMESPACE, f"{stream_name}\x00{position}\x00{digest}")


def with_deterministic_ids(
    stream_name: str, current_version: int | StreamState, events: Iterable[NewEvent]
) -> list[NewEvent]:
    first = 0 if current_version is StreamState.NO_STREAM else (
        current_version + 1 if isinstance(current_version, int) else None
    )
    out = []
    for i, event in enumerate(events):
        if first is None:  # StreamState.ANY (snapshots): position unknown, keep content-only ids
            new_id = deterministic_event_id(stream_name, -1, event.data + event.metadata)
        else:
            new_id = deterministic_event_id(stream_name, first + i, event.data)
        out.append(replace(event, id=new_id))
    return out


class RetrySafeClient:
    """Delegates to a ``KurrentDBClient``; only ``append_events`` is changed."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def append_events(
        self, stream_name: str, *, events: Iterable[NewEvent],
        current_version: int | StreamState, **kwargs: Any,
    ) -> int:
        batch = with_deterministic_ids(stream_name, current_version, events)
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                return int(self._client.append_events(
                    stream_name, events=batch, current_version=current_version, **kwargs
                ))
            except (DeadlineExceededError, ServiceUnavailableError):
                if attempt == APPEND_ATTEMPTS:
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


class StreamsRecorder(KurrentDBApplicationRecorder):
    """The library's application recorder, reading several streams stream by stream."""

    def select_streams(
        self, originator_ids: Sequence[UUID | str]
    ) -> dict[UUID | str, list[StoredEvent]]:
        out: dict[UUID | str, list[StoredEvent]] = {}
        for originator_id in dict.fromkeys(originator_ids):
            if events := self.select_events(originator_id):
                out[originator_id] = list(events)
        return out


class RetrySafeKurrentDBFactory(KurrentDBFactory):
    """``PERSISTENCE_MODULE=touchstream.adapters.kurrentdb:RetrySafeKurrentDBFactory``."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.client = RetrySafeClient(self.client)  # type: ignore[assignment]

    def application_recorder(self) -> ApplicationRecorder:
        return StreamsRecorder(self.client)
