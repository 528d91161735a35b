"""Data-quality decisions: staff's answer to a suggested duplicate pair.

A ``DuplicateReview`` is a record (its own stream, no personal data: two ids,
the kind and the decision) per unordered pair. A rejected pair is never
suggested again; an accepted customer pair was merged by the existing,
reversible merge (the merge's own events say so, and an unmerge undoes it).
"""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError
from domain.records import Record

PAIR_KINDS = ("customer", "account")
DECISIONS = ("rejected", "accepted")


class DuplicateDecidedError(DomainError):
    """Raised when a pair that was already decided is decided again the other way."""


def ordered(first_id: str, second_id: str) -> tuple[str, str]:
    """The pair in its one canonical order."""
    if first_id == second_id:
        raise DomainError("a record cannot be a duplicate of itself")
    return (first_id, second_id) if first_id < second_id else (second_id, first_id)


class DuplicateReview(Record):
    """The decision about one suggested pair."""

    class Decided(Record.Created):
        kind: str
        first_id: str
        second_id: str
        decision: str

    def __init__(self, kind: str, first_id: str, second_id: str, decision: str,
                 **_: Any) -> None:
        self.kind = kind
        self.first_id = first_id
        self.second_id = second_id
        self.decision = decision

    @classmethod
    def decide(cls, stream: Any, prov: dict[str, Any], kind: str, first_id: str,
               second_id: str, decision: str) -> DuplicateReview:
        if kind not in PAIR_KINDS or decision not in DECISIONS:
            raise DomainError(f"unknown pair kind {kind!r} or decision {decision!r}")
        first, second = ordered(first_id, second_id)
        return cls._create(cls.Decided, id=stream, kind=kind, first_id=first, second_id=second,
                           decision=decision, **prov)
