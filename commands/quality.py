"""Answers to duplicate suggestions: reject (never suggested again) or accept (merge).

Accepting a customer pair runs the existing reversible merge
(``commands.customers.merge_customers``: the duplicate's history joins the
survivor's; ``unmerge`` undoes it) and records the decision; both steps run
under keys derived from the command's key, so a retry after a stop between
them completes the second. Accounts have no merge: an account pair can only be
rejected (fix the duplicate account by hand and close it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from commands import customers
from commands import messages as m
from commands.context import WriteContext
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import on_record
from domain.quality import DuplicateDecidedError, DuplicateReview, ordered

KIND = "duplicate-review"


class RejectDuplicate(m.Command):
    """Mark a suggested pair as two different customers (or accounts): never suggested again."""

    kind: Literal["reject-duplicate"] = "reject-duplicate"
    pair_kind: Literal["customer", "account"] = "customer"
    first_id: UUID
    second_id: UUID

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "pair_kind": "customer", "first_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11",
        "second_id": "6f1e0b7c-2c52-4c38-9a55-1f7f0a3c1e22"}]})

    def default_source_key(self) -> str:
        first, second = ordered(str(self.first_id), str(self.second_id))
        return f"reject-duplicate:{self.pair_kind}:{first}:{second}"


class AcceptDuplicate(m.Command):
    """Merge a suggested customer pair: ``duplicate_id`` joins ``survivor_id`` (reversible)."""

    kind: Literal["accept-duplicate"] = "accept-duplicate"
    duplicate_id: UUID = Field(description="The customer whose history joins the survivor's.")
    survivor_id: UUID

    def default_source_key(self) -> str:
        return f"accept-duplicate:{self.duplicate_id}:{self.survivor_id}"


def review_id(w: WriteContext, pair_kind: str, first_id: str, second_id: str) -> UUID:
    first, second = ordered(first_id, second_id)
    return w.naming.uuid_for(f"duplicate-review|{pair_kind}|{first}|{second}")


def _decide(w: WriteContext, cmd: m.Command, pair_kind: str, first_id: str, second_id: str,
            decision: str) -> Recorded:
    rid = review_id(w, pair_kind, first_id, second_id)

    def decide(review: DuplicateReview | None, provs: Any) -> DuplicateReview:
        if review is not None:
            if review.decision == decision:
                return review  # the same answer again under another key: nothing new
            raise DuplicateDecidedError(
                f"this pair was {review.decision} already; unmerge or ask an admin")
        fields = next(provs).fields()
        return DuplicateReview.decide(w.naming.record(KIND, rid), fields, pair_kind, first_id,
                                      second_id, decision)

    return on_record(w, KIND, rid, cmd, decide)


def reject_duplicate(w: WriteContext, cmd: RejectDuplicate) -> Recorded:
    return _decide(w, cmd, cmd.pair_kind, str(cmd.first_id), str(cmd.second_id), "rejected")


def accept_duplicate(w: WriteContext, cmd: AcceptDuplicate) -> Recorded:
    key = source_key(cmd)
    merged = customers.merge_customers(w, m.MergeCustomers(
        source_id=cmd.duplicate_id, target_id=cmd.survivor_id, source_key=f"{key}|merge",
        actor=cmd.actor, occurred_at=cmd.occurred_at))
    _decide(w, cmd.model_copy(update={"source_key": f"{key}|decision"}), "customer",
            str(cmd.duplicate_id), str(cmd.survivor_id), "accepted")
    return merged


HANDLERS: dict[type, Callable[[Any, Any], Recorded]] = {
    RejectDuplicate: lambda hub, cmd: reject_duplicate(hub.context, cmd),
    AcceptDuplicate: lambda hub, cmd: accept_duplicate(hub.context, cmd),
}
