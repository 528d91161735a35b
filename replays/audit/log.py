"""The event log as Merkle leaves: one leaf per stored event record, in log position order.

Read through the recorder's notification API, so one code path serves every
store: notification id on SQLite and PostgreSQL, the ``$all`` commit position
on EventStoreDB/KurrentDB. Read-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from replays.audit.standalone_verify import leaf_hash, record_bytes

BATCH = 2000

Leaf = tuple[int, bytes]  # (log position, leaf hash)


class NotificationLog(Protocol):
    """The part of an eventsourcing application recorder the audit reads."""

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *,
                             inclusive_of_start: bool = True) -> Sequence[Any]: ...

    def max_notification_id(self) -> int | None: ...


def stored_record(notification: Any) -> bytes:
    """The canonical bytes of a stored event record (``standalone_verify.record_bytes``)."""
    return record_bytes(str(notification.originator_id), int(notification.originator_version),
                        notification.topic, bytes(notification.state))


def record_json(notification: Any) -> dict[str, Any]:
    """The stored record as JSON (state in base64), as the standalone verifier reads it."""
    import base64

    return {"position": int(notification.id), "originator_id": str(notification.originator_id),
            "originator_version": int(notification.originator_version),
            "topic": notification.topic,
            "state": base64.b64encode(bytes(notification.state)).decode("ascii")}


def read_batches(log: NotificationLog, after: int | None, stop: int | None = None,
                 batch: int = BATCH) -> Iterator[Sequence[Any]]:
    """Notifications after position ``after`` (None: from the start) up to ``stop``, in order."""
    while True:
        if after is None:
            rows = log.select_notifications(None, batch, stop=stop)
        else:
            rows = log.select_notifications(after, batch, stop=stop, inclusive_of_start=False)
        if not rows:
            return
        yield rows
        after = int(rows[-1].id)
        if len(rows) < batch:
            return


def leaves(log: NotificationLog, after: int | None, stop: int | None = None,
           batch: int = BATCH) -> Iterator[list[Leaf]]:
    """Batches of (position, leaf hash) after ``after``, in log order."""
    for rows in read_batches(log, after, stop, batch):
        yield [(int(n.id), leaf_hash(stored_record(n))) for n in rows]


def find(log: NotificationLog, position: int) -> Any | None:
    """The stored record at ``position``, or None."""
    rows = log.select_notifications(position, 1, stop=position)
    return rows[0] if rows and int(rows[0].id) == position else None
