"""Service routes: the queue with SLA states, a case in detail, a customer's cases with
suggested touchpoints, and service statistics. SLA states are computed at read time
with the settings in force; ``as_of`` (default: now) is the moment they are judged at."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from domain.sla import SlaConfig
from projections.service.view import ServiceView
from read_api.dependencies import (
    SUMMARY_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    responses,
    scoped,
)

QUEUE_ROLES = ("agent", "service", "dispatcher", "auditor")
CASE_ROLES = ("agent", "service", "dispatcher", "auditor", "partner")
STATS_ROLES = ("service", "analyst", "auditor")
MAX_STATS_DAYS = 731

AsOf = Query(description="The moment SLA states are judged at (RFC 3339; default now).",
             openapi_examples={"now": {"value": "2026-11-24T09:30:00+00:00"}})


class QueueItemPublic(BaseModel):
    case_id: str
    customer_id: str
    queue: str
    agent: str | None
    priority: str
    category: str
    case_kind: str
    status: str
    channel: str
    opened_at: str
    age_min: int
    sla_state: Literal["ok", "at_risk", "breached"]
    next_deadline: str | None
    first_response: str
    resolution: str
    outside_contract: bool


class WorkloadPublic(BaseModel):
    agent: str | None
    open: int
    at_risk: int
    breached: int


class QueuePublic(BaseModel):
    as_of: str
    total: int
    items: list[QueueItemPublic]
    workload: list[WorkloadPublic]


class TimerPublic(BaseModel):
    name: str
    target_min: int
    due_at: str | None
    warn_at: str | None
    met_at: str | None
    used_min: float
    state: str


class CasePublic(BaseModel):
    """A case's row (personal text — subject, CSAT comment — is null after an erasure)."""

    case_id: str
    customer_id: str
    partner_id: str | None
    case_kind: str
    category: str
    priority: str
    channel: str
    queue: str
    agent: str | None
    status: str
    subject: str | None
    opened_at: str | None
    first_response_at: str | None
    resolved_at: str | None
    closed_at: str | None
    reopened: int
    first_contact: bool | None
    csat_score: int | None
    csat_comment: str | None
    contract_id: str | None
    outside_contract: bool
    sla_policy: str | None
    severity: str | None
    cause_category: str | None
    compensation: str | None
    compensation_amount: str | None
    currency: str | None
    follow_up_on: str | None
    touchpoints: int
    account_id: str | None


class CaseDetailPublic(CasePublic):
    sla_state: str
    next_deadline: str | None
    timers: list[TimerPublic]
    as_of: str
    steps: list[dict[str, Any]] = Field(description="Every transition and linked touchpoint, "
                                                    "in log order, with its event id.")


class SuggestionPublic(BaseModel):
    touchpoint_event_id: str
    case_id: str
    channel: str
    occurred_at: str | None


class CustomerCasesPublic(BaseModel):
    customer_id: str
    cases: list[CasePublic]
    suggestions: list[SuggestionPublic] = Field(description=(
        "Inbound touchpoints that may belong to an open case (same category, or none given); "
        "link one with POST /commands/link-touchpoint."))


class StatisticsPublic(BaseModel):
    period: str
    from_: str = Field(alias="from")
    to: str
    as_of: str
    items: list[dict[str, Any]] = Field(description=(
        "Per period: cases, by_channel, first_response_min and resolution_min (business "
        "minutes: median, p90), fcr_rate, breach_rate, reopen_rate, csat, complaints_by_cause."))


def _now(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if as_of.tzinfo is None:
        raise HTTPException(400, detail="as_of needs a timezone offset")
    return as_of


def router(deps: ReadDeps, sla: SlaConfig) -> APIRouter:
    router = APIRouter(tags=["service"])
    view = ServiceView(deps.views.store, sla)
    queue_reader = deps.reader(*QUEUE_ROLES)
    case_reader = deps.reader(*CASE_ROLES)
    cases_reader = deps.reader(*SUMMARY_ROLES)
    stats_reader = deps.reader(*STATS_ROLES)

    @router.get("/service/queue", summary="Open cases by SLA state and next deadline; "
                "per-agent workload", response_class=OrjsonResponse, response_model=QueuePublic,
                responses=responses(400, 409, 503))
    async def queue(
        who: Annotated[Principal, Depends(queue_reader)],
        as_of: Annotated[datetime | None, AsOf] = None,
        queue: Annotated[str | None, Query(max_length=100)] = None,
        agent: Annotated[str | None, Query(max_length=100)] = None,
        priority: Annotated[Literal["urgent", "high", "normal", "low"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        moment = _now(as_of)
        return OrjsonResponse(await deps.call(lambda: view.queue(
            moment, queue=queue, agent=agent, priority=priority, limit=limit, offset=offset)))

    @router.get("/service/cases/{case_id}", summary="A case: every step in order, SLA timers",
                response_class=OrjsonResponse, response_model=CaseDetailPublic,
                responses=responses(404, 409, 503, s404="no case 5d1f0c8e-3a4b-4c2d-9e8f-"
                                                        "0a1b2c3d4e5f"))
    async def case(
        case_id: UUID,
        who: Annotated[Principal, Depends(case_reader)],
        request: Request,
        as_of: Annotated[datetime | None, AsOf] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        moment = _now(as_of)
        found = await deps.call(lambda: view.case(str(case_id), moment))
        if found is None or (is_partner(who) and found["partner_id"] != who.partner_id):
            raise HTTPException(404, detail=f"no case {case_id}")
        await deps.record(request, who, [found["customer_id"]])
        return OrjsonResponse(found)

    @router.get("/customers/{customer_id}/cases", summary="A customer's cases and suggested "
                "touchpoints (merged-in customers' included)", response_class=OrjsonResponse, response_model=CustomerCasesPublic,
                responses=responses(404, 409, 503), dependencies=deps.audited(cases_reader))
    async def customer_cases(
        customer_id: UUID,
        who: Annotated[Principal, Depends(cases_reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        found = await deps.call(lambda: scoped(deps.views.summary.resolve(str(customer_id)),
                                               who, customer_id))
        # Merges followed: the survivor's cases with every merged-in customer's.
        return OrjsonResponse(await deps.call(lambda: view.customer_cases(found.root)))

    @router.get("/service/statistics", summary="Service figures per day, week or month",
                response_class=OrjsonResponse, response_model=StatisticsPublic,
                responses=responses(400, 503))
    async def statistics(
        who: Annotated[Principal, Depends(stats_reader)],
        from_: Annotated[datetime, Query(alias="from", openapi_examples={
            "q3": {"value": "2026-07-01T00:00:00+00:00"}})],
        to: Annotated[datetime, Query(openapi_examples={
            "q3": {"value": "2026-10-01T00:00:00+00:00"}})],
        period: Annotated[Literal["day", "week", "month"], Query()] = "week",
        as_of: Annotated[datetime | None, AsOf] = None,
    ) -> OrjsonResponse:
        if from_.tzinfo is None or to.tzinfo is None:
            raise HTTPException(400, detail="from and to need a timezone offset")
        if to - from_ > timedelta(days=MAX_STATS_DAYS):
            raise HTTPException(400, detail=f"at most {MAX_STATS_DAYS} days per request")
        moment = _now(as_of)
        return OrjsonResponse(await deps.call(lambda: view.statistics(from_, to, period,
                                                                      moment)))

    return router
