"""Work routes: a staff member's tasks and day, the team calendar, the supervisor's view.

"Now" is a query parameter (default: the request's time): overdue flags and ages are
judged against it, never stored. Task titles are personal text: every customer whose
task is shown is recorded in the read audit before the answer is sent."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from domain.work import WorkPolicy
from projections.commissions.view import CommissionsView
from projections.work.view import WorkView
from read_api.dependencies import MinPosition, OrjsonResponse, Principal, ReadDeps, responses

STAFF_ROLES = ("agent", "sales", "service", "dispatcher", "auditor")
SUPERVISOR_ROLES = ("service", "dispatcher", "auditor")
COMMISSION_ROLES = ("sales", "analyst", "auditor")
MAX_COMMISSION_DAYS = 3 * 366
Staff = Annotated[str, Query(min_length=1, max_length=100, description="A staff id.",
                             openapi_examples={"jo": {"value": "jo"}})]
Now = Query(description="The moment overdue and ages are judged at (RFC 3339; default now).",
            openapi_examples={"now": {"value": "2026-11-24T09:30:00+00:00"}})


_TASK_EXAMPLE = {
    "task_id": "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7",
    "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "task_kind": "call",
    "title": "Call back about the invoice", "due_at": "2026-11-24T09:00:00+00:00",
    "ends_at": None, "reminder_at": "2026-11-24T08:45:00+00:00", "status": "open",
    "queue": "billing", "assignee": "jo", "link_kind": "case",
    "link_id": "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f", "follow_up_rule": "complaint-care",
    "event_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", "done_at": None, "overdue": True}


class TaskPublic(BaseModel):
    """A task (its title is null after the customer's erasure)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TASK_EXAMPLE]})

    task_id: str
    customer_id: str
    task_kind: str
    title: str | None
    due_at: str | None
    ends_at: str | None
    reminder_at: str | None
    status: Literal["open", "completed", "cancelled"]
    queue: str
    assignee: str | None
    link_kind: str | None
    link_id: str | None
    follow_up_rule: str | None = Field(description="The rule that created it (null: by hand).")
    event_id: str = Field(description="The event that created it.")
    done_at: str | None
    overdue: bool


class MyTasksPublic(BaseModel):
    staff: str
    now: str
    total: int
    overdue: int
    tasks: list[TaskPublic]


class DayPublic(BaseModel):
    staff: str
    from_: str = Field(alias="from")
    to: str
    now: str
    tasks: list[TaskPublic] = Field(description="Overdue open tasks first, then the day's.")


class StaffCalendarPublic(BaseModel):
    staff: str | None
    tasks: list[TaskPublic]


class CalendarPublic(BaseModel):
    from_: str = Field(alias="from")
    to: str
    now: str
    truncated: bool
    staff: list[StaffCalendarPublic]


class QueueLoadPublic(BaseModel):
    queue: str
    open: int
    unassigned: int
    oldest_age_s: int | None
    oldest_unassigned_age_s: int | None


class AgentLoadPublic(BaseModel):
    agent: str
    load: int
    tasks: int
    cases: int
    overdue_tasks: int
    oldest_age_s: int | None


class WaitingItemPublic(BaseModel):
    item_kind: Literal["task", "case"]
    item_id: str
    customer_id: str
    queue: str
    kind: str
    channel: str | None
    category: str | None
    opened_at: str | None
    due_at: str | None
    age_s: int | None


class SupervisorPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "now": "2026-11-24T09:30:00+00:00",
        "queues": [{"queue": "billing", "open": 12, "unassigned": 3, "oldest_age_s": 86400,
                    "oldest_unassigned_age_s": 5400}],
        "agents": [{"agent": "jo", "load": 7, "tasks": 4, "cases": 3, "overdue_tasks": 1,
                    "oldest_age_s": 86400}],
        "waiting": [{"item_kind": "case", "item_id": "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f",
                     "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "queue": "billing",
                     "kind": "request", "channel": "email", "category": "billing",
                     "opened_at": "2026-11-24T08:00:00+00:00", "due_at": None,
                     "age_s": 5400}]}]})

    now: str
    queues: list[QueueLoadPublic]
    agents: list[AgentLoadPublic]
    waiting: list[WaitingItemPublic] = Field(description=(
        "Open items nobody is assigned, oldest first; move one with POST /commands/move-work."))


class CommissionPublic(BaseModel):
    period: str = Field(description="2026-03, 2026-Q1 or 2026 (UTC).")
    owner: str
    currency: str
    deals: int
    won_amount: str = Field(description="Decimal string.")
    rate: str = Field(description="The owner's rate in force (a fraction).")
    commission: str = Field(description="won_amount × rate, half-up to cents.")


class CommissionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "from": "2026-01-01T00:00:00+00:00", "to": "2027-01-01T00:00:00+00:00",
        "period": "quarter", "items": [{"period": "2026-Q1", "owner": "sam", "currency": "EUR",
                                        "deals": 3, "won_amount": "4200.00", "rate": "0.05",
                                        "commission": "210.00"}]}]})

    from_: str = Field(alias="from")
    to: str
    period: str
    items: list[CommissionPublic]


