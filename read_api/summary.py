"""``GET /customers/{id}/summary``: profile, contact points, stage, counts and last contact
per channel, open callbacks (partners: internal notes not counted anywhere)."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from read_api import partner
from read_api.dependencies import (
    SUMMARY_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    not_found,
    responses,
    scoped,
)
from read_api.schemas import SummaryPublic


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["read"])
    view = deps.views.summary
    reader = deps.reader(*SUMMARY_ROLES)

    @router.get(
        "/customers/{customer_id}/summary",
        summary="Profile, contact points, stage, counts and last contact per channel, open items",
        response_class=OrjsonResponse, response_model=SummaryPublic,
        responses=responses(404, 409, 503,
                            s404="no customer 0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"),
    )
    async def summary(
        customer_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        request: Request,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)

        def work() -> Any:
            found = scoped(view.resolve(str(customer_id)), who, customer_id)
            result: Any = view.summary(found.root)
            if result is None:
                raise not_found(customer_id)
            return partner.summary(result) if is_partner(who) else result

        result = await deps.call(work)
        # on record before it is shown; asked by a merged-away id, the root is read too
        await deps.record(request, who, [str(customer_id), result["customer_id"]])
        return OrjsonResponse(result)

    return router
