"""Work routes: a staff member's tasks and day, the team calendar, the supervisor's view.

"Now" is a query parameter (default: the request's time): overdue flags and ages are
judged against it, never stored. Task titles are personal text: every customer whose
task is shown is recorded in the read audit before the answer is sent."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from domain.work import Roster
from projections.work.view import WorkView
from read_api.dependencies import MinPosition, OrjsonResponse, Principal, ReadDeps, responses

STAFF_ROLES = ("agent", "sales", "service", "dispatcher", "auditor")
SUPERVISOR_ROLES = ("service", "dispatcher", "auditor")
Staff = Annotated[str, Query(min_length=1, max_length=100, description="A staff id.",
                             openapi_examples={"jo": {"value": "jo"}})]
Now = Query(description="The moment overdue and ages are judged at (RFC 3339; default now).",
            openapi_examples={"now": {"value": "2026-11-24T09:30:00+00:00"}})


class TaskPublic(BaseModel):
    """A task (its title is null after the customer's erasure)."""

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
    now: str
    queues: list[QueueLoadPublic]
    agents: list[AgentLoadPublic]
    waiting: list[WaitingItemPublic] = Field(description=(
        "Open items nobody is assigned, oldest first; move one with POST /commands/move-work."))


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


def router(deps: ReadDeps, roster: Roster) -> APIRouter:
    router = APIRouter(tags=["work"])
    view = WorkView(deps.views.store)
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

    return router
