"""``GET /console/admin/status``: each read model's position, lag, rate and generation
(a rebuild makes a new generation), for the roles of ``GET /projections/status``."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from projections.status import status
from read_api.dependencies import STATUS_ROLES, Principal
from touchstream.console.context import Console


def router(console: Console) -> APIRouter:
    router = console.router()
    reads = console.reads
    reader = reads.reader(*STATUS_ROLES)

    @router.get("/admin/status")
    async def projection_status(request: Request,
                                who: Annotated[Principal, Depends(reader)]) -> Response:
        def work() -> Any:
            head = reads.log_head() if reads.log_head is not None else 0
            return head, [s.as_dict() for s in status(reads.views.store.local(), head)]

        head, items = await reads.call(work)
        return console.pages.render(request, "status.html", head=head, items=items)

    return router
