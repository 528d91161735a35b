"""Quarantined mail, listed from the event log: what was kept aside, why, and where its bytes are.

A quarantined message stays in the log (``Mailbox.MessageQuarantined``); once
``touchstream ingest imap --retry-quarantined`` records it, the IMAP ledger row
of its UID names the key it was recorded under, and the entry counts as
released. The list comes from the write model's scan of the log by event
topic (``Hub.quarantined_messages``; fine for a quarantine, which stays small);
the raw bytes are read from the blob store by ``raw_ref`` (``header_ref`` for
an oversized message). An entry whose person was erased (its sealed fields'
key destroyed, its bytes shredded) is no longer listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from commands.hub import Hub


class ReleaseLookup(Protocol):
    """Where a quarantined message (by account, folder, UIDVALIDITY, UID) was recorded since."""

    def released_as(self, account: str, folder: str, uidvalidity: int, uid: int) -> str | None: ...


@dataclass(frozen=True)
class QuarantinedMessage:
    source_key: str
    account: str
    folder: str
    reason: str
    detail: str
    message_id: str | None
    uidvalidity: int | None
    uid: int | None
    size: int
    raw_ref: str | None
    header_ref: str | None
    quarantined_at: datetime
    released_as: str | None  # the source key it was recorded under after a retry


def quarantined_messages(
    hub: Hub, releases: ReleaseLookup | None = None, *, include_released: bool = False,
    reason: str | None = None, limit: int = 1000,
) -> list[QuarantinedMessage]:
    """Quarantined messages, oldest first; released ones only when asked."""
    out: list[QuarantinedMessage] = []
    for event, box in hub.quarantined_messages():
        if len(out) >= limit:
            break
        if getattr(event, "personal_data_erased", False):
            continue  # the person it named was erased: nothing of it is left to show
        if reason is not None and event.reason != reason:
            continue
        released = None
        if releases is not None and event.uid is not None and event.uidvalidity is not None:
            released = releases.released_as(box.account, box.folder, event.uidvalidity,
                                            event.uid)
        if released is not None and not include_released:
            continue
        out.append(QuarantinedMessage(
            source_key=event.source_key, account=box.account, folder=box.folder,
            reason=event.reason, detail=event.detail, message_id=event.message_id,
            uidvalidity=event.uidvalidity, uid=event.uid, size=event.size,
            raw_ref=event.raw_ref, header_ref=event.header_ref,
            quarantined_at=event.timestamp, released_as=released,
        ))
    return out
