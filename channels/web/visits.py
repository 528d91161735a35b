"""Offline visits synced in a batch: ``POST /visits/sync`` (staff, API key).

A tablet or phone that logged visits without a connection sends them all
when it is back online. Each visit carries its real ``occurred_at`` and its
device-given ``visit_id`` (the source key), so a sync that is cut off and
sent again records nothing twice. Items succeed or fail one by one; the
answer lists each item's outcome in order.
"""

# No ``from __future__ import annotations``: FastAPI reads the route's annotations at
# runtime and ``who`` is local to the factory.
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from channels.web.command_routes import Authorize, PrincipalLike, run_command
from commands import messages as m
from commands.hub import Hub

MAX_BATCH = 500
SYNC_ROLES = ("agent", "sales", "service", "dispatcher", "adapter")


class VisitSync(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visits: Annotated[list[m.RecordVisit], Field(min_length=1, max_length=MAX_BATCH)]


class VisitSyncItem(BaseModel):
    index: int
    visit_id: str
    status: Literal["recorded", "duplicate", "held-for-triage", "refused"]
    customer_id: str | None = None
    http_status: int
    reason: str | None = None


class VisitSyncResult(BaseModel):
    recorded: int
    duplicates: int
    refused: int
    items: list[VisitSyncItem]


def _one(hub: Hub, index: int, visit: m.RecordVisit) -> VisitSyncItem:
    try:
        result = run_command(hub, visit)
    except HTTPException as exc:
        return VisitSyncItem(index=index, visit_id=visit.visit_id, status="refused",
                             http_status=exc.status_code, reason=str(exc.detail))
    if result.held_for_triage:
        status: Any = "held-for-triage"
    else:
        status = "duplicate" if result.duplicate else "recorded"
    return VisitSyncItem(index=index, visit_id=visit.visit_id, status=status,
                         customer_id=result.customer_id or None,
                         http_status=200 if result.duplicate else 201)


def _sync(hub: Hub, batch: VisitSync, actor: str) -> VisitSyncResult:
    items = []
    for i, visit in enumerate(batch.visits):
        if visit.actor is None:
            visit = visit.model_copy(update={"actor": actor})
        items.append(_one(hub, i, visit))
    return VisitSyncResult(
        recorded=sum(i.status == "recorded" for i in items),
        duplicates=sum(i.status == "duplicate" for i in items),
        refused=sum(i.status == "refused" for i in items),
        items=items,
    )


def visits_router(get_hub: Callable[[], Hub], authorize: Authorize) -> APIRouter:
    router = APIRouter(prefix="/visits", tags=["visits"])
    who = authorize(*SYNC_ROLES)

    @router.post("/sync", response_model=VisitSyncResult,
                 summary="Sync visits recorded offline (each with its real occurred_at)")
    async def sync(
        batch: VisitSync, principal: Annotated[PrincipalLike, Depends(who)]
    ) -> VisitSyncResult:
        return await run_in_threadpool(_sync, get_hub(), batch, f"api:{principal.name}")

    return router
