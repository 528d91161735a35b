"""``GET /projections/status``: each read model's position, lag and rate."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from projections.status import status
from read_api.dependencies import STATUS_ROLES, OrjsonResponse, Principal, ReadDeps, responses
from read_api.schemas import ProjectionStatusListPublic


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["read"])

    @router.get(
        "/projections/status",
        summary="Each read model's position, lag (events and seconds) and rate",
        response_class=OrjsonResponse, response_model=ProjectionStatusListPublic,
        responses=responses(503),
    )
    async def projection_status(
        who: Annotated[Principal, Depends(deps.reader(*STATUS_ROLES))],
    ) -> OrjsonResponse:
        def work() -> Any:
            head = deps.log_head() if deps.log_head is not None else 0
            return [s.as_dict() for s in status(deps.views.store.local(), head)]

        return OrjsonResponse({"items": await deps.call(work)})

    return router
