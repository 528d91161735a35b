"""Territory and auto-reply routes: each sales territory with its owner, open
opportunities and pipeline; the acknowledgements of new cases and their outcomes.

Neither shows personal data (staff ids, amounts, ids, loop-rule codes), so no read is
recorded in the read audit. Territories are the work settings' (``[[territories]]``);
which territory an opportunity is in is decided at read time from its customer's
country and postcode.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from domain.work import WorkPolicy
from projections.auto_replies.view import AutoRepliesView
from projections.territories.view import TerritoriesView
from read_api.dependencies import MinPosition, OrjsonResponse, Principal, ReadDeps, responses

TERRITORY_ROLES = ("sales", "analyst", "auditor")
AUTO_REPLY_ROLES = ("agent", "service", "auditor")

_TERRITORY = {"territory": "berlin", "prefixes": ["DE-10", "DE-12"], "owner": "lee",
              "configured_owner": "sam", "last_move_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
              "moved_at": "2026-11-24T09:30:00+00:00", "open_opportunities": 3,
              "pipeline": {"EUR": "18400.00"}, "owners": ["lee"]}
_OUTCOME = {"trigger_event_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
            "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11",
            "case_id": "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f", "channel": "email",
            "opened_at": "2026-11-24T09:30:00+00:00", "outcome": "sent"}


class TerritoryPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TERRITORY]})

    territory: str
    prefixes: list[str] = Field(description="Country (DE) or country-postcode (DE-10) prefixes.")
    owner: str = Field(description="The owner now (after the latest reassignment).")
    configured_owner: str
    last_move_id: str | None = Field(description="The latest reassignment's event id.")
    moved_at: str | None
    open_opportunities: int
    pipeline: dict[str, str] = Field(description="Open amount per currency.")
    owners: list[str] = Field(description="Who holds the open opportunities now.")


class TerritoriesPublic(BaseModel):
    items: list[TerritoryPublic]


class AutoReplyPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_OUTCOME]})

    trigger_event_id: str = Field(description="The event that opened the case.")
    customer_id: str
    case_id: str
    channel: str
    opened_at: str | None
    outcome: str = Field(description="sent, pending, or the loop rule that withheld it "
                         "(auto-submitted, precedence-bulk, mailing-list, bounced, "
                         "recently-auto-replied, no-reply-sender, no-sender).")


class AutoRepliesPublic(BaseModel):
    items: list[AutoReplyPublic]


def router(deps: ReadDeps, policy: WorkPolicy) -> APIRouter:
    router = APIRouter(tags=["replies"])
    territories = TerritoriesView(deps.views.store)
    auto_replies = AutoRepliesView(deps.views.store)
    territory_reader = deps.reader(*TERRITORY_ROLES)
    auto_reply_reader = deps.reader(*AUTO_REPLY_ROLES)

    @router.get("/sales/territories", summary="Sales territories: owner, open opportunities "
                "and pipeline", response_class=OrjsonResponse, response_model=TerritoriesPublic,
                responses=responses(409, 503))
    async def list_territories(
        who: Annotated[Principal, Depends(territory_reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([territories], min_position)
        found: list[dict[str, Any]] = await deps.call(
            lambda: territories.territories(policy.territories))
        return OrjsonResponse({"items": found})

    @router.get("/service/auto-replies", summary="New cases' automatic acknowledgements and "
                "their outcomes, newest first", response_class=OrjsonResponse,
                response_model=AutoRepliesPublic, responses=responses(409, 503))
    async def list_auto_replies(
        who: Annotated[Principal, Depends(auto_reply_reader)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([auto_replies], min_position)
        return OrjsonResponse({"items": await deps.call(
            lambda: auto_replies.outcomes(limit, offset))})

    return router
