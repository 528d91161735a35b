"""One ingested mailbox (account + folder): operational events that belong to no customer.

A message that cannot become a customer touchpoint is quarantined here with
the reason and a reference to its raw bytes, so nothing read from a mailbox is
ever lost; a UIDVALIDITY change is recorded here too. The aggregate remembers
the source keys it has recorded, so a retried command records nothing new even
on a store without a source-key table.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate


class Mailbox(Aggregate):
    """``mailbox-<uuid5(account|folder)>`` on EventStoreDB, the uuid elsewhere."""

    INITIAL_VERSION = 0

    class Opened(Aggregate.Created):
        account: str
        folder: str

    class Keyed(Aggregate.Event):
        source_key: str
        event_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.seen_keys.append(self.source_key)

    class MessageQuarantined(Keyed):
        """A message kept aside with its reason; its raw bytes stay in the blob store."""

        reason: str
        detail: str
        message_id: str | None
        uidvalidity: int | None
        uid: int | None
        size: int
        raw_ref: str | None
        header_ref: str | None

    class UidValidityChanged(Keyed):
        """The server renumbered the folder: every cached UID is void; a rescan follows."""

        old_uidvalidity: int
        new_uidvalidity: int

    def __init__(self, account: str, folder: str) -> None:
        self.account = account
        self.folder = folder
        self.seen_keys: list[str] = []

    @classmethod
    def open(cls, mailbox_id: UUID | str, account: str, folder: str) -> Mailbox:
        return cls._create(cls.Opened, id=mailbox_id, account=account, folder=folder)

    def has(self, source_key: str) -> bool:
        return source_key in self.seen_keys

    def quarantine(self, source_key: str, event_id: UUID, **fields: Any) -> None:
        if not self.has(source_key):
            self.trigger_event(
                self.MessageQuarantined, source_key=source_key, event_id=event_id, **fields
            )

    def note_uidvalidity_change(self, source_key: str, event_id: UUID, old: int, new: int) -> None:
        if not self.has(source_key) and old != new:
            self.trigger_event(
                self.UidValidityChanged, source_key=source_key, event_id=event_id,
                old_uidvalidity=old, new_uidvalidity=new,
            )
