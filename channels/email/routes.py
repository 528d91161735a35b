"""``GET /admin/email/quarantine``: quarantined mail, for administrators, without SQL."""

# No ``from __future__ import annotations``: FastAPI reads the route's annotations at runtime.

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from channels.email.quarantine import ReleaseLookup, quarantined_messages
from commands.hub import Hub

Reason = Literal["unparseable", "too-deep", "oversized", "no-customer", "invalid",
                 "held-for-triage", "unmatched"]


class QuarantinedPublic(BaseModel):
    source_key: str
    account: str
    folder: str
    reason: str
    detail: str
    message_id: str | None
    uidvalidity: int | None
    uid: int | None
    size: int
    raw_ref: str | None
    header_ref: str | None
    quarantined_at: datetime
    released_as: str | None


def quarantine_router(
    get_hub: Callable[[], Hub], authorize: Callable[..., Callable[..., Any]],
    releases: Callable[[], ReleaseLookup] | None = None,
) -> APIRouter:
    """``releases`` opens the IMAP ledger that knows which quarantined messages a retry
    recorded since (closed after each request when it has a ``close``)."""
    router = APIRouter(prefix="/admin/email", tags=["email"])
    admin = authorize("admin")

    @router.get("/quarantine", response_model=list[QuarantinedPublic],
                summary="Quarantined mail (reason, Message-ID, blob refs of the raw bytes)")
    async def quarantine(
        _: Annotated[Any, Depends(admin)],
        reason: Reason | None = None,
        include_released: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[QuarantinedPublic]:
        found = await run_in_threadpool(_list, get_hub(), releases, include_released, reason,
                                        limit)
        return [QuarantinedPublic(**vars(q)) for q in found]

    return router


def _list(
    hub: Hub, releases: Callable[[], ReleaseLookup] | None, include_released: bool,
    reason: str | None, limit: int,
) -> list[Any]:
    lookup = releases() if releases is not None else None
    try:
        return quarantined_messages(hub, lookup, include_released=include_released,
                                    reason=reason, limit=limit)
    finally:
        close = getattr(lookup, "close", None)
        if close is not None:
            close()
