"""Dispatch and call-centre read routes.

| Route                                   | Roles                                  |
|-----------------------------------------|----------------------------------------|
| GET /dispatch/board                     | dispatcher, service                    |
| GET /dispatch/attention                 | dispatcher, service                    |
| GET /dispatch/work-orders/{id}          | dispatcher, service (read audited)     |
| GET /customers/{id}/work-orders         | dispatcher, service, agent (audited)   |
| GET /call-centre/figures                | agent, dispatcher, service, analyst    |

Late and overdue are computed at ``now`` (a query parameter; the server's clock
when left out). The board and the attention list carry no personal data; a work
order's page and a customer's list show the address and summary, and are recorded
in the read audit as reads of that customer.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from projections.callcentre.view import MAX_SPAN_DAYS, CallCentreView, InvalidFiguresQueryError
from projections.customers import group
from projections.dispatch.view import MAX_DAYS, MAX_ORDERS, DispatchView, InvalidBoardQueryError
from projections.events import us
from read_api.cursors import CursorError, _bounded, _decode, _encode
from read_api.dependencies import (
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    responses,
    scoped,
)

DISPATCH_ROLES = ("dispatcher", "service")
CUSTOMER_ORDER_ROLES = ("dispatcher", "service", "agent")
CALL_CENTRE_ROLES = ("agent", "dispatcher", "service", "analyst")

_WO = "3f1c2e6a-9b7d-4c1e-8f2a-5d6b7c8e9f01"
_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_TECH = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
_ORDER_EXAMPLE = {
    "work_order_id": _WO, "customer_id": _CID, "case_id": None, "stage": "assigned",
    "skill": "boiler", "priority": "normal", "technician_id": _TECH,
    "window_start": "2026-09-21T11:00:00+00:00", "window_end": "2026-09-21T13:00:00+00:00",
    "arrived_at": None, "done_at": None, "minutes_spent": None, "late": True, "overdue": False}


class BoardOrderPublic(BaseModel):
    """A work order on the board (no personal data)."""

    work_order_id: str
    customer_id: str
    case_id: str | None
    stage: str
    skill: str
    priority: str
    technician_id: str | None
    window_start: str | None
    window_end: str | None
    arrived_at: str | None = Field(description="When the technician arrived (real time).")
    done_at: str | None
    minutes_spent: int | None
    late: bool = Field(description="Booked, window started at `now`, nobody arrived.")
    overdue: bool = Field(description="Still open after its window ended at `now`.")
    model_config = ConfigDict(json_schema_extra={"examples": [_ORDER_EXAMPLE]})


class TravelPublic(BaseModel):
    after: str
    before: str
    start: str
    end: str
    minutes: int


class TechnicianDayPublic(BaseModel):
    day: str
    capacity_minutes: int
    planned_minutes: int = Field(description="Sum of the day's booked windows.")
    worked_minutes: int = Field(description="Minutes spent, as reported with the work done.")
    utilisation: float = Field(description="planned / capacity")
    orders: list[BoardOrderPublic]
    travel: list[TravelPublic] = Field(description="Gaps between consecutive windows.")


class TechnicianBoardPublic(BaseModel):
    technician_id: str
    handle: str
    skills: list[str]
    days: list[TechnicianDayPublic]


class BoardPublic(BaseModel):
    """The dispatch board: per technician and day, unassigned work, late/overdue counts."""

    from_: str = Field(alias="from")
    days: int
    now: str
    technicians: list[TechnicianBoardPublic]
    unassigned: list[BoardOrderPublic]
    late: int
    overdue: int
    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [{
        "from": "2026-09-21", "days": 1, "now": "2026-09-21T11:30:00+00:00",
        "technicians": [{"technician_id": _TECH, "handle": "jonas", "skills": ["boiler"],
                         "days": [{"day": "2026-09-21", "capacity_minutes": 480,
                                   "planned_minutes": 240, "worked_minutes": 95,
                                   "utilisation": 0.5, "orders": [_ORDER_EXAMPLE],
                                   "travel": [{"after": "0c…", "before": _WO,
                                               "start": "2026-09-21T10:00:00+00:00",
                                               "end": "2026-09-21T11:00:00+00:00",
                                               "minutes": 60}]}]}],
        "unassigned": [], "late": 1, "overdue": 0}]})


class HistoryPublic(BaseModel):
    position: int
    event_id: str
    action: str
    technician_id: str | None
    occurred_at: str | None
    recorded_at: str | None = Field(description="When the hub recorded it (a late sync "
                                                "shows here, not in occurred_at).")


class WorkOrderPublic(BoardOrderPublic):
    """A work order with its personal fields and (on its own page) its history."""

    address: str | None = Field(description="None once the customer was erased.")
    summary: str | None
    parts: list[dict[str, Any]]
    created_at: str | None
    arrival_recorded_at: str | None
    finished_at: str | None
    history: list[HistoryPublic] = Field(description="Every transition with its event id.")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_ORDER_EXAMPLE, "address": "1 Mill Lane, Leeds", "summary": "No hot water",
        "parts": [], "created_at": "2026-09-19T08:00:00+00:00", "arrival_recorded_at": None,
        "finished_at": None, "history": [
            {"position": 812, "event_id": "9a3f4c1e-2b7d-4e8f-a1c5-6d0e2f4b8a17",
             "action": "assigned", "technician_id": _TECH,
             "occurred_at": "2026-09-20T16:00:00+00:00",
             "recorded_at": "2026-09-20T16:00:01+00:00"}]}]})


class WorkOrderPagePublic(BaseModel):
    customer_id: str
    items: list[WorkOrderPublic]
    next_cursor: str | None
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": _CID, "items": [], "next_cursor": None}]})


class CallFiguresPublic(BaseModel):
    """Call-centre figures of one queue in one hour (or day)."""

    queue: str | None
    bucket: str = Field(description="Start of the hour or day (UTC).")
    offered: int
    answered: int
    abandoned: int
    missed: int
    other: int = Field(description="Voicemail, busy, failed.")
    in_progress: int
    abandonment_rate: float
    avg_wait_s: float | None = Field(description="Over answered calls.")
    max_wait_s: int | None
    avg_talk_s: float | None
    talk_s: int
    avg_abandon_wait_s: float | None
    service_level: float | None = Field(description="Share answered within 20 s.")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "queue": "support", "bucket": "2026-09-21T09:00:00+00:00", "offered": 42,
        "answered": 36, "abandoned": 4, "missed": 1, "other": 1, "in_progress": 0,
        "abandonment_rate": 0.0952, "avg_wait_s": 31.5, "max_wait_s": 180,
        "avg_talk_s": 284.2, "talk_s": 10231, "avg_abandon_wait_s": 64.0,
        "service_level": 0.6111}]})


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


NowQuery = Query(description="The moment late and overdue are judged at (RFC 3339 with an "
                             "offset); the server's clock when left out.")


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["dispatch"])
    board_view = DispatchView(deps.views.store)
    calls_view = CallCentreView(deps.views.store)
    dispatcher = deps.reader(*DISPATCH_ROLES)
    customer_reader = deps.reader(*CUSTOMER_ORDER_ROLES)
    call_reader = deps.reader(*CALL_CENTRE_ROLES)

    @router.get("/dispatch/board", summary="Work orders by technician and day",
                response_class=OrjsonResponse, response_model=BoardPublic,
                responses=responses(400, 409, 503, s400="days must be 1–31, got 40"))
    async def board(
        who: Annotated[Principal, Depends(dispatcher)],
        first: Annotated[date, Query(alias="from", description="First day (UTC), "
                                     "e.g. 2026-09-21")],
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
        now: Annotated[AwareDatetime | None, NowQuery] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([board_view], min_position)
        moment = _now(now)
        return OrjsonResponse(await deps.call(_guarded, lambda: board_view.board(
            first, days, moment)))

    @router.get("/dispatch/attention", summary="Open work orders late or overdue at `now`",
                response_class=OrjsonResponse, response_model=list[BoardOrderPublic],
                responses=responses(409, 503))
    async def attention(
        who: Annotated[Principal, Depends(dispatcher)],
        now: Annotated[AwareDatetime | None, NowQuery] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ORDERS)] = 50,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([board_view], min_position)
        moment = _now(now)
        return OrjsonResponse(await deps.call(board_view.attention, moment, limit))

    @router.get("/dispatch/work-orders/{work_order_id}",
                summary="One work order: stage, window, address, parts, every transition",
                response_class=OrjsonResponse, response_model=WorkOrderPublic,
                responses=responses(404, 409, 503, s404=f"no work order {_WO}"))
    async def work_order(
        work_order_id: UUID,
        who: Annotated[Principal, Depends(dispatcher)],
        request: Request,
        now: Annotated[AwareDatetime | None, NowQuery] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([board_view], min_position)
        found = await deps.call(board_view.work_order, str(work_order_id), _now(now))
        if found is None:
            raise HTTPException(404, detail=f"no work order {work_order_id}")
        await deps.record(request, who, [found["customer_id"]])
        return OrjsonResponse(found)

    @router.get("/customers/{customer_id}/work-orders",
                summary="A customer's work orders, newest first (merged-in ones included)",
                response_class=OrjsonResponse, response_model=WorkOrderPagePublic,
                responses=responses(400, 404, 409, 503),
                dependencies=deps.audited(customer_reader))
    async def customer_orders(
        customer_id: UUID,
        who: Annotated[Principal, Depends(customer_reader)],
        now: Annotated[AwareDatetime | None, NowQuery] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ORDERS)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        asked = str(customer_id)
        try:
            after = _read_cursor(cursor, asked) if cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        await deps.reached([board_view, deps.views.summary], min_position)
        moment = _now(now)

        def work() -> dict[str, Any]:
            found = scoped(deps.views.summary.resolve(asked), who, customer_id)
            members = deps.views.summary.run(lambda db, t: group(db, t.customer, found.root))
            items = board_view.of_customers(members, moment, limit + 1, after)
            more = len(items) > limit
            items = items[:limit]
            last = items[-1] if more else None
            following = None if last is None else _encode([
                "work-orders", asked, us(datetime.fromisoformat(last["created_at"])),
                last["work_order_id"]])
            return {"customer_id": found.root, "items": items, "next_cursor": following}

        return OrjsonResponse(await deps.call(work))

    @router.get("/call-centre/figures",
                summary="Calls offered, answered, abandoned; wait and talk time per queue "
                        "and hour",
                response_class=OrjsonResponse, response_model=list[CallFiguresPublic],
                responses=responses(400, 409, 503, s400="the period's end must be after "
                                    "its start"))
    async def figures(
        who: Annotated[Principal, Depends(call_reader)],
        start: Annotated[AwareDatetime, Query(alias="from")],
        end: Annotated[AwareDatetime | None, Query(
            alias="to", description=f"Exclusive; default one day on; at most "
                                    f"{MAX_SPAN_DAYS} days after `from`.")] = None,
        bucket: Literal["hour", "day"] = "hour",
        queue: Annotated[str | None, Query(max_length=200)] = None,
        direction: Literal["inbound", "outbound"] = "inbound",
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([calls_view], min_position)
        until = end if end is not None else start + timedelta(days=1)
        return OrjsonResponse(await deps.call(_guarded, lambda: calls_view.figures(
            start, until, bucket=bucket, queue=queue, direction=direction)))

    return router


def _guarded(query: Any) -> Any:
    """Run a view query; its refusals of the parameters as 400."""
    try:
        return query()
    except (InvalidBoardQueryError, InvalidFiguresQueryError) as exc:
        raise HTTPException(400, detail=str(exc)) from exc


def _read_cursor(text: str, customer_id: str) -> tuple[int, str]:
    parts = _decode(text, "work-orders", customer_id, 4)
    if not isinstance(parts[3], str) or len(parts[3]) > 64:
        raise CursorError("cursor is not one this API returned")
    return _bounded(parts[2], 0), parts[3]
