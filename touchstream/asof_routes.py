"""GET /customers/{id}/as-of: a customer as on a past date (``replays.asof``).

Read from the customer's own stream (decrypted like every read), not from a
read model: the answer is a fold of the events that had occurred by ``at``
(and, with ``known_at``, that were recorded by then). Staff and analyst roles;
partner keys are not admitted (a partner's scope is today's assignment, which
says nothing about the past). The read is on record in the read audit before
the answer is sent.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at
runtime.
"""

from dataclasses import asdict
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from commands.errors import CustomerNotFoundError
from replays.asof import customer_as_of
from touchstream.audit_routes import record_read
from touchstream.audit_wiring import access_recorder

ROLES = ("agent", "sales", "marketing", "service", "dispatcher", "auditor", "analyst")


class LateFactPublic(BaseModel):
    event_id: str
    kind: str
    occurred_at: str
    recorded_at: str


class CustomerAsOfPublic(BaseModel):
    """The customer as on ``at``; ``learned_later`` lists what had happened by ``at`` but
    was recorded after it (only when ``known_at`` is not given)."""

    customer_id: str
    at: str
    known_at: str | None
    exists: bool = Field(description="False when the customer was not registered yet")
    name: str | None
    company: str | None
    lifecycle_stage: str | None
    partner_id: str | None
    merged_into: str | None
    erased: bool
    contact_points: dict[str, list[str]]
    open_callbacks: list[dict[str, Any]]
    touchpoints: dict[str, int] = Field(description="touchpoints per channel that had happened")
    last_contact: str | None
    events: int
    learned_later: list[LateFactPublic]

    model_config = {"json_schema_extra": {"examples": [{
        "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "at": "2026-03-01T23:59:59+00:00",
        "known_at": None, "exists": True, "name": "Ada Lovelace",
        "company": "Analytical Engines", "lifecycle_stage": "current", "partner_id": None,
        "merged_into": None, "erased": False,
        "contact_points": {"email": ["ada@example.com"], "phone": ["+442079460018"]},
        "open_callbacks": [], "touchpoints": {"phone": 6, "email": 2, "visit": 1},
        "last_contact": "2026-02-27T15:00:00+00:00", "events": 14,
        "learned_later": [{"event_id": "5c0e1d6e-3f0a-5a55-9d1b-0b7f2c1e0a11",
                           "kind": "VisitRecorded", "occurred_at": "2026-02-27T15:00:00+00:00",
                           "recorded_at": "2026-03-04T08:10:00+00:00"}]}]}}


def _moment(raw: str, name: str) -> datetime:
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise HTTPException(422, detail=f"{name}: not a date (YYYY-MM-DD) or ISO 8601 "
                                        f"time: {raw!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_of_routes(context: Any) -> Any:
    """A ``RouterFactory`` for the time-travel route."""
    router = APIRouter(tags=["customers"])
    reader = context.authorize(*ROLES)
    deps = context.deps

    @router.get("/customers/{customer_id}/as-of", response_model=CustomerAsOfPublic,
                summary="A customer as on a past date (as it happened, or as known then)",
                responses={404: {"description": "No such customer."}})
    def customer_as_of_route(
        customer_id: UUID, request: Request, who: Annotated[Any, Depends(reader)],
        at: Annotated[str, Query(description="YYYY-MM-DD (end of day, UTC) or ISO 8601 time",
                                 examples=["2026-03-01"], max_length=40)],
        known_at: Annotated[str | None, Query(
            description="only what was recorded by this time (ISO 8601)", max_length=40)] = None,
    ) -> Any:
        moment = _moment(at, "at")
        known = _moment(known_at, "known_at") if known_at else None
        try:
            deps.hub.customer(customer_id)
        except CustomerNotFoundError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        view = customer_as_of(str(customer_id), deps.hub.stream(customer_id), moment, known)
        record_read(access_recorder(deps.settings), request, who, str(customer_id))
        return asdict(view)

    return router
