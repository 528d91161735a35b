"""Erasure as an operator runs it: everything kept beside the log, then the command.

What the person's events name or imply is read first, while their key still
opens the events: the blobs they reference, the source keys they were
recorded under and the contact points they leave the person with. The
email channel's quarantine is searched for messages naming the person (a
source key of theirs, an address or number of theirs in the header block of
the kept bytes or in the reason). Then, in order:

1. the email channel's state forgets those messages: their IMAP ledger rows
   become ``erased`` and their content-dedup rows go (``secure_delete``, WAL
   checkpointed);
2. each quarantined message of theirs has the bytes it kept shredded like the
   blobs of step 3, then its entry's key destroyed (its sealed fields read as
   erased and it leaves the quarantine list);
3. each blob's own key is destroyed and its file overwritten and removed;
4. held triage items that name one of the person's contact points have their
   key destroyed (they read as erased and leave the triage queue); the blobs
   they name were shredded in step 3 and their ledger rows erased in step 1;
5. quarantined CDR rows naming one of the person's numbers are removed;
6. the command records ``PersonalDataErased`` on every record of the person
   and destroys their data keys;
7. the call directory forgets the person's calls.

Steps 1-5 come before the command so that a crash anywhere is repaired by
running the erasure again: until step 6 the events still open and name
everything again (step 1 runs before step 2 destroys what finds a quarantined
message's ledger row); each step is idempotent, and a rerun answers
``duplicate``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol
from uuid import UUID

from channels.blobs import BlobNotFoundError, BlobStore, BlobUnreadableError
from channels.phone.cdr_tail import Quarantine
from commands.hub import Hub
from commands.ports import Recorded
from commands.privacy import (
    EraseCustomer,
    contact_points_of,
    erase_customer,
    merge_group,
    refs_of,
    source_keys_of,
)
from commands.triage import shred_held
from domain.claims import HeldTouchpoint
from domain.personal import quarantined_subject
from touchstream.privacy.blobs import blob_subject
from touchstream.privacy.datakeys import DataKeys
from touchstream.privacy.mentions import Mentions

HEX = frozenset("0123456789abcdef")


class CallForgetter(Protocol):
    """The part of the call directory an erasure uses."""

    def forget_customers(self, customer_ids: Iterable[str]) -> int: ...


class EmailLedger(Protocol):
    """The part of the email channel's state an erasure uses (``ImapState``)."""

    def forget_messages(self, source_keys: Collection[str]) -> int: ...

    def close(self) -> None: ...


@dataclass
class ErasureReport:
    """What one erasure did (no personal data in it: ids and counts)."""

    recorded: Recorded
    customers: list[str] = field(default_factory=list)
    blobs_shredded: int = 0
    held_erased: int = 0
    quarantine_rows_removed: int = 0
    calls_forgotten: int = 0
    mail_quarantine_erased: int = 0
    mail_ledger_rows_erased: int = 0


class Eraser:
    """Erases a person everywhere the hub keeps their data."""

    def __init__(self, hub: Hub, keys: DataKeys, blobs: BlobStore, *,
                 quarantine: Quarantine | None = None,
                 calls: CallForgetter | None = None,
                 email_state: Callable[[], EmailLedger | None] | None = None) -> None:
        self.hub = hub
        self.keys = keys
        self.blobs = blobs
        self.quarantine = quarantine
        self.calls = calls
        # Opened per erasure (None: the email channel never ran here), closed after.
        self.email_state = email_state

    def erase(self, customer_id: UUID, reason: str, actor: str) -> ErasureReport:
        group = merge_group(self.hub, customer_id)  # CustomerNotFoundError for an unknown id
        refs: set[str] = set()
        points: set[tuple[str, str]] = set()
        keys: set[str] = set()
        for member in group:
            if not self.keys.is_erased(str(member)):
                events = list(self.hub.stream(member))
                refs |= refs_of(events)
                points |= contact_points_of(events)
                keys |= source_keys_of(events)
        mentions = Mentions(points)
        held_items = self._held_of(mentions) if mentions else []
        for item in held_items:  # what arrived from them before anyone knew whose it was
            refs |= refs_of([SimpleNamespace(**item.command)])
            keys.add(item.source_key)
        kept = self._quarantined_mail_of(mentions, keys)
        ledger_rows = self._forget_mail(keys | {key for _, key, _ in kept})
        shredded = 0
        for subject, _, kept_refs in kept:
            # Bytes first: an entry whose key is gone no longer says where its bytes are.
            shredded += sum(1 for ref in sorted(kept_refs - refs) if self._shred_blob(ref))
            self.keys.destroy(subject)
        shredded += sum(1 for ref in sorted(refs) if self._shred_blob(ref))
        held = sum(1 for item in held_items if shred_held(self.hub.context, item.id))
        rows = self._purge_quarantine(mentions) if mentions else 0
        cmd = EraseCustomer(customer_id=customer_id, reason=reason, actor=actor)
        recorded = erase_customer(self.hub, cmd, self.keys)
        calls = self.calls.forget_customers(str(m) for m in group) if self.calls else 0
        return ErasureReport(recorded, [str(m) for m in group], shredded, held, rows, calls,
                             len(kept), ledger_rows)

    def _quarantined_mail_of(self, mentions: Mentions, keys: set[str]
                             ) -> list[tuple[str, str, set[str]]]:
        """(entry key subject, source key, blob refs) of each message the email channel
        kept aside that names the person."""
        found = []
        for event, _ in self.hub.quarantined_messages():
            if getattr(event, "personal_data_erased", False):
                continue  # erased already (by an earlier run, or another person's erasure)
            kept_refs = {r for r in (event.raw_ref, event.header_ref) if r}
            if event.source_key in keys or (mentions and (
                    mentions.in_field(event.detail or "")
                    or any(mentions.in_field(self._header_block(r)) for r in kept_refs))):
                found.append((quarantined_subject(event.event_id), event.source_key, kept_refs))
        return found

    def _header_block(self, ref: str) -> str:
        try:
            raw = self.blobs.get(ref)
        except (BlobNotFoundError, BlobUnreadableError, ValueError):
            return ""  # gone or erased already: judged by what else the entry says
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        return head.decode("utf-8", errors="replace")

    def _forget_mail(self, keys: set[str]) -> int:
        if self.email_state is None or not keys:
            return 0
        state = self.email_state()
        if state is None:
            return 0
        try:
            return state.forget_messages(keys)
        finally:
            state.close()

    def _shred_blob(self, ref: str) -> bool:
        """Destroy a blob's key and shred its file; False for a ref that is not a blob
        address (a provider's recording id) or a blob that is gone already."""
        if len(ref) != 64 or not set(ref) <= HEX:
            return False
        self.keys.destroy(blob_subject(ref))
        return self.blobs.shred(ref)

    def _held_of(self, mentions: Mentions) -> list[HeldTouchpoint]:
        return [held for held in self.hub.held_touchpoints(limit=1_000_000_000)
                if mentions.in_field(held.contact or "") or mentions.in_value(held.command)]

    def _purge_quarantine(self, mentions: Mentions) -> int:
        if self.quarantine is None:
            return 0

        def names_person(entry: dict[str, Any]) -> bool:
            try:
                raw = base64.b64decode(entry.get("raw_base64", ""), validate=True)
            except ValueError:
                raw = b""  # a damaged entry: judged by what else it says
            return mentions.in_row(raw) or mentions.in_field(str(entry.get("reason", "")))

        return self.quarantine.purge(names_person)
