"""Helpers for read-side tests: a test-local ``authorize`` and an in-memory event source.

``TestAuthorizer`` implements the same interface as ``touchstream.auth``'s
``authorize(*roles)``: a FastAPI dependency returning a ``Principal`` with
``role`` and ``partner_id``; 401 without a key, 403 for a role not admitted
(``admin`` admitted everywhere). Tokens are ``<role>`` or ``partner:<id>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from fastapi import Header, HTTPException

from domain.customer import Customer, Provenance
from projections.events import Item

ROLES = ("agent", "sales", "marketing", "service", "dispatcher", "analyst", "auditor", "admin",
         "adapter", "partner")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    partner_id: str | None
    name: str


class TestAuthorizer:
    __test__ = False

    def __call__(self, *roles: str) -> Callable[..., Principal]:
        admitted = {*roles, "admin"}

        def dependency(authorization: str | None = Header(None)) -> Principal:
            if not authorization or not authorization.startswith("Bearer "):
                raise HTTPException(401, detail="missing API key")
            token = authorization.removeprefix("Bearer ")
            role, _, partner = token.partition(":")
            if role not in ROLES:
                raise HTTPException(401, detail="unknown API key")
            if role not in admitted:
                raise HTTPException(403, detail=f"role {role!r} may not call this route")
            return Principal(token, role, partner or None, token)

        return dependency


@dataclass(frozen=True)
class _Note:
    id: int
    item: Item


class ListSource:
    """An event source over a list of (position, event): projections fed events directly."""

    def __init__(self, items: Sequence[Item] = ()) -> None:
        self.items: list[Item] = list(items)

    def append(self, event: Customer.Event) -> int:
        pos = (self.items[-1][0] if self.items else 0) + 1
        self.items.append((pos, event))
        return pos

    def head(self) -> int:
        return self.items[-1][0] if self.items else 0

    def read(self, after: int, limit: int, stop: int | None = None) -> list[_Note]:
        out = [_Note(p, (p, e)) for p, e in self.items
               if p > after and (stop is None or p <= stop)]
        return out[:limit]

    def decode(self, notes: Sequence[_Note],
               consumes: tuple[type, ...] = (Customer.Event,)) -> list[Item]:
        return [n.item for n in notes if isinstance(n.item[1], consumes)]

    def wait(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


class Story:
    """Builds customer events the way the aggregate records them, with a fake clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.clock = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.n = 0

    def prov(self, channel: str = "system", direction: str = "internal",
             at: datetime | None = None) -> Provenance:
        self.n += 1
        self.clock += timedelta(minutes=1)
        return Provenance(uuid4(), at or self.clock, channel, direction, "tester",
                          f"test:{self.n}", f"c{self.n}", f"c{self.n}")

    def register(self, name: str, company: str | None = None) -> Customer:
        return Customer.register(uuid4(), self.prov(), name=name, company=company)

    def touch(self, customer: Customer, cls: type[Customer.Event], channel: str,
              direction: str = "inbound", at: datetime | None = None, **fields: Any) -> None:
        customer.record(cls, self.prov(channel, direction, at), **fields)


def call_fields(call_id: str, summary: str | None = None) -> dict[str, Any]:
    return {"call_id": call_id, "from_number": None, "to_number": None, "queue": None,
            "agent": None, "ivr_choices": [], "outcome": "answered", "duration_s": 60,
            "wait_s": 5, "recording_ref": None, "summary": summary}


def email_fields(message_id: str, subject: str, body: str | None = None) -> dict[str, Any]:
    return {"message_id": message_id, "thread_id": message_id, "in_reply_to": None,
            "references": [], "from_address": "x@example.com", "to": [], "cc": [],
            "subject": subject, "body_text": body, "body_ref": None, "attachments": []}


def feed(source: ListSource, *customers: Customer) -> None:
    """Move the customers' pending events into the source, in the given order."""
    for c in customers:
        for e in c.collect_events():
            source.append(e)  # type: ignore[arg-type]


def uid() -> str:
    return str(UUID(int=uuid4().int))
