"""``GET /customers/{id}/summary``: profile, contact points, stage, counts and last contact
per channel, open callbacks (partners: internal notes not counted anywhere), and the
business block (``read_api.business``: each area's part for the roles that area admits)."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from domain.sla import SlaConfig
from read_api import partner
from read_api.business import BusinessViews
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

AsOf = Query(description="When the business block judges SLA states, consent validity and "
                          "lateness (RFC 3339 with an offset); the server's clock when left out.")


def router(deps: ReadDeps, sla: SlaConfig) -> APIRouter:
    router = APIRouter(tags=["read"])
    view = deps.views.summary
    business = BusinessViews(deps.views, sla)
    reader = deps.reader(*SUMMARY_ROLES)

    @router.get(
        "/customers/{customer_id}/summary",
        summary="Profile, contact points, stage, counts and last contact per channel, open "
                "items, business objects",
        response_class=OrjsonResponse, response_model=SummaryPublic,
        responses=responses(404, 409, 503,
                            s404="no customer 0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"),
    )
    async def summary(
        customer_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        request: Request,
        min_position: Annotated[int | None, MinPosition] = None,
        as_of: Annotated[AwareDatetime | None, AsOf] = None,
    ) -> OrjsonResponse:
        await deps.reached([view, *business.views_for(who)], min_position)
        moment = as_of or datetime.now(UTC)

        def work() -> Any:
            found = scoped(view.resolve(str(customer_id)), who, customer_id)
            result: Any = view.summary(found.root)
            if result is None:
                raise not_found(customer_id)
            if is_partner(who):
                result = partner.summary(result)
            return {**result, "business": business.block(who, found.root, moment)}

        result = await deps.call(work)
        read = [str(customer_id), result["customer_id"]]
        answer = OrjsonResponse(result)  # rendered first: only its bytes wait (timeline.py)
        del result
        # on record before it is shown; asked by a merged-away id, the root is read too
        await deps.record(request, who, read)
        return answer

    return router
