"""Erasure of a person's personal data: an event on each of their streams, then the key goes.

A merge says two records are one person, so an erasure covers the whole merge
group: the survivor and every customer it absorbed (and, asked about an
absorbed record, its survivor and the survivor's other absorbed records).
Each stream gets its own ``PersonalDataErased`` (idempotent per stream), a
fresh snapshot of the erased state (in clear: it holds no personal data, and
it supersedes the older, sealed snapshots), and only then is its data key
destroyed. A crash anywhere is repaired by running the erasure again: a
stream already erased still has its key destroyed and its snapshot taken.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError
from pydantic import Field

from commands.handling import on_customer
from commands.identity import contact_key
from commands.messages import Command
from commands.ports import KeyShredder, Recorded

if TYPE_CHECKING:
    from commands.hub import Hub
    from domain.customer import Customer

MAX_GROUP = 1000


class EraseCustomer(Command):
    """Erase a person's personal data (every record of theirs in one merge group)."""

    kind: Literal["erase"] = "erase"
    customer_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500,
                                 description="Why: a case or ticket reference, no personal data.")]

    def default_source_key(self) -> str | None:
        return f"erase:{self.customer_id}"


def merge_group(hub: Hub, customer_id: UUID) -> list[UUID]:
    """The customer, its survivor chain's root, and everything the root absorbed (transitively)."""
    root = customer_id
    seen: set[UUID] = set()
    while True:
        customer = hub.customer(root)
        if customer.merged_into is None or root in seen:
            break
        seen.add(root)
        root = UUID(customer.merged_into)
    group: list[UUID] = []
    todo = [root]
    while todo and len(group) < MAX_GROUP:
        current = todo.pop()
        if current in group:
            continue
        group.append(current)
        todo.extend(UUID(a) for a in hub.customer(current).absorbed)
    if customer_id not in group:
        group.append(customer_id)
    return group


def erase_customer(hub: Hub, cmd: EraseCustomer, shredder: KeyShredder) -> Recorded:
    """Erase every record of the person ``cmd.customer_id`` belongs to; the named
    customer's result is returned (``duplicate`` when it was already erased)."""
    group = merge_group(hub, cmd.customer_id)  # CustomerNotFoundError for an unknown id
    answer: Recorded | None = None
    for member in group:
        result = _erase_one(hub, cmd, member, shredder)
        if member == cmd.customer_id:
            answer = result
    assert answer is not None
    return answer


def _erase_one(hub: Hub, cmd: EraseCustomer, member: UUID, shredder: KeyShredder) -> Recorded:
    # Read while the key still opens the events (empty once it is gone: then an
    # earlier run released them before destroying the key).
    points = contact_points_of(hub.stream(member))
    member_cmd = cmd.model_copy(update={"customer_id": member, "source_key": f"erase:{member}"})
    key = hub.source_key_of(member_cmd)
    result = on_customer(hub.context, member, key, lambda c, p: c.erase(next(p), cmd.reason),
                         member_cmd, follow_merge=False)
    if not result.event_ids:  # already erased by an earlier request
        result = Recorded(customer_id=str(member), duplicate=True)
    for kind, value in sorted(points):
        # Released, so a later touchpoint from the same address or number starts
        # a new prospect instead of landing on the erased record.
        hub.context.claims.release(contact_key(kind, value), str(member))
    customer = hub.customer(member)
    _snapshot_erased(hub, customer)
    shredder.destroy(str(member))
    hub.forget(member)
    return result


def _snapshot_erased(hub: Hub, customer: Customer) -> None:
    if hub.snapshots is None:
        return
    try:
        hub.snapshots.put([Snapshot.take(customer)])
    except IntegrityError:
        pass  # one exists at this version: taken of the erased state too (kept in clear)


def contact_points_of(events: Iterable[object]) -> set[tuple[str, str]]:
    """The (kind, value) contact points a customer's events leave it with."""
    points: set[tuple[str, str]] = set()
    for event in events:
        kind, value = getattr(event, "kind", None), getattr(event, "value", None)
        if not isinstance(kind, str) or not isinstance(value, str):
            continue
        if type(event).__name__ == "ContactPointAdded":
            points.add((kind, value))
        elif type(event).__name__ == "ContactPointRemoved":
            points.discard((kind, value))
    return points


def refs_of(events: Iterable[object]) -> set[str]:
    """Blob references (bodies, raw mail, recordings, fax documents, attachments) named by
    a customer's events."""
    refs: set[str] = set()
    for event in events:
        for name in ("body_ref", "raw_ref", "recording_ref", "document_sha256", "signature_ref"):
            value = getattr(event, name, None)
            if isinstance(value, str) and value:
                refs.add(value)
        for attachment in getattr(event, "attachments", None) or []:
            if not isinstance(attachment, dict):
                continue
            for name in ("sha256", "ref"):  # an attachment's blob is named ``sha256``
                ref = attachment.get(name)
                if isinstance(ref, str) and ref:
                    refs.add(ref)
    return refs


def source_keys_of(events: Iterable[object]) -> set[str]:
    """The source keys a customer's touchpoints were recorded under (what the channels'
    own state, such as the IMAP ledger, knows them by)."""
    return {key for event in events
            if isinstance(key := getattr(event, "source_key", None), str) and key}