def moment(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        raise HTTPException(400, detail="now needs a timezone offset")
    return value


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HTTPException(400, detail=f"unknown time zone {name!r}") from exc


def day_bounds(on: date, days: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(on, time(), zone)
    return start, datetime.combine(on + timedelta(days=days), time(), zone)


def router(deps: ReadDeps, policy: WorkPolicy) -> APIRouter:
    router = APIRouter(tags=["work"])
    roster = policy.roster
    view = WorkView(deps.views.store)
    commissions_view = CommissionsView(deps.views.store)
    commission_reader = deps.reader(*COMMISSION_ROLES)
    staff_reader = deps.reader(*STAFF_ROLES)
    supervisor_reader = deps.reader(*SUPERVISOR_ROLES)
    Zone = Annotated[str, Query(max_length=64, description="IANA time zone of the day's "
                                f"bounds (default: the roster's, {roster.zone}).")]

    async def shown(request: Request, who: Any, rows: list[dict[str, Any]]) -> None:
        await deps.record(request, who, [r["customer_id"] for r in rows])

    @router.get("/work/tasks", summary="A staff member's open tasks, overdue first",
                response_class=OrjsonResponse, response_model=MyTasksPublic,
                responses=responses(400, 409, 503))
    async def my_tasks(
        staff: Staff,
        who: Annotated[Principal, Depends(staff_reader)],
        request: Request,
        now: Annotated[datetime | None, Now] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        at = moment(now)
        found = await deps.call(lambda: view.my_tasks(staff, at, limit=limit, offset=offset))
        await shown(request, who, found["tasks"])
        return OrjsonResponse(found)

    @router.get("/work/day", summary="A staff member's day: overdue first, then the day's "
                "tasks and appointments", response_class=OrjsonResponse,
                response_model=DayPublic, responses=responses(400, 409, 503))
    async def my_day(
        staff: Staff,
        who: Annotated[Principal, Depends(staff_reader)],
        request: Request,
        on: Annotated[date | None, Query(description="The day (default: today in the zone).",
                                         openapi_examples={"d": {"value": "2026-11-24"}})] = None,
        zone: Zone = roster.zone,
        now: Annotated[datetime | None, Now] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        at, tz = moment(now), _zone(zone)
        start, end = day_bounds(on or at.astimezone(tz).date(), 1, tz)
        found = await deps.call(lambda: view.day(staff, start, end, at))
        await shown(request, who, found["tasks"])
        return OrjsonResponse(found)

    @router.get("/work/calendar", summary="The team calendar for a day or a week",
                response_class=OrjsonResponse, response_model=CalendarPublic,
                responses=responses(400, 409, 503))
    async def calendar(
        who: Annotated[Principal, Depends(staff_reader)],
        request: Request,
        team: Annotated[str | None, Query(max_length=100, description=(
            "A roster team (default: everyone)."), openapi_examples={
                "t": {"value": "service"}})] = None,
        on: Annotated[date | None, Query(description="The first day (default: today).",
                                         openapi_examples={"d": {"value": "2026-11-23"}})] = None,
        period: Annotated[Literal["day", "week"], Query()] = "day",
        zone: Zone = roster.zone,
        now: Annotated[datetime | None, Now] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        at, tz = moment(now), _zone(zone)
        if team is not None and not roster.team(team):
            raise HTTPException(400, detail=f"no team {team!r} in the roster")
        members = roster.team(team) if team is not None else None
        start, end = day_bounds(on or at.astimezone(tz).date(), 7 if period == "week" else 1,
                                tz)
        found = await deps.call(lambda: view.calendar(start, end, members, at))
        await shown(request, who, [t for s in found["staff"] for t in s["tasks"]])
        return OrjsonResponse(found)

    @router.get("/work/supervisor", summary="Queues, unassigned items, per-agent load and the "
                "oldest item's age", response_class=OrjsonResponse,
                response_model=SupervisorPublic, responses=responses(400, 409, 503))
    async def supervisor(
        who: Annotated[Principal, Depends(supervisor_reader)],
        queue: Annotated[str | None, Query(max_length=100)] = None,
        now: Annotated[datetime | None, Now] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        at = moment(now)
        return OrjsonResponse(await deps.call(
            lambda: view.supervisor(at, queue=queue, limit=limit, offset=offset)))

    @router.get("/sales/commissions", summary="Commissions: won amount × rate per owner, "
                "period and currency (rates from the work settings)",
                response_class=OrjsonResponse, response_model=CommissionsPublic,
                responses=responses(400, 409, 503))
    async def commissions(
        who: Annotated[Principal, Depends(commission_reader)],
        from_: Annotated[datetime, Query(alias="from", openapi_examples={
            "2026": {"value": "2026-01-01T00:00:00+00:00"}})],
        to: Annotated[datetime, Query(openapi_examples={
            "2026": {"value": "2027-01-01T00:00:00+00:00"}})],
        period: Annotated[Literal["month", "quarter", "year"], Query()] = "month",
        owner: Annotated[str | None, Query(max_length=500)] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        if from_.tzinfo is None or to.tzinfo is None:
            raise HTTPException(400, detail="from and to need a timezone offset")
        if not timedelta(0) < to - from_ <= timedelta(days=MAX_COMMISSION_DAYS):
            raise HTTPException(400, detail=f"to after from, at most {MAX_COMMISSION_DAYS} "
                                            "days apart")
        await deps.reached([commissions_view], min_position)
        return OrjsonResponse(await deps.call(lambda: commissions_view.commissions(
            from_, to, period, policy.commissions, owner)))

    return router
