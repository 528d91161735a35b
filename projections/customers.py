"""Merges and partner assignment, as every read model keeps them.

Each read model has its own ``customer`` table with ``merged_into`` and
``partner_id`` (so each can be rebuilt alone). A merge is applied at query
time: a customer's *root* is found by following ``merged_into``; the root's
group is every customer whose chain ends there. An unmerge clears one
``merged_into`` and nothing else needs rewriting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.customer import Customer
from projections.events import customer_id
from projections.store import Db

MAX_HOPS = 10
#: The events ``apply_identity`` acts on (exactly these classes).
IDENTITY_EVENTS = (Customer.Registered, Customer.MergedInto, Customer.Unmerged,
                   Customer.PartnerAssigned)
IDENTITY_CLASSES = frozenset(IDENTITY_EVENTS)


@dataclass(frozen=True)
class Resolved:
    """A customer id as the read side sees it: its root (itself unless merged) and partner."""

    asked: str
    root: str
    partner_id: str | None


def apply_identity(db: Db, table: str, event: Customer.Event, **registered: Any) -> bool:
    """Keep ``table``'s merge and partner columns; True if the event was one of those."""
    if type(event) not in IDENTITY_CLASSES:
        return False
    cid = customer_id(event)
    if isinstance(event, Customer.Registered):
        cols = ["customer_id", *registered]
        marks = ",".join("?" * len(cols))
        db.execute(
            f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks}) "
            "ON CONFLICT (customer_id) DO NOTHING",
            (cid, *registered.values()),
        )
        return True
    if isinstance(event, Customer.MergedInto):
        db.execute(f"UPDATE {table} SET merged_into=? WHERE customer_id=?", (event.target_id, cid))
        return True
    if isinstance(event, Customer.Unmerged):
        db.execute(f"UPDATE {table} SET merged_into=NULL WHERE customer_id=?", (cid,))
        return True
    if isinstance(event, Customer.PartnerAssigned):
        db.execute(f"UPDATE {table} SET partner_id=? WHERE customer_id=?", (event.partner_id, cid))
        return True
    return False


def resolve(db: Db, table: str, asked: str) -> Resolved | None:
    """Follow merges to the root; None when the customer is unknown to this read model."""
    current = asked
    for _ in range(MAX_HOPS):
        row = db.one(f"SELECT merged_into, partner_id FROM {table} WHERE customer_id=?",
                     (current,))
        if row is None:
            return None
        if row[0] is None:
            return Resolved(asked=asked, root=current, partner_id=row[1])
        current = row[0]
    return None


def group(db: Db, table: str, root: str) -> list[str]:
    """The root and every customer merged into it, directly or through others."""
    members = [root]
    frontier = [root]
    for _ in range(MAX_HOPS):
        if not frontier:
            break
        marks = ",".join("?" * len(frontier))
        rows = db.all(f"SELECT customer_id FROM {table} WHERE merged_into IN ({marks})",
                      frontier)
        frontier = [r[0] for r in rows if r[0] not in members]
        members.extend(frontier)
    return members


def roots(db: Db, table: str) -> dict[str, str]:
    """Every customer of ``table`` and its root (itself unless merged), in one query: for
    figures over the whole book, where resolving one id at a time would cost a query each."""
    parent = {c: m for c, m in db.all(f"SELECT customer_id, merged_into FROM {table}")}
    found: dict[str, str] = {}
    for c in parent:
        current, hops = c, 0
        while parent.get(current) and hops < MAX_HOPS:
            current, hops = parent[current], hops + 1
        found[c] = current
    return found
