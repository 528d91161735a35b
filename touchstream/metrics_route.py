"""The ``GET /metrics`` route (``touchstream.metrics`` says what it shows and why it
needs a ``monitoring`` key)."""

# No "from __future__ import annotations": FastAPI must see the route signature evaluated.

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from touchstream.auth import Authorizer, Principal
from touchstream.bootstrap import Dependencies
from touchstream.metrics import CONTENT_TYPE, StoreCollector


def metrics_router(deps: Dependencies, authorize: Authorizer) -> APIRouter:
    router = APIRouter(tags=["meta"])
    monitoring = authorize("monitoring")
    stores = StoreCollector(deps)

    @router.get(
        "/metrics", summary="Prometheus metrics (text format), for a monitoring key",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}},
                         "description": "Prometheus text exposition format 0.0.4"}},
    )
    def metrics(who: Annotated[Principal, Depends(monitoring)]) -> Response:
        return Response(deps.metrics.exposition(stores), media_type=CONTENT_TYPE)

    return router
